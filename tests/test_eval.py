"""Evaluation metrics on synthetic speech with known text and known voices (piper joe, espeak-ng), offline."""

import csv
import json
import time

import numpy as np
import pytest
import soundfile as sf

from maskgct.data.synth import EspeakSynth, PiperSynth, Voice
from maskgct.eval import (
    EvalError,
    MetaEntry,
    MetaError,
    error_counts,
    evaluate,
    normalize_text,
    read_meta,
    speaker_similarity,
    wer,
    write_meta,
)
from maskgct.eval.__main__ import main
from maskgct.eval.speaker import TorchScriptSpeakerEncoder

# Few words shared between sentences, so scoring one against another's text is almost all errors.
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things.",
    "My grandmother planted seven apple trees behind our house.",
    "Heavy rain delayed every train leaving Boston yesterday evening.",
    "Children laughed while chasing bright yellow kites.",
]
PROMPT_TEXT = "This is a short recording of my voice."
ESPEAK_VOICES = ("en-us+m3", "en-gb-x-rp+f2")


def _write(path, wav_and_rate):
    wav, rate = wav_and_rate
    sf.write(path, wav, rate)
    return path


@pytest.fixture(scope="session")
def speech(tmp_path_factory):
    """Joe's prompt and sentences, two espeak voices' sentences, a meta list asking for Joe's sentences."""
    piper, espeak = PiperSynth(), EspeakSynth()
    joe = Voice("joe", "piper", "en_US-joe-medium")
    root = tmp_path_factory.mktemp("eval_speech")
    gen = root / "gen"
    gen.mkdir()
    prompt = _write(root / "prompt_joe.wav", piper(joe, PROMPT_TEXT))
    entries = []
    for index, text in enumerate(SENTENCES):
        utt = f"utt{index}"
        wav = _write(gen / f"{utt}.wav", piper(joe, text))
        entries.append(MetaEntry(utt, PROMPT_TEXT, prompt, text, gt_wav=wav))
    voices = {
        voice: [
            _write(root / f"{voice}_{i}.wav", espeak(Voice(voice, "espeak", voice), text))
            for i, text in enumerate(SENTENCES[:2])
        ]
        for voice in ESPEAK_VOICES
    }
    meta = root / "meta.lst"
    write_meta(meta, entries)
    return {"root": root, "gen": gen, "meta": meta, "entries": entries, "espeak": voices}


@pytest.fixture(scope="session")
def full_report(speech):
    out = speech["root"] / "report"
    timings = {entry.utt: 0.5 for entry in speech["entries"]}
    summary = evaluate(speech["meta"], speech["gen"], out, timings=timings, progress=False)
    return summary, out


def test_ground_truth_speech_scores_low_wer(full_report):
    summary, _ = full_report
    assert summary["n"] == len(SENTENCES)
    assert summary["wer"] < 0.2
    assert summary["wer_corpus"] < 0.2
    assert summary["ref_tokens"] * 0.8 < summary["hits"] <= min(summary["ref_tokens"], summary["hyp_tokens"])
    assert summary["dur_ratio"] == pytest.approx(1.0, abs=1e-3)  # gt_wav is the generated file itself
    assert 1.0 < summary["dnsmos_ovrl"] < 5.0
    assert 0.0 < summary["rtf"] < 1.0  # 0.5 s to make clips of 2-4 s
    assert set(summary["seconds_per_utt"]) == {"wer", "sim", "dnsmos"}


def test_shuffled_texts_score_high_wer(speech):
    texts = [entry.target_text for entry in speech["entries"]]
    shuffled = [
        MetaEntry(entry.utt, entry.prompt_text, entry.prompt_wav, texts[(index + 1) % len(texts)])
        for index, entry in enumerate(speech["entries"])
    ]
    summary = evaluate(shuffled, speech["gen"], metrics=("wer",), progress=False)
    assert summary["wer"] > 0.8
    assert summary["wer_corpus"] > 0.8
    assert summary["hits"] < 0.2 * summary["ref_tokens"]


