"""Prompts as users give them: without a transcript (whisper tiny.en transcribes it) and too long (trimmed
at a pause). The speech is made offline by piper's neural voice, so whisper has real words to hear."""

import numpy as np
import pytest
import soundfile as sf
import torch
from pipeline_support import TARGET_TEXT

from maskgct.audio import to_mono
from maskgct.constants import SEMANTIC_HOP, SEMANTIC_SAMPLE_RATE
from maskgct.eval.wer import error_counts
from maskgct.infer import main as infer_main
from maskgct.prompt import MAX_PROMPT_SECONDS, PAUSE_FRAMES, pause_cut, prepare_prompt
from maskgct.text import text_to_ids

SENTENCES = [
    "Glue the sheet to the dark blue background.",
    "The birch canoe slid on the smooth planks.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
]
GAP_SECONDS = 0.7
FAST = dict(mode="fast", steps=2, s2a_steps=[1] * 12, seed=3, duration=1.0)


@pytest.fixture(scope="module")
def clips():
    """Each sentence spoken by piper's joe voice, mono float32 at 16 kHz."""
    from maskgct.data.synth import PiperSynth, Voice

    synth, voice = PiperSynth(), Voice("joe", "piper", "joe")
    return [to_mono(*synth(voice, text), SEMANTIC_SAMPLE_RATE) for text in SENTENCES]


@pytest.fixture(scope="module")
def tts(tiny_checkpoint):
    from maskgct import MaskGCT

    return MaskGCT.from_pretrained(tiny_checkpoint)


def write_speech(path, clips):
    """The clips with GAP_SECONDS of silence after each, as a 16 kHz wav; returns (path, gap spans) with
    each gap's [start, end) in samples."""
    gap = np.zeros(round(GAP_SECONDS * SEMANTIC_SAMPLE_RATE), np.float32)
    pieces, gaps, position = [], [], 0
    for clip in clips:
        pieces += [clip, gap]
        position += len(clip)
        gaps.append((position, position + len(gap)))
        position += len(gap)
    sf.write(path, np.concatenate(pieces), SEMANTIC_SAMPLE_RATE)
    return path, gaps


def test_a_prompt_without_text_is_transcribed_and_clones_as_with_that_text(tts, clips, tmp_path):
    path, _ = write_speech(tmp_path / "prompt.wav", clips[:1])
    heard = tts.encode_prompt(path)
    assert heard.notes == [f"no prompt text given: whisper tiny.en heard {heard.transcript!r} "
                           "(a transcript you give is better)"]  # fmt: skip
    assert error_counts(heard.transcript, SENTENCES[0]).rate <= 0.25, heard.transcript
    given = tts.encode_prompt(path, heard.transcript)
    assert given.notes == [] and given.phone_ids == heard.phone_ids
    assert torch.equal(given.semantic, heard.semantic) and torch.equal(given.acoustic, heard.acoustic)
    # Cloning proceeds, and equals cloning with the transcript whisper heard.
    audio = tts.clone(path, None, TARGET_TEXT, **FAST)
    assert np.abs(audio).max() > 0
    assert np.array_equal(audio, tts.clone(path, heard.transcript, TARGET_TEXT, **FAST))


def test_cli_without_prompt_text_says_it_transcribed(tiny_checkpoint, clips, tmp_path, capsys):
    path, _ = write_speech(tmp_path / "prompt.wav", clips[:1])
    out = tmp_path / "out.wav"
    argv = ["--checkpoint", tiny_checkpoint, "--prompt", path, "--text", TARGET_TEXT, "--out", out,
            "--duration", 1.0, "--steps", 2, "--seed", 1, "--quiet"]  # fmt: skip
    assert infer_main([str(a) for a in argv]) == 0
    err = capsys.readouterr().err
    assert err.startswith("note: no prompt text given: whisper tiny.en heard '"), err
    assert sf.info(out).samplerate == 24000


