"""``python -m maskgct.eval.diagnose``: the clone and its stage-skipping versions through whisper."""

import shutil

import numpy as np
import soundfile as sf

from maskgct.data.synth import ESPEAK_VOICES, build_corpus
from maskgct.eval.diagnose import main


def test_diagnose_hears_each_version_and_rejects_a_meta_without_recordings(tiny_checkpoint, tmp_path, capsys):
    sets = build_corpus(
        tmp_path / "corpus", ESPEAK_VOICES[:1], utts_per_speaker=2, dev_per_speaker=0, heldout=()
    )
    train = sets["train"]
    target, prompt = train.utt_ids
    meta = tmp_path / "meta.lst"
    meta.write_text(
        f"{target}|{train.text[prompt]}|{train.wav_scp[prompt]}|{train.text[target]}|{train.wav_scp[target]}\n"
    )
    # The "clone" is the recording itself: whisper must hear it as well as the recording.
    (tmp_path / "gen").mkdir()
    shutil.copyfile(train.wav_scp[target], tmp_path / "gen" / f"{target}.wav")
    args = ["--checkpoint", str(tiny_checkpoint), "--meta", str(meta), "--gen-dir", str(tmp_path / "gen")]
    assert main([*args, "--train-dir", str(tmp_path / "corpus" / "train")]) == 0
    lines = capsys.readouterr().out.splitlines()
    wers = {line.split(": ")[0].split("  ", 2)[-1]: float(line.split()[1]) for line in lines if "WER" in line}
    assert list(wers) == [
        "clone",
        "from the recording's semantic tokens (S2A + codec)",
        "the recording's first acoustic layer + S2A's finer layers",
        "codec round trip, first layer(s) only (+ semantic tokens if the codec reads them)",
        "codec round trip of the recording",
        "the recording",
    ]
    assert wers["clone"] == wers["the recording"] < 0.5
    assert wers["codec round trip of the recording"] > 0.5  # random weights: no words
    assert lines[-1].startswith("speaker similarity of the clone: to the prompt")

    # Two clones: the error rates are pooled over both (the second "clone" is faint noise: no words).
    with meta.open("a") as file:
        file.write(
            f"{prompt}|{train.text[target]}|{train.wav_scp[target]}|{train.text[prompt]}|{train.wav_scp[prompt]}\n"
        )
    noise = 0.01 * np.random.default_rng(0).standard_normal(24000).astype(np.float32)
    sf.write(tmp_path / "gen" / f"{prompt}.wav", noise, 24000)
    assert main([*args, "--train-dir", str(tmp_path / "corpus" / "train"), "--count", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    pooled = lines[lines.index(next(x for x in lines if x.startswith("whisper WER over the first 2"))) + 1 :]
    pooled = {line.split("  ", 2)[-1]: float(line.split()[1]) for line in pooled if "WER" in line}
    assert pooled["clone"] > pooled["the recording"]  # the silent second clone counts
    assert pooled["the recording"] < 0.5

    meta.write_text(f"{target}|{train.text[prompt]}|{train.wav_scp[prompt]}|{train.text[target]}\n")
    assert main([*args, "--train-dir", str(tmp_path / "corpus" / "train")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no ground-truth recording" in err

    # A report folder whose summary lacks the means: one error line before any model is loaded.
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "summary.json").write_text('{"n": 2}')
    meta.write_text(
        f"{target}|{train.text[prompt]}|{train.wav_scp[prompt]}|{train.text[target]}|{train.wav_scp[target]}\n"
    )
    bad = [*args, "--train-dir", str(tmp_path / "corpus" / "train"), "--report", str(tmp_path / "report")]
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "not the summary" in err
