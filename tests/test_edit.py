"""Speech editing (``maskgct.edit``, ``python -m maskgct.edit``) with the tiny fixture checkpoint on espeak
speech: the plan of replace/insert/delete/multiple edits, span lengths, the original samples kept exactly
outside the 20 ms crossfades, the context tokens kept, one-line errors, and the infill training option."""

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
from train_support import compose_cfg, write_token_dump

from maskgct.api import MaskGCT
from maskgct.audio import AudioError
from maskgct.constants import rule_frames
from maskgct.data.synth import ESPEAK_VOICES, EspeakSynth
from maskgct.edit import edit_speech
from maskgct.edit_cli import main
from maskgct.edit_plan import SNAP_FRAMES, prepare_edit
from maskgct.request import InputError
from maskgct.s2a import S2A, S2AConfig
from maskgct.t2s import T2S, T2SConfig
from maskgct.text import text_to_ids
from maskgct.train.__main__ import train
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
    plan = prepare_edit(speech, TEXT, new_text, RATE, None, "en")
    spans, alignment, frames = plan.spans, plan.alignment, plan.frames
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
        assert span.new_frames == (
            max(1, int(rule_frames(len(plan.wav16), phone_rate, n_new))) if n_new else 0
        )
    # --duration sets the new length.
    if kind != "multiple":
        assert prepare_edit(speech, TEXT, new_text, RATE, 0.7, "en").spans[0].new_frames == 35


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


