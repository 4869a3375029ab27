"""Speech editing (``maskgct.edit``, ``python -m maskgct.edit``) with the tiny fixture checkpoint on espeak
speech: the plan of replace/insert/delete/multiple edits, span lengths, the original samples kept exactly
outside the 20 ms crossfades, the context tokens kept, one-line errors, and the infill training option."""

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from maskgct.api import MaskGCT
from maskgct.constants import rule_frames
from maskgct.data.synth import ESPEAK_VOICES, EspeakSynth
from maskgct.edit import SNAP_FRAMES, edit_speech, prepare_edit
from maskgct.text import text_to_ids
from maskgct.vc import TOKEN_PAD_SECONDS

RATE, HOP = 24000, 480  # output rate; samples per 20 ms token frame (one crossfade)
TEXT = "the old man gave his daughter a small brown horse"
EDITS = {
    "replace": (TEXT.replace("daughter", "son"), [(["daughter"], ["son"])]),
    "insert": (TEXT.replace("a small", "a very small"), [([], ["very"])]),
    "delete": (TEXT.replace("small ", ""), [(["small"], [])]),
    # Two edits far apart stay two spans; "small" and "horse" have only "brown" between them: one span.
    "multiple": (
        "the young man gave his daughter a big brown dog",
        [(["old"], ["young"]), (["small", "brown", "horse"], ["big", "brown", "dog"])],
    ),
}


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    return MaskGCT.from_pretrained(tiny_checkpoint)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """TEXT said by espeak, at 24 kHz: speech the aligner can align (the tiny models only make noise)."""
    wav, rate = EspeakSynth()(ESPEAK_VOICES[0], TEXT)
    return librosa.resample(wav, orig_sr=rate, target_sr=RATE).astype(np.float32)


@pytest.fixture(scope="module")
def speech_file(speech, tmp_path_factory):
    path = tmp_path_factory.mktemp("edit") / "speech.wav"
    sf.write(path, speech, RATE, subtype="FLOAT")
    return path


@pytest.mark.parametrize("kind", EDITS)
def test_the_plan_names_the_changed_words_at_their_aligned_times(speech, kind):
    new_text, expected = EDITS[kind]
    wav16, _, old, _, spans, alignment, frames = prepare_edit(speech, TEXT, new_text, RATE, None, "en")
    assert [(s.old_words, s.new_words) for s in spans] == expected
    starts = {w.word: w.start_s for w in alignment.words}
    ends = {w.word: w.end_s for w in alignment.words}
    tolerance = (SNAP_FRAMES + 0.5) / 50
    phone_rate = len(text_to_ids(TEXT, "en"))
    for span in spans:
        assert 1 <= span.start_frame <= span.end_frame <= frames - 1
        if span.old_words:  # from the first changed word's start to the last one's end, snapped
            assert abs(span.start_s - starts[span.old_words[0]]) <= tolerance
            assert abs(span.end_s - ends[span.old_words[-1]]) <= tolerance
        else:  # an insert: the gap between "a" and "small"
            assert ends["a"] - tolerance <= span.start_s <= span.end_s <= starts["small"] + tolerance
        # The duration rule on the new words' phones at the recording's pace; a delete generates nothing.
        n_new = len(text_to_ids(" ".join(span.new_words), "en")) if span.new_words else 0
        assert span.new_frames == (max(1, int(rule_frames(len(wav16), phone_rate, n_new))) if n_new else 0)
    # --duration sets the new length.
    if kind != "multiple":
        assert prepare_edit(speech, TEXT, new_text, RATE, 0.7, "en")[4][0].new_frames == 35


def original_tokens(model, speech):
    """The recording's semantic tokens and acoustic codes over its whole frames (tokenised with the short
    silence after it that ``maskgct.vc`` and ``maskgct.edit`` add)."""
    frames = len(speech) // HOP
    wav16 = librosa.resample(speech, orig_sr=RATE, target_sr=16000)
    padded = np.concatenate([wav16, np.zeros(round(TOKEN_PAD_SECONDS * 16000), np.float32)])
    codes = model.codec.encode(torch.from_numpy(speech[: frames * HOP])[None, None])[0]
    return model.tokenizer.tokenize(padded)[:frames], codes


@pytest.mark.parametrize("kind", EDITS)
def test_the_original_is_kept_outside_the_crossfades(model, speech, kind):
    new_text, _ = EDITS[kind]
    result = edit_speech(model, speech, TEXT, new_text, sample_rate=RATE, seed=3)
    semantic, codes = original_tokens(model, speech)
    frames, audio = len(codes), result.audio
    shift, previous = 0, 0  # frames added so far; the end of the last span (original frames)
    for span in [*result.spans, None]:
        a = frames if span is None else span.start_frame
        # Between spans: the original's samples exactly, but for one 20 ms crossfade frame at each edge ...
        first = previous * HOP + (HOP if previous else 0)
        last = len(speech) if span is None else (a - 1) * HOP
        np.testing.assert_array_equal(audio[first + shift * HOP : last + shift * HOP], speech[first:last])
        # ... and the recording's own tokens around the generated ones.
        assert torch.equal(result.codes[previous + shift : a + shift], codes[previous:a])
        assert torch.equal(result.semantic[previous + shift : a + shift], semantic[previous:a])
        if span is not None:
            shift += span.new_frames - (span.end_frame - span.start_frame)
            previous = span.end_frame
    assert len(audio) == len(speech) + shift * HOP and audio.dtype == np.float32 and np.isfinite(audio).all()
    assert len(result.codes) == len(result.semantic) == frames + shift
    # The API method is the same computation.
    np.testing.assert_array_equal(model.edit(speech, TEXT, new_text, sample_rate=RATE, seed=3).audio, audio)
