"""Voice conversion (``maskgct.vc``, ``python -m maskgct.vc``) with the tiny fixture checkpoint: the output
follows the tokenizer → S2A → codec pipeline and has the source's length, long sources are cut at pauses
and crossfaded, batches, and one-line errors with exit code 2."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from pipeline_support import write_tone

from maskgct.api import MaskGCT
from maskgct.audio import load_audio, to_mono
from maskgct.request import InputError
from maskgct.vc import TOKEN_PAD_SECONDS, convert_voice, encode_reference, plan_chunks
from maskgct.vc_cli import main

RATE = 24000
OVERLAP = 1200  # the 50 ms crossfade at 24 kHz


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint


@pytest.fixture(scope="module")
def model(checkpoint):
    return MaskGCT.from_pretrained(checkpoint)


def bursts(seconds=(2.5, 2.5, 2.5, 2.5, 2.5), gap=0.5, rate=RATE) -> np.ndarray:
    """Tone bursts (220 Hz, then 330, ...) separated by ``gap`` seconds of digital silence."""
    parts = []
    for index, length in enumerate(seconds):
        t = np.arange(int(length * rate)) / rate
        parts.append(0.1 * np.sin(2 * np.pi * 110 * (index + 2) * t))
        parts.append(np.zeros(int(gap * rate)))
    return np.concatenate(parts[:-1]).astype(np.float32)


def test_conversion_is_tokenizer_s2a_codec_at_the_source_length(model, fixtures):
    reference = fixtures / "prompt.wav"
    source = bursts((0.7, 0.5), gap=0.2, rate=16000)
    result = convert_voice(model, source, reference, sample_rate=16000, seed=7)
    assert len(result.chunks) == 1 and result.sample_rate == RATE
    # The reference as a prompt: its own tokens and codes, cut to their common length (no transcript).
    ref16, ref24 = load_audio(reference, 16000), load_audio(reference, RATE)
    semantic, acoustic = (
        model.tokenizer.tokenize(ref16),
        model.codec.encode(torch.from_numpy(ref24)[None, None])[0],
    )
    frames = min(len(semantic), len(acoustic))
    assert torch.equal(result.reference.semantic, semantic[:frames])
    assert torch.equal(result.reference.acoustic, acoustic[:frames])
    assert result.reference.phone_ids == []
    # The same steps by hand through the public pieces: one S2A frame per 480 output samples.
    length = round(len(source) * 1.5)
    assert len(result.audio) == length and result.audio.dtype == np.float32
    padded = np.concatenate([source, np.zeros(round(TOKEN_PAD_SECONDS * 16000), np.float32)])
    tokens = model.tokenizer.tokenize(padded)[: -(-length // 480)]
    codes = model.semantic_to_acoustic(result.reference, tokens, generator=torch.Generator().manual_seed(7))
    assert codes.shape == (len(tokens), 12)
    expected = model.codec.decode(codes[None])[0, 0].numpy()[:length]
    np.testing.assert_array_equal(result.audio, expected)
    # The API method, and odd lengths (from a file at another rate; the shortest source) keep the length.
    np.testing.assert_array_equal(
        model.convert_voice(source, reference, sample_rate=16000, seed=7), result.audio
    )
    for seconds in (1.2345, 0.1):
        clip = bursts((seconds,), rate=22050)
        audio = model.convert_voice(clip, reference, sample_rate=22050, seed=1)
        assert len(audio) == len(to_mono(clip, 22050, RATE)) and np.isfinite(audio).all()


def test_long_source_is_cut_at_pauses_and_joined_with_crossfades(model, fixtures):
    source = bursts()  # 14.5 s; silent gaps at 2.5-3, 5.5-6, 8.5-9 and 11.5-12 s
    reference = encode_reference(model, fixtures / "prompt.wav", window_seconds=8)
    result = convert_voice(model, source, reference, sample_rate=RATE, seed=3, window_seconds=8)
    room = 8 * 50 - len(reference.semantic)
    # 301 frames of room: the quietest latest cuts are 5.96 s and 11.92 s, so three chunks.
    assert [(c.start, c.end) for c in result.chunks] == [(0, 143040), (141840, 286080), (284880, len(source))]
    assert len(result.audio) == len(source)
    for before, after in zip(result.chunks[:-1], result.chunks[1:], strict=True):
        assert after.start == before.end - OVERLAP
        assert not source[after.start : before.end].any()  # the crossfade lies in a pause
    for chunk in result.chunks:
        assert len(chunk.semantic) == len(chunk.codes) == -(-(chunk.end - chunk.start) // 480) <= room
        assert len(chunk.audio) == chunk.end - chunk.start
    # Each chunk's audio is in place; over each overlap the two are mixed with equal-power gains.
    out, (first, second, third) = result.audio, result.chunks
    np.testing.assert_array_equal(out[: second.start], first.audio[: second.start])
    np.testing.assert_array_equal(
        out[first.end : third.start], second.audio[OVERLAP : third.start - second.start]
    )
    np.testing.assert_array_equal(out[second.end :], third.audio[OVERLAP:])
    angle = (np.arange(OVERLAP) + 0.5) / OVERLAP * np.pi / 2
    mixed = first.audio[-OVERLAP:] * np.cos(angle) + second.audio[:OVERLAP] * np.sin(angle)
    np.testing.assert_allclose(out[second.start : first.end], mixed, atol=1e-6)
    # A seed gives the same audio; another seed other audio.
    again = convert_voice(model, source, reference, sample_rate=RATE, seed=3, window_seconds=8)
    np.testing.assert_array_equal(again.audio, result.audio)
    other = convert_voice(model, source, reference, sample_rate=RATE, seed=4, window_seconds=8)
    assert not np.array_equal(other.audio, result.audio)


def test_plan_chunks_prefers_the_latest_quiet_spot_and_fits_the_room():
    rng = np.random.default_rng(0)
    speech = (0.1 * rng.standard_normal(20 * RATE)).astype(np.float32)  # no pause at all
    pieces = plan_chunks(speech, 300)
    # 1000 frames, each cut 148-297 frames (half to all of the 300 less the crossfade) after the last.
    assert 4 <= len(pieces) <= 7 and pieces[0][0] == 0 and pieces[-1][1] == len(speech)
    for (_, end), (start, _) in zip(pieces[:-1], pieces[1:], strict=True):
        assert start == end - OVERLAP and end % 480 == 0
    assert all(-(-(end - start) // 480) <= 300 for start, end in pieces)
    quiet = speech.copy()
    quiet[4 * RATE : 4 * RATE + 6000] *= 0.01  # one soft spot (250 ms) in the first chunk's range
    cut = plan_chunks(quiet, 300)[1][0] + OVERLAP
    assert 4 * RATE + 3 * 480 <= cut <= 4 * RATE + 6000 - 2 * 480
    assert plan_chunks(speech[: 6 * RATE], 300) == [(0, 6 * RATE)]


def test_api_refuses_bad_requests(model, fixtures, tmp_path):
    ref = fixtures / "prompt.wav"
    tone = write_tone(tmp_path / "tone.wav", 2)
    cases = [
        (dict(source=tone, reference=ref, cfg=float("nan")), "cfg must be a finite number"),
        (dict(source=tone, reference=ref, temperature=float("inf")), "temperature must be a finite"),
        (dict(source=tone, reference=ref, window_seconds=float("nan")), "the window must lie in [6, 30]"),
        (dict(source=tone, reference=ref, window_seconds=40), "the window must lie in"),
        (dict(source=tone, reference=ref, steps=(1, 2)), "steps needs 12 entries"),
        (dict(source=tone, reference=ref, steps=[0] * 12), "at least 1"),
        (dict(source=tone, reference=ref, mode="turbo"), "mode"),
        (dict(source=np.zeros(100), reference=ref), "source given as an array needs its sample_rate"),
        (dict(source=tone, reference=ref, max_source_seconds=1.5), "source " + str(tone) + " is too long"),
        (dict(source=tone, reference=write_tone(tmp_path / "r.wav", 26)), "at most 25 s"),
        (
            dict(
                source=tone,
                reference=encode_reference(model, write_tone(tmp_path / "r2.wav", 20)),
                window_seconds=10,
            ),
            "the reference leaves 0.0 s of the 10 s window",
        ),  # fmt: skip
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError) as error:
            convert_voice(model, **kwargs)
        assert message in str(error.value), (kwargs, error.value)
    assert issubclass(InputError, ValueError)


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "maskgct.vc", *map(str, args)], capture_output=True, text=True
    )


def test_cli_converts_and_reports_bad_input_in_one_line(checkpoint, fixtures, tmp_path):
    source = tmp_path / "long.wav"
    sf.write(source, bursts(), RATE)
    out = tmp_path / "out.wav"
    done = run_cli("--checkpoint", checkpoint, "--source", source, "--reference", fixtures / "prompt.wav",
                   "--out", out, "--seed", 5, "--window", 8, "--mode", "fast")  # fmt: skip
    assert done.returncode == 0, done.stderr
    audio, rate = sf.read(out)
    assert rate == RATE and len(audio) == len(bursts())
    assert "in 3 chunks" in done.stderr and "RTF" in done.stderr
    failed = run_cli("--checkpoint", checkpoint, "--source", tmp_path / "nope.wav", "--reference",
                     fixtures / "prompt.wav", "--out", tmp_path / "x.wav")  # fmt: skip
    assert failed.returncode == 2 and not (tmp_path / "x.wav").exists()
    assert failed.stderr.strip() == f"error: audio file not found: {tmp_path / 'nope.wav'}"


def test_cli_errors_exit_2_with_one_line_and_no_output(checkpoint, fixtures, tmp_path, capsys, monkeypatch):
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt not audio")
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("MASKGCT_DEFAULT_CHECKPOINT", str(tmp_path / "empty"))
    out = tmp_path / "out.wav"
    base = {"--checkpoint": checkpoint, "--source": write_tone(tmp_path / "src.wav", 2),
            "--reference": fixtures / "prompt.wav", "--out": out}  # fmt: skip
    cases = [
        ({"--source": tmp_path / "corrupt.wav"}, "cannot read audio file"),
        ({"--reference": tmp_path / "corrupt.wav"}, "cannot read audio file"),
        ({"--source": write_tone(tmp_path / "s0.wav", 2, amplitude=0)}, "is silent"),
        ({"--reference": write_tone(tmp_path / "r0.wav", 2, amplitude=0)}, "is silent"),
        ({"--source": write_tone(tmp_path / "s1.wav", 0.05)}, "too short (0.05 s); at least 0.1 s"),
        ({"--reference": write_tone(tmp_path / "r1.wav", 0.4)}, "too short (0.40 s); at least 1 s"),
        ({"--reference": write_tone(tmp_path / "r2.wav", 26)}, "too long (26.0 s); at most 25 s"),
        ({"--reference": write_tone(tmp_path / "r3.wav", 5), "--window": 8}, "at most 3 s"),
        ({"--window": 3}, "the window must lie in [6, 30] s"),
        ({"--out": tmp_path}, "is a directory"),
        ({"--out": tmp_path / "out"}, "ending in .wav"),
        ({"--checkpoint": fixtures}, "no config.json"),
        ({"--checkpoint": None}, "no checkpoint given and no default model"),
        ({"--steps": "1,2"}, "steps needs 12 entries"),
        ({"--device": "gpu7"}, "unknown device"),
    ]
    for overrides, message in cases:
        args = {**base, **overrides}
        argv = [str(x) for key, value in args.items() if value is not None for x in (key, value)]
        assert main([*argv, "--quiet"]) == 2, overrides
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists() and not list(tmp_path.glob(".*partial")), overrides
    argv = [str(x) for item in base.items() for x in item]
    usage = [
        (["--cfg", "nan"], "finite"),
        (["--temperature", "inf"], "finite"),
        (["--window", "nan"], "finite"),
        (["--steps", "25,ten"], "comma-separated integers"),
        (["--mode", "turbo"], "invalid choice"),
        (["--batch", "x.tsv"], "--batch reads sources and references from the list"),
    ]
    for extra, message in usage:
        with pytest.raises(SystemExit) as exit_:
            main([*argv, *extra])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err, (extra, err)
    for argv, message in (
        (["--source", "a.wav", "--out", "o.wav"], "--reference is required"),
        (["--batch", "x.tsv"], "--batch needs --out-dir"),
        (["--source", "a.wav", "--reference", "b.wav", "--out-dir", "d"], "--out-dir goes with --batch"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and message in capsys.readouterr().err, argv
    assert not out.exists()


def test_batch_converts_each_line_encodes_a_reference_once_and_reports_failures(
    checkpoint, fixtures, tmp_path, capsys, monkeypatch
):
    import maskgct.vc

    (tmp_path / "ref.wav").write_bytes((fixtures / "prompt.wav").read_bytes())
    write_tone(tmp_path / "src.wav", 1.5)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("a\tsrc.wav\tref.wav\n\nb\tsrc.wav\tref.wav\nc\tmissing.wav\tref.wav\n")
    encoded = []
    original = maskgct.vc.encode_reference
    monkeypatch.setattr(
        maskgct.vc, "encode_reference", lambda *a, **k: encoded.append(a[1]) or original(*a, **k)
    )
    common = ["--checkpoint", str(checkpoint), "--seed", "1", "--quiet"]
    gen = tmp_path / "gen"
    assert main([*common, "--batch", str(pairs), "--out-dir", str(gen)]) == 2
    assert "error: 1 of 3 conversions failed (first: c)" in capsys.readouterr().err
    assert sorted(p.name for p in gen.iterdir()) == ["a.wav", "b.wav"] and encoded == [tmp_path / "ref.wav"]
    # A batch line gives what the single command gives with the same seed.
    single = tmp_path / "single.wav"
    argv = [*common, "--source", str(tmp_path / "src.wav"), "--reference", str(tmp_path / "ref.wav")]
    assert main([*argv, "--out", str(single)]) == 0
    np.testing.assert_array_equal(sf.read(gen / "a.wav")[0], sf.read(single)[0])
    assert len(sf.read(single)[0]) == round(1.5 * RATE)
    # Malformed lists and output folders are refused before the model is loaded.
    for text, message in (
        ("a\tsrc.wav\n", "pairs.tsv:1: expected utt<TAB>source_wav<TAB>reference_wav"),
        ("a\tsrc.wav\tref.wav\na\tsrc.wav\tref.wav\n", "utterance id 'a' repeats line 1"),
        ("x/y\tsrc.wav\tref.wav\n", "plain file name stem"),
        ("\n", "batch list is empty"),
    ):
        pairs.write_text(text)
        assert main([*common, "--batch", str(pairs), "--out-dir", str(tmp_path / "new")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, err
    pairs.write_text("a\tsrc.wav\tref.wav\n")
    assert main([*common, "--batch", str(pairs), "--out-dir", str(tmp_path / "src.wav")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main([*common, "--batch", str(tmp_path / "none.tsv"), "--out-dir", str(gen)]) == 2
    assert "batch list not found" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
