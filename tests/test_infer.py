"""``python -m maskgct.infer``: one utterance, meta-list batches, and one-line errors with exit code 2."""

import importlib
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from pipeline_support import PROMPT_TEXT, TARGET_TEXT, write_tone

from maskgct.cli import pick_device
from maskgct.eval.runner import evaluate, read_timings
from maskgct.infer import main


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "maskgct.infer", *map(str, args)], capture_output=True, text=True
    )


def test_cli_clones_a_voice_and_reports_bad_input_in_one_line(checkpoint, fixtures, tmp_path):
    out = tmp_path / "out.wav"
    done = run_cli("--checkpoint", checkpoint, "--prompt", fixtures / "prompt.wav",
                   "--prompt-text", PROMPT_TEXT, "--text", TARGET_TEXT, "--out", out,
                   "--duration", 1.5, "--seed", 2024)  # fmt: skip
    assert done.returncode == 0, done.stderr
    audio, rate = sf.read(out)
    # 1.5 s -> 75 semantic frames; S2A gives 99 + 75 - 100 = 74 frames of 480 samples.
    assert rate == 24000 and len(audio) == 74 * 480
    assert "RTF" in done.stderr
    failed = run_cli("--checkpoint", checkpoint, "--prompt", tmp_path / "nope.wav", "--prompt-text", "Hi.",
                     "--text", "Hello.", "--out", out)  # fmt: skip
    assert failed.returncode == 2
    assert failed.stderr.strip() == f"error: audio file not found: {tmp_path / 'nope.wav'}"


def test_bad_input_gives_exit_code_2_and_one_line(checkpoint, fixtures, tmp_path, capsys, monkeypatch):
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt not audio")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("MASKGCT_DEFAULT_CHECKPOINT", str(tmp_path / "empty"))
    prompt, out = fixtures / "prompt.wav", tmp_path / "out.wav"
    base = [
        "--checkpoint",
        checkpoint,
        "--prompt",
        prompt,
        "--prompt-text",
        PROMPT_TEXT,
        "--text",
        TARGET_TEXT,
    ]
    cases = [
        (["--prompt", tmp_path / "corrupt.wav"], "cannot read audio file"),
        (["--prompt", write_tone(tmp_path / "silent.wav", 2, amplitude=0)], "is silent"),
        (["--prompt", write_tone(tmp_path / "short.wav", 0.4)], "too short (0.40 s); at least 1 s"),
        # A long prompt is trimmed, not refused; its transcript then no longer fits and whisper hears a tone.
        (["--prompt", write_tone(tmp_path / "long.wav", 31)], "whisper tiny.en heard no words"),
        (["--text", ""], "the text to speak is empty"),
        (["--text", "..."], "nothing pronounceable"),
        (["--prompt-text", " "], "the prompt text is empty"),
        (["--checkpoint", fixtures / "w2v_bert_tiny"], "not a maskgct checkpoint"),
        (["--checkpoint", fixtures], "not a maskgct checkpoint folder (no config.json)"),
        (["--duration", "auto"], "no duration model in this checkpoint"),
        (["--text-file", tmp_path / "missing.txt", "--text", None], "cannot read --text-file"),
        (["--checkpoint", None], "no checkpoint given and no default model"),
        (["--duration", "100", "--text", "Hi."], "cannot be split would last 100.0 s"),
    ]
    for overrides, message in cases:
        args = dict(zip(base[::2], base[1::2], strict=True))
        args.update(zip(overrides[::2], overrides[1::2], strict=True))
        argv = [str(x) for key, value in args.items() if value is not None for x in (key, value)]
        assert main([*argv, "--out", str(out), "--quiet"]) == 2, overrides
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
    # Outputs that cannot take a wav are refused before the model is loaded.
    for target, message in ((tmp_path, "is a directory"), (tmp_path / "out", "ending in .wav")):
        argv = [str(x) for x in base] + ["--out", str(target), "--quiet"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err, err
    # Non-finite numbers and absurd durations are usage errors (argparse: exit 2, one line).
    for option, value, message in (
        ("--cfg", "nan", "finite"),
        ("--temperature", "inf", "finite"),
        ("--speed", "nan", "finite"),
        ("--duration", "1e6", "at most 600"),
        ("--duration", "inf", "finite"),
    ):
        with pytest.raises(SystemExit) as usage:
            main([str(x) for x in base] + [option, value, "--out", str(out)])
        assert usage.value.code == 2 and message in capsys.readouterr().err, (option, value)
    assert not out.exists()
    # No prompt text: whisper transcribes the prompt, and says when it hears no words.
    tone = write_tone(tmp_path / "tone.wav", 2)
    assert (
        main(["--checkpoint", str(checkpoint), "--prompt", str(tone), "--text", "Hi.", "--out", str(out)])
        == 2
    )
    assert "error: whisper tiny.en heard no words in the prompt" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit) as usage:
        main(["--batch", "meta.lst"])
    assert usage.value.code == 2 and "--batch needs --out-dir" in capsys.readouterr().err