def test_a_long_prompt_is_trimmed_in_its_last_pause_before_the_limit(tts, clips, tmp_path):
    path, gaps = write_speech(tmp_path / "long.wav", clips)
    total = sum(len(c) for c in clips) / SEMANTIC_SAMPLE_RATE + len(clips) * GAP_SECONDS
    assert total > MAX_PROMPT_SECONDS + 3
    prepared = prepare_prompt(path, None, None, "en", None)
    cut = len(prepared.wav16)
    assert len(prepared.wav24) == cut * 3 // 2  # both rates cut at the same instant
    limit = MAX_PROMPT_SECONDS * SEMANTIC_SAMPLE_RATE
    # The cut's whole scoring window lies in the last silence that fits before the limit.
    margin = PAUSE_FRAMES // 2 * SEMANTIC_HOP
    kept = max(i for i, (start, _) in enumerate(gaps) if start + 2 * margin <= limit)
    start, end = gaps[kept]
    assert start + margin <= cut <= min(end - margin, limit), (cut, gaps[kept])
    seconds = cut / SEMANTIC_SAMPLE_RATE
    assert prepared.notes[0] == (
        f"the prompt is {total:.1f} s, longer than 15 s: trimmed at a pause to {seconds:.1f} s"
    )
    # Whisper transcribes the kept sentences.
    assert error_counts(prepared.transcript, " ".join(SENTENCES[: kept + 1])).rate <= 0.2, prepared.transcript
    # A transcript that is not of this recording cannot be cut with it: the same cut, and whisper's words.
    other = prepare_prompt(path, "A transcript of another recording, which does not match this one.", None,
                           "en", None)  # fmt: skip
    assert np.array_equal(other.wav16, prepared.wav16) and other.transcript == prepared.transcript
    assert other.notes[1] == (
        "its transcript could not be aligned with the recording to cut it there, so the kept part was "
        "transcribed"
    )
    # And the trimmed prompt clones.
    result = tts.clone_with_details(path, None, TARGET_TEXT, **FAST)
    assert result.prompt.seconds == seconds and np.abs(result.audio).max() > 0


def test_a_long_prompt_with_its_transcript_is_cut_between_words_with_its_text(tts, clips, tmp_path):
    path, gaps = write_speech(tmp_path / "long.wav", clips)
    given = prepare_prompt(path, " ".join(SENTENCES), None, "en", None)
    # The aligner puts the cut in the last pause between sentences before 15 s, and the transcript keeps
    # exactly the sentences before it: the given words, not whisper's.
    limit = MAX_PROMPT_SECONDS * SEMANTIC_SAMPLE_RATE
    kept = max(i for i, (start, _) in enumerate(gaps) if start < limit)
    start, end = gaps[kept]
    assert start <= len(given.wav16) <= min(end, limit), (len(given.wav16), gaps[kept])
    text = " ".join(SENTENCES[: kept + 1])
    assert given.transcript == text and given.phone_ids == text_to_ids(text, "en")
    assert given.notes[1] == f"its transcript was cut at the same word gap: {text!r}"
    prompt = tts.encode_prompt(path, " ".join(SENTENCES))
    assert prompt.transcript == text and prompt.num_samples == len(given.wav16)


def test_pause_cut_takes_the_quietest_stretch_in_the_second_half_of_the_limit():
    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal(20 * SEMANTIC_SAMPLE_RATE)).astype(np.float32)
    for seconds, level in ((4.0, 0.0), (9.0, 0.001), (12.0, 0.01), (16.0, 0.0)):  # dips of 0.4 s
        start = int(seconds * SEMANTIC_SAMPLE_RATE)
        wav[start : start + 6400] *= level
    # 4 s is before half the limit and 16 s after it: the quietest dip between is the one at 9 s.
    cut = pause_cut(wav, 15.0) * SEMANTIC_HOP / SEMANTIC_SAMPLE_RATE
    assert 9.1 <= cut <= 9.3
    # Without any dip the cut still lands within [limit / 2, limit].
    steady = (0.1 * rng.standard_normal(20 * SEMANTIC_SAMPLE_RATE)).astype(np.float32)
    assert 7.5 <= pause_cut(steady, 15.0) * SEMANTIC_HOP / SEMANTIC_SAMPLE_RATE <= 15.0