def test_report_files_are_written(full_report):
    summary, out = full_report
    with (out / "results.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["utt"] for row in rows] == [f"utt{i}" for i in range(len(SENTENCES))]
    assert {"wer", "sim", "dnsmos_ovrl", "dur_ratio", "rtf", "hypothesis"} <= set(rows[0])
    markdown = (out / "summary.md").read_text()
    assert "| WER (mean of utterances) |" in markdown and "seconds per utterance" in markdown
    assert json.loads((out / "summary.json").read_text())["wer"] == pytest.approx(summary["wer"])
    png = (out / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000


def test_same_voice_is_more_similar_than_different_voices(speech):
    joe = [speech["gen"] / "utt0.wav", speech["gen"] / "utt1.wav"]
    male, female = (speech["espeak"][voice] for voice in ESPEAK_VOICES)
    same = [speaker_similarity(*joe), speaker_similarity(*male), speaker_similarity(*female)]
    different = [
        speaker_similarity(joe[0], male[0]),
        speaker_similarity(joe[1], female[1]),
        speaker_similarity(male[0], female[0]),
    ]
    assert min(same) > max(different), (same, different)


def test_wer_function_and_prompt_similarity(full_report, speech):
    summary, _ = full_report
    assert wer(speech["gen"] / "utt0.wav", SENTENCES[0]) < 0.2
    assert wer(speech["gen"] / "utt0.wav", SENTENCES[3]) > 0.8
    assert summary["sim"] > 0.7  # Joe's sentences against Joe's prompt


def test_normalisation_follows_seed_tts_eval():
    assert normalize_text("Hello, World! Don’t   stop.") == ["hello", "world", "don't", "stop"]
    assert normalize_text("你好，世界。", "zh") == ["你", "好", "世", "界"]
    counts = error_counts("the cat sat on mat", "The cat sat on the mat!")
    assert (counts.substitutions, counts.deletions, counts.insertions) == (0, 1, 0)
    assert counts.rate == pytest.approx(1 / 6)
    counts = error_counts("a b c d", "x y")
    assert counts.errors == 4 and counts.rate == 2.0
    with pytest.raises(ValueError, match="no words"):
        error_counts("hello", "?!")


def _counts(hypothesis, reference, **kwargs):
    counts = error_counts(hypothesis, reference, **kwargs)
    return counts.substitutions, counts.deletions, counts.insertions


def test_wer_counts_by_hand():
    assert _counts("a x c", "a b c") == (1, 0, 0)
    assert _counts("a c", "a b c") == (0, 1, 0)
    assert _counts("a b b c", "a b c") == (0, 0, 1)
    assert _counts("", "a b c") == (0, 3, 0)
    # two→too substituted, four deleted, seven inserted: the only alignment with three edits.
    assert _counts("one too three five six seven", "One, two, three, four, five, six.") == (1, 1, 1)
    assert error_counts("one too three five six seven", "one two three four five six").rate == 0.5
    # Token lists (phones, ids) are aligned as given, without normalisation.
    assert _counts(["AH", "B", "!"], ["AH", "B", "C"]) == (1, 0, 0)


def test_wer_of_a_long_pair_is_fast():
    # 1000 distinct words; every 10th substituted, 50 others deleted and 25 new words inserted, far apart,
    # so the minimum alignment is exactly the edits made (the old pure-Python alignment took 3.7 s).
    reference = [f"w{k}" for k in range(1000)]
    hypothesis = []
    for k, word in enumerate(reference):
        if k % 10 == 0:
            hypothesis.append(f"s{k}")
        elif k % 20 == 5:
            continue
        else:
            hypothesis.append(word)
        if k % 40 == 27:
            hypothesis.append(f"i{k}")
    started = time.perf_counter()
    counts = error_counts(" ".join(hypothesis), " ".join(reference))
    seconds = time.perf_counter() - started
    assert (counts.substitutions, counts.deletions, counts.insertions) == (100, 50, 25)
    assert counts.reference_length == 1000 and counts.rate == pytest.approx(0.175)
    assert seconds < 0.5, seconds


def test_seed_tts_normalisation_differs_only_where_documented():
    text = "Don’t stop—now, it's 5 €!"
    # seed-tts-eval deletes ASCII and zhon (CJK, typographic) punctuation only, keeping the apostrophe.
    assert normalize_text(text, normaliser="seed-tts") == ["dont", "stopnow", "it's", "5", "€"]
    assert normalize_text(text) == ["don't", "stopnow", "it's", "5"]
    assert normalize_text("你好，世界。「Hi」", "zh", "seed-tts") == ["你", "好", "世", "界", "H", "i"]
    assert _counts("don't stop", "Don’t stop.") == (0, 0, 0)
    assert _counts("don't stop", "Don’t stop.", normaliser="seed-tts") == (1, 0, 0)
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalize_text("hello", normaliser="whisper")


def test_cli_rejects_an_unknown_normalisation(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--meta", "meta.lst", "--normalise", "whisper"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'whisper'" in capsys.readouterr().err


def test_meta_round_trip_and_errors(tmp_path):
    wavs = tmp_path / "wavs"
    entries = [
        MetaEntry("a", "prompt words", wavs / "p.wav", "target words", wavs / "a.wav"),
        MetaEntry("b", "", wavs / "p.wav", "more words"),
    ]
    write_meta(tmp_path / "meta.lst", entries)
    first_line = (tmp_path / "meta.lst").read_text().splitlines()[0]
    assert first_line == "a|prompt words|wavs/p.wav|target words|wavs/a.wav"
    assert read_meta(tmp_path / "meta.lst") == entries
    bad = tmp_path / "bad.lst"
    bad.write_text("a|x|p.wav|words\nb|x|p.wav\n")
    with pytest.raises(MetaError, match=r"bad.lst:2: expected 4 or 5"):
        read_meta(bad)
    bad.write_text("a|x|p.wav|words\na|y|p.wav|other\n")
    with pytest.raises(MetaError, match="repeats line 1"):
        read_meta(bad)
    with pytest.raises(MetaError, match="not found"):
        read_meta(tmp_path / "absent.lst")


def test_missing_and_silent_audio_are_clear_errors(speech, tmp_path, capsys):
    absent = [MetaEntry("nothing", "", speech["entries"][0].prompt_wav, "words")]
    with pytest.raises(EvalError, match=r"1 audio file\(s\) missing: .*nothing.wav"):
        evaluate(absent, tmp_path, progress=False)
    sf.write(tmp_path / "quiet.wav", np.zeros(16000, dtype=np.float32), 16000)
    silent = [MetaEntry("quiet", "", speech["entries"][0].prompt_wav, "words")]
    # Alone it leaves nothing to score; among scorable lines it is reported for its utterance.
    with pytest.raises(
        EvalError, match="none of the 1 utterances could be scored .*quiet.wav: audio is silent"
    ):
        evaluate(silent, tmp_path, metrics=("wer",), progress=False)
    with pytest.raises(EvalError, match="quiet: target text '...' has no words"):
        evaluate([MetaEntry("quiet", "", speech["entries"][0].prompt_wav, "...")], tmp_path, progress=False)
    with pytest.raises(EvalError, match="unknown metric"):
        evaluate(speech["meta"], speech["gen"], metrics=("mos",), progress=False)
    assert main(["--meta", str(tmp_path / "absent.lst"), "--gen-dir", str(tmp_path), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith("error: meta list not found")


def test_torchscript_speaker_encoder_plugs_in(tmp_path):
    import torch

    class SpectralEnvelope(torch.nn.Module):
        """A stand-in verifier: the mean log-magnitude spectrum of the clip, Float(1, L) → Float(1, 129)."""

        def forward(self, wav: torch.Tensor) -> torch.Tensor:
            spectrum = torch.stft(wav, 256, return_complex=True, window=torch.hann_window(256)).abs()
            return torch.log(spectrum + 1e-5).mean(dim=-1)

    torch.jit.script(SpectralEnvelope()).save(str(tmp_path / "encoder.pt"))
    encoder = TorchScriptSpeakerEncoder(tmp_path / "encoder.pt")
    tone = np.sin(np.arange(16000) * 0.05).astype(np.float32) * 0.5
    assert encoder.embed(tone).shape == (129,)
    assert speaker_similarity(tone, tone, encoder) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="TorchScript"):
        TorchScriptSpeakerEncoder(__file__)


def test_data_dir_becomes_a_meta_list_and_scores_its_ground_truth(speech, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    utts = [f"joe-{entry.utt}" for entry in speech["entries"]]
    maps = {
        "wav.scp": [f"{utt} {entry.gt_wav}" for utt, entry in zip(utts, speech["entries"], strict=True)],
        "text": [f"{utt} {entry.target_text}" for utt, entry in zip(utts, speech["entries"], strict=True)],
        "utt2spk": [f"{utt} joe" for utt in utts],
        "spk2utt": ["joe " + " ".join(utts)],
    }
    for name, lines in maps.items():
        (data / name).write_text("\n".join(lines) + "\n")
    assert main(["--data-dir", str(data), "--write-meta", str(tmp_path / "meta.lst")]) == 0
    entries = read_meta(tmp_path / "meta.lst")
    assert [entry.utt for entry in entries] == utts
    assert entries[0].prompt_wav == speech["entries"][1].gt_wav and entries[0].prompt_text == SENTENCES[1]
    assert entries[-1].prompt_wav == speech["entries"][0].gt_wav  # wraps round within the speaker
    summary = evaluate(entries[:2], None, metrics=("wer",), progress=False)  # no gen dir: score gt_wav
    assert summary["n"] == 2 and summary["wer"] < 0.2