def test_batch_meta_list_writes_each_utterance_and_reports_failures(checkpoint, fixtures, tmp_path, capsys):
    (tmp_path / "prompt.wav").write_bytes((fixtures / "prompt.wav").read_bytes())
    meta = tmp_path / "meta.lst"
    meta.write_text(
        f"a|{PROMPT_TEXT}|prompt.wav|Hello there.\n"
        f"b|{PROMPT_TEXT}|prompt.wav|Good bye.\n"
        f"c|{PROMPT_TEXT}|missing.wav|Never mind.\n"
    )
    args = ["--checkpoint", str(checkpoint), "--batch", str(meta), "--out-dir", str(tmp_path / "gen"),
            "--mode", "fast", "--steps", "2", "--seed", "1", "--quiet"]  # fmt: skip
    assert main(args) == 2
    assert "error: 1 of 3 utterances failed (first: c)" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == ["a.wav", "b.wav", "timings.txt"]
    # --batch-size: lines decoded together, a failing line found and skipped; reference mode gives exactly
    # the one-at-a-time audio.
    alone = ["reference" if arg == "fast" else arg for arg in args]
    assert main(alone) == 2
    single = [sf.read(tmp_path / "gen" / f"{utt}.wav")[0] for utt in ("a", "b")]
    assert main([*alone, "--batch-size", "3", "--out-dir", str(tmp_path / "batched")]) == 2
    assert "error: 1 of 3 utterances failed (first: c)" in capsys.readouterr().err
    batched = [sf.read(tmp_path / "batched" / f"{utt}.wav")[0] for utt in ("a", "b")]
    assert all(np.array_equal(x, y) for x, y in zip(single, batched, strict=True))
    meta.write_text("\n".join(meta.read_text().splitlines()[:2]) + "\n")
    assert main(args) == 0
    # timings.txt fills the evaluation's RTF column: synthesis seconds over generated seconds.
    timings = read_timings(tmp_path / "gen" / "timings.txt")
    assert sorted(timings) == ["a", "b"] and all(0 < t < 60 for t in timings.values())
    summary = evaluate(meta, tmp_path / "gen", metrics=(), progress=False)
    seconds = [sf.info(tmp_path / "gen" / f"{utt}.wav").duration for utt in ("a", "b")]
    assert summary["rtf_utts"] == 2
    assert summary["rtf"] == pytest.approx(sum(timings.values()) / sum(seconds), rel=1e-3)


@pytest.mark.parametrize(
    "module, argv",
    [
        ("maskgct.infer", []),
        ("maskgct.vc_cli", []),
        ("maskgct.serve.__main__", []),
        ("maskgct.eval.__main__", []),
        ("maskgct.eval.diagnose", []),
        ("maskgct.data.__main__", ["extract"]),
        ("maskgct.codecs.__main__", ["encode"]),
        ("maskgct.codecs.semantic", ["stats"]),
    ],
)
def test_every_device_option_defaults_to_auto(module, argv, capsys):
    with pytest.raises(SystemExit) as done:
        importlib.import_module(module).main([*argv, "--help"])
    assert done.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert re.search(
        r"--device DEVICE [^-]*auto \(CUDA when present, else CPU\)[^()]*\(default: auto\)", help_text
    )


def test_pick_device_resolves_auto_and_refuses_what_is_not_there():
    assert pick_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        pick_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda:1")


def test_train_help_lists_the_tasks_and_exits_0():
    # Hydra's own --help composes the config first and fails without a task: ours answers instead.
    for command in (["-m", "maskgct.train", "--help"], ["-m", "maskgct", "train", "-h"]):
        done = subprocess.run([sys.executable, *command], capture_output=True, text=True)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert done.stdout.startswith("usage: ") and "Traceback" not in done.stdout
        tasks = next(line for line in done.stdout.splitlines() if line.startswith("tasks:"))
        assert tasks.split(":")[1].strip().split(", ") == [
            "acoustic_codec", "duration", "mel_codec", "s2a_1layer", "s2a_full", "semantic_codec", "t2s"
        ]  # fmt: skip