def test_the_command_line_writes_the_edit_and_prints_the_plan(speech_file, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "edited.wav"
    args = ["--audio", str(speech_file), "--text", TEXT, "--new-text", EDITS["replace"][0], "--out", str(out)]
    assert main([*args, "--checkpoint", str(tiny_checkpoint), "--seed", "3", "--steps", "4"]) == 0
    assert "'daughter' -> 'son'" in capsys.readouterr().err
    written, rate = sf.read(out, dtype="float32")
    expected = edit_speech(
        MaskGCT.from_pretrained(tiny_checkpoint), speech_file, TEXT, EDITS["replace"][0], seed=3, steps=4
    )
    # PCM 16 in the file.
    assert rate == RATE and np.abs(written - expected.audio).max() <= 1 / 32768 + 1e-6


def test_bad_input_is_one_error_line_and_no_output(speech, speech_file, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF not really a wav file")
    short = tmp_path / "short.wav"
    sf.write(short, speech[: RATE // 10], RATE)
    longer = np.concatenate([speech] * 11)  # about 31 s
    long_file = tmp_path / "long.wav"
    sf.write(long_file, longer, RATE)
    new_text = EDITS["replace"][0]

    def rest(request):
        return request["duration"], request["language"]

    cases = [
        (dict(text="please call stella and ask her to bring these things"), "does not match the audio"),
        (dict(new_text=TEXT), "^nothing to edit"),
        (dict(new_text=TEXT.upper().replace("HORSE", "horse.")), "^nothing to edit"),
        (dict(duration=40.0), "more than the 30 s"),
        (
            dict(new_text=new_text.replace("son", "son " + "and a very long story " * 30)),
            "more than the 30 s",
        ),
        (dict(new_text=EDITS["multiple"][0], duration=1.0), "one edited span; this edit has 2"),
        (dict(audio=tmp_path / "missing.wav"), "not found"),
        (dict(audio=corrupt), "cannot read"),
        (dict(audio=short), "too short"),
        (dict(audio=long_file), "too long"),
        (dict(text="  "), "^the transcript is empty$"),
        (dict(new_text=""), "^the new text is empty$"),
        (dict(new_text="..."), "nothing pronounceable"),
        (dict(language="fr"), "supports en"),
    ]
    for overrides, message in cases:
        request = (
            dict(audio=speech_file, text=TEXT, new_text=new_text, duration=None, language="en") | overrides
        )
        with pytest.raises((InputError, AudioError), match=message):
            prepare_edit(*(request[k] for k in ("audio", "text", "new_text")), None, *rest(request))
        # The command line: exit 2, one "error: ..." line, no output file (the model is never loaded).
        out = tmp_path / "out.wav"
        argv = [
            f"--audio={request['audio']}",
            f"--text={request['text']}",
            f"--new-text={request['new_text']}",
        ]
        argv += [f"--out={out}", f"--checkpoint={tmp_path / 'no-model'}", f"--language={request['language']}"]
        if request["duration"] is not None:
            argv += ["--duration", str(request["duration"])]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), (overrides, err)
        assert not out.exists() and not list(tmp_path.glob(".out.wav*"))
    out = tmp_path / "out.wav"
    argv = ["--audio", str(speech_file), "--text", TEXT, "--new-text", new_text, "--out", str(out)]
    assert main([*argv, "--steps", "0", "--checkpoint", str(tmp_path / "no-model")]) == 2
    assert capsys.readouterr().err.strip() == "error: the number of decoding steps must be at least 1"
    assert not out.exists()
    with pytest.raises(InputError, match="mode"):
        edit_speech(None, speech, TEXT, new_text, sample_rate=RATE, mode="quick")


def masking_models():
    """Fresh tiny T2S and S2A that always keep a prompt (cfg_scale 0): every row can get a right context."""
    t2s = T2S(T2SConfig(hidden_size=32, num_layers=1, num_heads=2, cond_codebook_size=64, cfg_scale=0.0))
    sizes = dict(hidden_size=32, num_layers=1, num_heads=2, cond_codebook_size=64, cfg_scale=0.0)
    s2a = S2A(S2AConfig(num_quantizer=4, codebook_size=16, **sizes))
    return t2s, s2a


def test_infill_training_masks_a_middle_span_and_is_off_by_default():
    t2s, s2a = masking_models()
    x0, t = torch.randint(0, 64, (8, 40), generator=torch.Generator().manual_seed(0)), torch.ones(8)
    codes = torch.randint(0, 16, (8, 40, 4), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        # t = 1 masks every position that is not context: each row is prompt | masked | right context.
        masks = [
            net.mask_tokens(batch, t, torch.Generator().manual_seed(2), infill_prob=1.0)[1]
            for net, batch in ((t2s, x0), (s2a, codes))
        ]
        for mask in masks:
            for row in mask[..., 0].long().tolist():
                masked = [i for i, m in enumerate(row) if m]
                assert masked == list(range(masked[0], masked[-1] + 1))  # one contiguous span
                assert masked[0] >= 5 and masked[-1] < 39  # context on both sides
        # S2A's right context shows every layer, as acoustic_suffix does at inference.
        xt, mask, prompt_len, _, layer = s2a.mask_tokens(codes, t, torch.Generator().manual_seed(2), 1.0)
        assert int(layer) < 3  # so there are layers above the trained one to see in the right context
        end = int(mask[0, :, 0].nonzero().max()) + 1
        visible = sum(emb(codes[0, end:, q]) for q, emb in enumerate(s2a.token_emb))
        torch.testing.assert_close(xt[0, end:], visible)
        # 0 (the default) draws nothing more: the same batch and the same random stream as before.
        for net, batch in ((t2s, x0), (s2a, codes)):
            g0, g1 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
            default, off = (
                net.mask_tokens(batch, t / 2, g0),
                net.mask_tokens(batch, t / 2, g1, infill_prob=0.0),
            )
            assert all(torch.equal(x, y) for x, y in zip(default, off, strict=True))
            assert torch.equal(g0.get_state(), g1.get_state())
    with pytest.raises(ValueError, match="infill_prob"):
        t2s.mask_tokens(x0, t, infill_prob=1.5)


@pytest.mark.parametrize("task", ["t2s", "s2a_full"])
def test_a_training_step_with_the_infill_option(task, tmp_path):
    dump = write_token_dump(tmp_path / "dump")
    overrides = [f"task={task}", f"exp_dir={tmp_path}", f"data.train_dump={dump}", "data.max_frames=120"]
    overrides += ["+trainer.fast_dev_run=1", "trainer.enable_progress_bar=false", "task.infill_prob=0.5"]
    cfg = compose_cfg(overrides)
    trainer = train(cfg)
    assert trainer.global_step == 1 and torch.isfinite(trainer.callback_metrics["train/loss"])
    assert trainer.lightning_module.hparams.infill_prob == 0.5
