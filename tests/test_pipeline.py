"""The voice-cloning pipeline on the tiny fixture model: reference parity, fast mode, long text, inputs."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from pipeline_support import PROMPT_TEXT, TARGET_TEXT, write_tone
from safetensors.torch import load_file

import maskgct
from maskgct import longtext
from maskgct.api import InputError, MaskGCT, Prompt
from maskgct.audio import AudioError
from maskgct.checkpoint import CheckpointError
from maskgct.longtext import crossfade_join, split_ids
from maskgct.precision import fast_dtype
from maskgct.text import text_to_ids


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint


@pytest.fixture(scope="module")
def tts(checkpoint):
    return maskgct.MaskGCT.from_pretrained(checkpoint)


@pytest.mark.parametrize(
    "case, duration, seed", [("pipeline_rule", "rule", 2025), ("pipeline_len1p5", 1.5, 2024)]
)
def test_reference_mode_reproduces_the_reference_pipeline(
    tts, fixtures, reference_case, one_thread, case, duration, seed
):
    ref, meta = reference_case(case)
    assert (meta["prompt_text"], meta["target_text"]) == (PROMPT_TEXT, TARGET_TEXT)
    result = tts.clone_with_details(
        fixtures / "prompt.wav", PROMPT_TEXT, TARGET_TEXT, duration=duration, seed=seed, mode="reference"
    )
    (chunk,) = result.chunks
    # Every stage, from the texts through our G2P.
    assert result.prompt.phone_ids == ref["prompt_phone_ids"].tolist()
    assert chunk.phone_ids == ref["target_phone_ids"].tolist()
    assert torch.equal(result.prompt.semantic[None], ref["semantic_prompt_codes"])
    assert torch.equal(result.prompt.acoustic[None], ref["acoustic_prompt_codes"])
    assert torch.equal(chunk.semantic[None], ref["t2s_output"])
    assert torch.equal(chunk.codes[None], ref["s2a_full_output"])
    assert result.sample_rate == 24000
    assert result.audio.shape == ref["output_wav"].shape
    assert np.abs(result.audio - ref["output_wav"].numpy()).max() < 1e-4


def test_fast_mode_keeps_lengths_prompt_tokens_and_is_seeded(tts, fixtures, one_thread):
    ref = load_file(fixtures / "cases" / "pipeline_rule.safetensors")
    fast = tts.clone_with_details(fixtures / "prompt.wav", PROMPT_TEXT, TARGET_TEXT, seed=2025, mode="fast")
    (chunk,) = fast.chunks
    # Prompt encoding is mode-independent; sampling may differ, the lengths may not.
    assert torch.equal(fast.prompt.semantic[None], ref["semantic_prompt_codes"])
    assert chunk.semantic.shape == ref["t2s_output"][0].shape
    assert chunk.codes.shape == ref["s2a_full_output"][0].shape
    assert fast.audio.shape == ref["output_wav"].shape and np.isfinite(fast.audio).all()
    assert int(chunk.semantic.max()) < 512 and int(chunk.codes.max()) < 64
    again = tts.clone(fast.prompt, text=TARGET_TEXT, seed=2025, mode="fast")
    assert np.array_equal(again, fast.audio)


@pytest.fixture(scope="module")
def tts32(checkpoint):
    """Fast mode in float32 on every machine (the default computes in bfloat16 where it is native)."""
    return maskgct.MaskGCT.from_pretrained(checkpoint, precision="float32")


def test_fast_mode_tokens_agree_with_reference_when_each_layer_is_one_step(tts32, fixtures):
    # The sampler's contract: both modes draw the same random numbers and differ only by ~1e-6 in the
    # hidden states (SDPA, unpadded guidance passes). In multi-step decoding one near-tie flip changes every
    # later step, but with one step per layer a flip stays local, so nearly all tokens must agree.
    tts = tts32
    prompt = tts.encode_prompt(fixtures / "prompt.wav", PROMPT_TEXT)
    kwargs = dict(duration=2.0, seed=3, steps=1, s2a_steps=[1] * 12)
    ref = tts.clone_with_details(prompt, text=TARGET_TEXT, mode="reference", **kwargs).chunks[0]
    fast = tts.clone_with_details(prompt, text=TARGET_TEXT, mode="fast", **kwargs).chunks[0]
    assert ref.semantic.shape == fast.semantic.shape == (100,)
    assert ref.codes.shape == fast.codes.shape == (99, 12)
    assert (ref.semantic == fast.semantic).float().mean() >= 0.97
    assert (ref.codes == fast.codes).float().mean() >= 0.9


def test_bfloat16_weights_take_half_the_memory_and_serve_fast_mode_only(checkpoint, tts32, fixtures):
    half = MaskGCT.from_pretrained(checkpoint, precision="bfloat16")
    layer = half.t2s.diff_estimator.layers[0]
    assert (
        layer.mlp.up_proj.weight.dtype == torch.bfloat16 and half.t2s.cond_emb.weight.dtype == torch.float32
    )
    for name in ("t2s", "s2a_1layer", "s2a_full"):
        full, halved = (sum(p.nbytes for p in getattr(m, name).parameters()) for m in (tts32, half))
        assert halved < 0.75 * full, name
    with pytest.raises(InputError, match="reference mode needs float32 weights"):
        half.clone(fixtures / "prompt.wav", PROMPT_TEXT, TARGET_TEXT, mode="reference", duration=1.0)
    # One step per layer keeps a flipped decision local: bfloat16 moves few semantic tokens (measured 0.99
    # agree) and more of the 64-entry acoustic codes, whose random tiny logits are near ties (0.76).
    prompt = tts32.encode_prompt(fixtures / "prompt.wav", PROMPT_TEXT)
    kwargs = dict(duration=2.0, seed=3, steps=1, s2a_steps=[1] * 12)
    ref = tts32.clone_with_details(prompt, text=TARGET_TEXT, mode="reference", **kwargs).chunks[0]
    fast = half.clone_with_details(prompt, text=TARGET_TEXT, mode="fast", **kwargs).chunks[0]
    assert (ref.semantic == fast.semantic).float().mean() >= 0.9
    assert (ref.codes == fast.codes).float().mean() >= 0.5
    again = half.clone_with_details(prompt, text=TARGET_TEXT, mode="fast", **kwargs).chunks[0]
    assert torch.equal(again.codes, fast.codes) and np.isfinite(fast.audio).all()
    # The prompt encoders stay float32: the same prompt tokens in every precision.
    halved_prompt = half.encode_prompt(fixtures / "prompt.wav", PROMPT_TEXT)
    assert torch.equal(halved_prompt.semantic, prompt.semantic)
    assert torch.equal(halved_prompt.acoustic, prompt.acoustic)
    # Autocast rounds float32 weights as storing them in bfloat16 does: "auto" gives the same tokens.
    auto = MaskGCT.from_pretrained(checkpoint, precision="auto")
    if fast_dtype(auto.device, "auto") == torch.bfloat16:
        same = auto.clone_with_details(prompt, text=TARGET_TEXT, mode="fast", **kwargs).chunks[0]
        assert torch.equal(same.codes, fast.codes)


def test_duration_speed_and_phone_ids(tts, fixtures):
    prompt = tts.encode_prompt(fixtures / "prompt.wav", PROMPT_TEXT)
    fast = dict(mode="fast", steps=2, s2a_steps=[1] * 12, seed=0)
    assert tts.clone_with_details(prompt, text=TARGET_TEXT, duration=1.5, speed=1.5, **fast).chunks[
        0
    ].semantic.shape == (50,)
    # The rule: int(32000 * 30 / 34 / 16000 * 50) = 88 frames, / speed 2 -> 44.
    rule = tts.clone_with_details(prompt, text=TARGET_TEXT, speed=2.0, **fast)
    assert rule.chunks[0].semantic.shape == (44,)
    # S2A generates Tp + T - Ta frames (the reference's one-frame offset): 99 + 44 - 100.
    assert len(rule.audio) == 43 * 480
    ids = prompt.phone_ids
    by_ids = tts.clone(fixtures / "prompt.wav", prompt_phone_ids=ids, phone_ids=rule.chunks[0].phone_ids,
                       speed=2.0, **fast)  # fmt: skip
    assert np.array_equal(by_ids, rule.audio)
    with pytest.raises(InputError, match="no duration model"):
        tts.clone(prompt, text=TARGET_TEXT, duration="auto")
    with pytest.raises(InputError, match="speed"):
        tts.clone(prompt, text=TARGET_TEXT, speed=0)


def test_long_text_is_split_at_sentences_and_crossfaded(tts, fixtures, monkeypatch):
    # A 4 s limit leaves 101 frames after the 2 s prompt; each sentence is ~88 frames by the rule.
    monkeypatch.setattr(longtext, "MAX_SECONDS", 4.0)
    prompt = tts.encode_prompt(fixtures / "prompt.wav", PROMPT_TEXT)
    text = f"{TARGET_TEXT} The birch canoe slid on the smooth planks! Rice is often served in round bowls?"
    result = tts.clone_with_details(prompt, text=text, mode="fast", steps=2, s2a_steps=[1] * 12, seed=1)
    assert len(result.chunks) == 3
    assert [c.phone_ids[-1] for c in result.chunks] == [1, 3, 2]  # . ! ?
    assert sum((c.phone_ids for c in result.chunks), []) == text_to_ids(text)
    for chunk in result.chunks:
        assert len(chunk.semantic) + len(prompt.semantic) <= 4.0 * 50
        assert len(chunk.audio) == (len(prompt.semantic) + len(chunk.semantic) - len(prompt.acoustic)) * 480
    overlap = round(0.05 * 24000)
    assert len(result.audio) == sum(len(c.audio) for c in result.chunks) - 2 * overlap


def test_split_ids_packs_sentences_then_clauses_then_words():
    frames = lambda n: 10 * n  # noqa: E731  ten frames per phone
    sentence = [10, 11, 4, 12, 1]  # "w w _ w ."
    assert split_ids(sentence * 2, frames, 100) == [(sentence * 2, 100)]
    assert split_ids(sentence * 3, frames, 100) == [(sentence * 2, 100), (sentence, 50)]
    clauses = [10, 11, 0, 12, 13, 1]  # "w w , w w ."
    assert [c for c, _ in split_ids(clauses, frames, 50)] == [[10, 11, 0], [12, 13, 1]]
    words = [10, 4, 11, 4, 12, 4, 13, 1]
    assert [c for c, _ in split_ids(words, frames, 50)] == [[10, 4, 11, 4], [12, 4, 13, 1]]
    # Less than 1 s left by the prompt: refused rather than cut into one-word chunks.
    with pytest.raises(InputError, match="shorter prompt"):
        split_ids(words, frames, 20)


def test_crossfade_join_is_equal_power_and_keeps_ends():
    a, b = np.ones(1000, np.float32), np.ones(500, np.float32)
    out = crossfade_join([a, b], 100)
    assert len(out) == 1400 and out[0] == 1 and out[-1] == 1
    # Two equal signals: cos + sin peaks at sqrt(2) in the middle of the fade.
    assert abs(out[950] - np.sqrt(2)) < 1e-2


def test_clone_batch_equals_clone_and_encodes_a_prompt_once(tts, fixtures, monkeypatch):
    calls = []
    encode = MaskGCT.encode_prompt
    monkeypatch.setattr(
        MaskGCT, "encode_prompt", lambda self, *a, **k: calls.append(1) or encode(self, *a, **k)
    )
    wav = str(fixtures / "prompt.wav")
    common = dict(mode="reference", steps=3, s2a_steps=[2, 2] + [1] * 10, seed=7, duration=0.6)
    # Different texts, lengths and seeds in one padded batch; each equals its request alone.
    own = [
        dict(text="Hello there."),
        dict(text="Good bye, my friend.", duration=1.1, seed=8),
        dict(text="Yes."),
    ]
    requests = [dict(prompt=wav, prompt_text=PROMPT_TEXT, **r) for r in own]
    outputs = tts.clone_batch(requests, **common)
    assert len(calls) == 1
    for request, audio in zip(own, outputs, strict=True):
        assert np.array_equal(audio, tts.clone(wav, PROMPT_TEXT, **{**common, **request}))
    # Fast mode: one padded forward per pass for the whole batch (floats may differ from alone).
    fast = tts.clone_batch(requests, **{**common, "mode": "fast"})
    assert [len(a) for a in fast] == [len(a) for a in outputs] and all(np.isfinite(a).all() for a in fast)


def test_prompt_as_array_equals_the_file(tts, fixtures):
    wav, rate = sf.read(fixtures / "prompt.wav", dtype="float32")
    from_array = tts.encode_prompt(wav, PROMPT_TEXT, sample_rate=rate)
    from_file = tts.encode_prompt(fixtures / "prompt.wav", PROMPT_TEXT)
    assert torch.equal(from_array.semantic, from_file.semantic)
    assert torch.equal(from_array.acoustic, from_file.acoustic)


def test_bad_inputs_raise_one_clear_error(tts, fixtures, tmp_path):
    wav = fixtures / "prompt.wav"
    cases = [
        (dict(prompt=tmp_path / "missing.wav"), AudioError, "not found"),
        (dict(prompt=write_tone(tmp_path / "short.wav", 0.5)), AudioError, "too short"),
        # Trimmed, not refused: the transcript then no longer fits, and whisper hears no words in a tone.
        (dict(prompt=write_tone(tmp_path / "long.wav", 31)), InputError, "heard no words"),
        (dict(prompt=write_tone(tmp_path / "silent.wav", 2, amplitude=0)), AudioError, "silent"),
        (dict(prompt=write_tone(tmp_path / "tone.wav", 2), prompt_text=None), InputError, "heard no words"),
        (dict(text="   "), InputError, "text to speak is empty"),
        (dict(text="..."), InputError, "^text: .*nothing pronounceable"),
        (dict(prompt_text="..."), InputError, "^prompt text: .*nothing pronounceable"),
        (dict(prompt_text=" "), InputError, "^the prompt text is empty$"),
        (dict(mode="quick"), InputError, "mode"),
    ]
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    cases.append((dict(prompt=tmp_path / "corrupt.wav"), AudioError, "cannot read"))
    for overrides, error, message in cases:
        kwargs = {"prompt": wav, "prompt_text": PROMPT_TEXT, "text": TARGET_TEXT, **overrides}
        with pytest.raises(error, match=message):
            tts.clone(kwargs.pop("prompt"), kwargs.pop("prompt_text"), kwargs.pop("text"), **kwargs)


def test_incompatible_checkpoints_are_refused(checkpoint, tmp_path, fixtures):
    with pytest.raises(CheckpointError, match="not a maskgct checkpoint folder"):
        MaskGCT.from_pretrained(tmp_path)
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "config.json").write_text(json.dumps({"format": "maskgct", "format_version": 99}))
    with pytest.raises(CheckpointError, match="newer"):
        MaskGCT.from_pretrained(newer)
    with pytest.raises(CheckpointError, match="could not be downloaded"):
        MaskGCT.from_pretrained("nobody/no-such-model")
    tts = MaskGCT.from_pretrained(checkpoint)
    with pytest.raises(CheckpointError, match="incompatible"):
        MaskGCT(tts.tokenizer, tts.codec, tts.t2s, tts.s2a_full, tts.s2a_full)


def test_save_pretrained_round_trip(tts, fixtures, tmp_path):
    tts.save_pretrained(tmp_path / "copy", w2v_bert=str(fixtures / "w2v_bert_tiny"))
    again = MaskGCT.from_pretrained(tmp_path / "copy")
    prompt = again.encode_prompt(fixtures / "prompt.wav", PROMPT_TEXT)
    assert isinstance(prompt, Prompt) and len(prompt.semantic) == 99
    for name, value in tts.t2s.state_dict().items():
        assert torch.equal(value, again.t2s.state_dict()[name])


def test_default_s2a_schedule_fits_the_codecs_layer_count():
    from maskgct.api import SamplingOptions

    assert SamplingOptions().for_layers(12) == SamplingOptions()  # the release's schedule, unchanged
    assert SamplingOptions().for_layers(8).s2a_steps == (25, 10, 1, 1, 1, 1, 1, 1)
    assert SamplingOptions().for_layers(1).s2a_steps == (25,)
