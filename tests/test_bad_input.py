"""Bad input on every command: one ``error:`` line naming what is wrong, exit 2, no traceback, nothing
half-written (issue 18). One row per case; ``data validate`` finding problems in the data is exit 1.

Rows run in-process through each module's ``main(argv)`` (``maskgct.train``'s through ``sys.argv``, as hydra
reads it); the ``SUBPROCESS`` rows are the paths only a fresh interpreter shows (``python -m`` entry points,
hydra's run-time errors). Placeholders in braces are paths of the ``ws`` workspace.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from pipeline_support import PROMPT_TEXT, TARGET_TEXT, build_snapshot, write_tone
from train_support import write_token_dump

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

MODULES = {
    "infer": "maskgct.infer",
    "codecs": "maskgct.codecs.__main__",
    "data": "maskgct.data.__main__",
    "eval": "maskgct.eval.__main__",
    "diagnose": "maskgct.eval.diagnose",
    "convert": "maskgct.convert",
    "vc": "maskgct.vc_cli",
    "edit": "maskgct.edit_cli",
    "text": "maskgct.text.__main__",
    "maskgct": "maskgct.__main__",
    "train": "maskgct.train.__main__",
}


@dataclass
class Case:
    name: str
    command: str  # a key of MODULES
    argv: list[str]
    code: int
    message: str  # a fragment of the error line (exit 2) or of the output (other codes)
    absent: list[str] = field(default_factory=list)  # paths the command must not leave behind
    unchanged: str | None = None  # a folder whose files must be byte-identical afterwards
    subprocess: bool = False


def infer(*extra: str | None, out: str = "{out_wav}") -> list[str]:
    """A good ``infer`` request with ``extra`` options replacing or adding to its own (None: dropped)."""
    args = {
        "--checkpoint": "{ckpt}",
        "--prompt": "{prompt}",
        "--prompt-text": PROMPT_TEXT,
        "--text": TARGET_TEXT,
        "--out": out,
    }
    args.update(zip(extra[::2], extra[1::2], strict=True))
    return [x for key, value in args.items() if value is not None for x in (key, value)] + ["--quiet"]


def convert(src: str = "{snapshot}", layer: str = "3", stats: str = "{stats}") -> list[str]:
    return ["amphion", src, "{convert_out}", "--w2v-bert", "{w2v_bert}", "--w2v-stats", stats,
            "--config", "{tiny_config}", "--semantic-layer", layer, "--no-copy-w2v-bert"]  # fmt: skip


def train(*overrides: str) -> list[str]:
    return ["task=t2s", "data.train_dump={dump}", "exp_dir={exp}", *overrides]


LONG_TEXT = "Hello there. " * 320  # 4160 characters: over the per-request limit
SLOW_TEXT = "Hello there. " * 300  # 3900 characters: within it, in chunks that each fit the 30 s
EDITED_TEXT = "The birch boat slid on the smooth planks."

# One row per case: name, command, argv, exit code, message fragment[, paths that must not be left].
# fmt: off
CASES = [
    # --- infer: the request, checked before the model loads where it can be
    Case("infer-missing-prompt", "infer", infer("--prompt", "{nowhere}/p.wav"), 2, "audio file not found"),
    Case("infer-corrupt-prompt", "infer", infer("--prompt", "{corrupt_wav}"), 2, "cannot read audio file"),
    Case("infer-silent-prompt", "infer", infer("--prompt", "{silent_wav}"), 2, "is silent"),
    Case("infer-short-prompt", "infer", infer("--prompt", "{short_wav}"), 2, "too short (0.40 s)"),
    Case("infer-empty-text", "infer", infer("--text", ""), 2, "the text to speak is empty"),
    Case("infer-unpronounceable", "infer", infer("--text", "..."), 2, "nothing pronounceable"),
    Case("infer-blank-prompt-text", "infer", infer("--prompt-text", " "), 2, "the prompt text is empty"),
    Case("infer-text-too-long", "infer", infer("--text", LONG_TEXT), 2, "4160 characters; at most 4096"),
    Case("infer-speech-too-long", "infer", infer("--text", SLOW_TEXT, "--duration", "500", "--speed", "0.5"),
         2, "the speech would last 1000 s; at most 600 s per request"),
    Case("infer-missing-text-file", "infer", infer("--text", None, "--text-file", "{nowhere}/t.txt"), 2,
         "cannot read --text-file"),
    Case("infer-out-is-dir", "infer", infer(out="{tmp}"), 2, "is a directory"),
    Case("infer-out-no-ext", "infer", infer(out="{tmp}/out"), 2, "ending in .wav", ["{tmp}/out"]),
    Case("infer-cfg-nan", "infer", infer("--cfg", "nan"), 2, "finite"),
    Case("infer-temperature-inf", "infer", infer("--temperature", "inf"), 2, "finite"),
    Case("infer-speed-nan", "infer", infer("--speed", "nan"), 2, "finite"),
    Case("infer-duration-huge", "infer", infer("--duration", "1e6"), 2, "at most 600"),
    Case("infer-duration-inf", "infer", infer("--duration", "inf"), 2, "finite"),
    Case("infer-duration-one-word", "infer", infer("--duration", "100", "--text", "Hi."), 2,
         "cannot be split would last 100.0 s"),
    Case("infer-duration-auto", "infer", infer("--duration", "auto"), 2, "no duration model"),
    Case("infer-steps-zero", "infer", infer("--steps", "0"), 2, "at least 1"),
    Case("infer-unknown-device", "infer", infer("--device", "abacus"), 2, "unknown device 'abacus'"),
    Case("infer-not-a-checkpoint", "infer", infer("--checkpoint", "{w2v_bert}"), 2,
         "not a maskgct checkpoint"),
    Case("infer-no-checkpoint", "infer", infer("--checkpoint", "{nowhere}"), 2, "not found"),
    Case("infer-batch-without-out-dir", "infer", ["--batch", "{meta}"], 2, "--batch needs --out-dir"),
    # --- a checkpoint's network descriptions and w2v-BERT pointer
    Case("ckpt-class-module-missing", "infer", infer("--checkpoint", "{ckpt_no_module}"), 2,
         "no network class 'maskgct.nosuch.T2S'"),
    Case("ckpt-class-attribute-missing", "infer", infer("--checkpoint", "{ckpt_no_class}"), 2,
         "no network class 'maskgct.t2s.NoSuch'"),
    Case("ckpt-class-outside", "infer", infer("--checkpoint", "{ckpt_outside}"), 2,
         "refusing to build 'os.system' from outside maskgct"),
    Case("ckpt-config-extra-field", "infer", infer("--checkpoint", "{ckpt_extra_field}"), 2,
         "unknown T2SConfig field 'depth'"),
    Case("ckpt-config-wrong-type", "infer", infer("--checkpoint", "{ckpt_wrong_type}"), 2,
         "T2SConfig.hidden_size = '64' is not an integer"),
    Case("ckpt-codec-config-wrong-type", "infer", infer("--checkpoint", "{ckpt_codec_type}"), 2,
         "SemanticCodecConfig.codebook_size = 1.5 is not an integer"),
    Case("ckpt-w2v-bert-a-file", "infer", infer("--checkpoint", "{ckpt_w2v_file}"), 2,
         "w2v-BERT folder not found: /etc/passwd"),
    Case("ckpt-w2v-bert-up-the-tree", "infer", infer("--checkpoint", "{ckpt_w2v_up}"), 2,
         "w2v-BERT folder not found: ../../secrets"),
    # --- codecs
    Case("codecs-decode-no-ext", "codecs", ["decode", "{codes}", "{tmp}/decoded", "--model", "{ckpt}"], 2,
         "ending in .wav or .flac", ["{tmp}/decoded"]),
    Case("codecs-decode-to-dir", "codecs", ["decode", "{codes}", "{tmp}", "--model", "{ckpt}"], 2,
         "is a directory"),
    Case("codecs-encode-to-wav", "codecs", ["encode", "{prompt}", "{tmp}/c.wav", "--model", "{ckpt}"], 2,
         "ending in .safetensors", ["{tmp}/c.wav"]),
    Case("codecs-encode-missing", "codecs",
         ["encode", "{nowhere}/a.wav", "{tmp}/c.safetensors", "--model", "{ckpt}"], 2,
         "audio file not found", ["{tmp}/c.safetensors"]),
    Case("codecs-decode-garbage", "codecs", ["decode", "{corrupt_wav}", "{tmp}/o.wav", "--model", "{ckpt}"],
         2, "unreadable safetensors file", ["{tmp}/o.wav"]),
    Case("codecs-no-model", "codecs", ["decode", "{codes}", "{tmp}/o.wav", "--model", "{nowhere}"], 2,
         "not found", ["{tmp}/o.wav"]),
    Case("codecs-too-many-quantizers", "codecs",
         ["encode", "{prompt}", "{tmp}/c.safetensors", "--model", "{ckpt}", "--n-quantizers", "99"], 2,
         "--n-quantizers must lie in 1..12", ["{tmp}/c.safetensors"]),
    # --- data
    Case("data-validate-missing", "data", ["validate", "{nowhere}"], 2, "data dir not found"),
    Case("data-validate-problems", "data", ["validate", "{bad_audio_dir}"], 1, "1 problems: FAILED"),
    Case("data-fix-duplicate-id", "data", ["fix", "{dup_dir}"], 2, "duplicate key 'spk0-000'",
         unchanged="{dup_dir}"),
    Case("data-fix-missing", "data", ["fix", "{nowhere}"], 2, "data dir not found"),
    Case("data-extract-nj-0", "data", ["extract", "{good_dir}", "{tmp}/dump", "--fields", "phone_ids",
         "--nj", "0"], 2, "--nj must be at least 1", ["{tmp}/dump"]),
    Case("data-extract-shard-mb-0", "data", ["extract", "{good_dir}", "{tmp}/dump", "--fields", "phone_ids",
         "--shard-mb", "0"], 2, "--shard-mb must be at least 1", ["{tmp}/dump"]),
    Case("data-extract-unknown-field", "data", ["extract", "{good_dir}", "{tmp}/dump", "--fields",
         "phone_ids,semantics"], 2, "unknown field 'semantics'", ["{tmp}/dump"]),
    Case("data-extract-no-codec", "data", ["extract", "{good_dir}", "{tmp}/dump", "--fields",
         "phone_ids,semantic"], 2, "needs --semantic-codec DIR", ["{tmp}/dump"]),
    Case("data-extract-missing-codec", "data", ["extract", "{good_dir}", "{tmp}/dump", "--fields", "acoustic",
         "--acoustic-codec", "{nowhere}"], 2, "--acoustic-codec", ["{tmp}/dump"]),
    Case("data-extract-missing-data", "data", ["extract", "{nowhere}", "{tmp}/dump", "--fields", "phone_ids"],
         2, "data dir not found", ["{tmp}/dump"]),
    Case("data-info-not-a-dump", "data", ["info", "{tmp}"], 2, "no shards"),
    Case("data-import-missing", "data", ["import", "{nowhere}/list.tsv", "{tmp}/imported"], 2, "not found",
         ["{tmp}/imported"]),
    Case("data-import-no-usable-rows", "data", ["import", "{bad_manifest}", "{tmp}/imported"], 2,
         "no usable rows", ["{tmp}/imported"]),
    Case("data-import-folder", "data", ["import", "{tmp}", "{tmp}/imported"], 2, "is not a file",
         ["{tmp}/imported"]),
    Case("data-synth-unknown-voice", "data", ["synth", "{tmp}/corpus", "--voices", "nosuch"], 2,
         "unknown or unavailable voice 'nosuch'", ["{tmp}/corpus"]),
    # --- eval (one corrupt wav among good ones: test_one_corrupt_wav_is_reported_for_its_utterance)
    Case("eval-missing-meta", "eval", ["--meta", "{nowhere}/m.lst", "--gen-dir", "{gen}"], 2,
         "meta list not found"),
    Case("eval-unknown-metric", "eval", ["--meta", "{meta}", "--gen-dir", "{gen}", "--metrics", "mos"], 2,
         "unknown metric"),
    Case("eval-missing-gen-dir", "eval", ["--meta", "{meta}", "--gen-dir", "{nowhere}"], 2,
         "generated audio folder not found"),
    Case("eval-missing-wav", "eval", ["--meta", "{meta_missing}", "--gen-dir", "{gen}"], 2,
         "1 audio file(s) missing"),
    Case("eval-out-under-a-file", "eval", ["--meta", "{meta}", "--gen-dir", "{gen}", "--out",
         "{corrupt_wav}/report", "--no-progress"], 2, "is not a folder"),
    Case("eval-out-unwritable", "eval", ["--meta", "{meta}", "--gen-dir", "{gen}", "--out", "/proc/report",
         "--no-progress"], 2, "cannot write in /proc"),
    Case("eval-bad-timings", "eval", ["--meta", "{meta}", "--gen-dir", "{gen}", "--timings", "{corrupt_wav}",
         "--metrics", "dnsmos", "--no-progress"], 2, "expected '<utt> <seconds>'"),
    Case("diagnose-no-ground-truth", "diagnose", ["--checkpoint", "{ckpt}", "--meta", "{meta}", "--gen-dir",
         "{gen}", "--train-dir", "{good_dir}"], 2, "entry a has no ground-truth recording"),
    Case("diagnose-count-0", "diagnose", ["--checkpoint", "{ckpt}", "--meta", "{meta}", "--gen-dir", "{gen}",
         "--train-dir", "{good_dir}", "--count", "0"], 2, "--count must be at least 1"),
    # --- convert: nothing half-written
    Case("convert-missing-src", "convert", convert(src="{nowhere}"), 2, "source folder not found",
         ["{convert_out}"]),
    Case("convert-missing-file", "convert", convert(src="{snapshot_incomplete}"), 2,
         "expected the official snapshot layout", ["{convert_out}"]),
    Case("convert-bad-layer", "convert", convert(layer="9"), 2, "output layer 9 outside 1..4",
         ["{convert_out}"]),
    Case("convert-missing-stats", "convert", convert(stats="{nowhere}/s.safetensors"), 2, "not found",
         ["{convert_out}"]),
    # --- vc, edit, text
    Case("vc-missing-source", "vc", ["--checkpoint", "{ckpt}", "--source", "{nowhere}/s.wav", "--reference",
         "{prompt}", "--out", "{out_wav}"], 2, "audio file not found"),
    Case("vc-out-no-ext", "vc", ["--checkpoint", "{ckpt}", "--source", "{prompt}", "--reference", "{prompt}",
         "--out", "{tmp}/vc"], 2, "ending in .wav", ["{tmp}/vc"]),
    Case("vc-silent-reference", "vc", ["--checkpoint", "{ckpt}", "--source", "{prompt}", "--reference",
         "{silent_wav}", "--out", "{out_wav}"], 2, "silent"),
    Case("vc-cfg-nan", "vc", ["--source", "{prompt}", "--reference", "{prompt}", "--out", "{out_wav}",
         "--cfg", "nan"], 2, "finite"),
    Case("vc-batch-repeated-id", "vc", ["--checkpoint", "{ckpt}", "--batch", "{pairs_repeated}", "--out-dir",
         "{tmp}/vc_out"], 2, "repeats line 1", ["{tmp}/vc_out"]),
    Case("edit-missing-audio", "edit", ["--checkpoint", "{ckpt}", "--audio", "{nowhere}/a.wav", "--text",
         PROMPT_TEXT, "--new-text", EDITED_TEXT, "--out", "{out_wav}"], 2, "audio file not found"),
    Case("edit-out-no-ext", "edit", ["--checkpoint", "{ckpt}", "--audio", "{prompt}", "--text", PROMPT_TEXT,
         "--new-text", EDITED_TEXT, "--out", "{tmp}/edit"], 2, "ending in .wav", ["{tmp}/edit"]),
    Case("edit-duration-nan", "edit", ["--audio", "{prompt}", "--text", PROMPT_TEXT, "--new-text",
         EDITED_TEXT, "--out", "{out_wav}", "--duration", "nan"], 2, "finite"),
    Case("edit-steps-zero", "edit", ["--checkpoint", "{ckpt}", "--audio", "{prompt}", "--text", PROMPT_TEXT,
         "--new-text", EDITED_TEXT, "--out", "{out_wav}", "--steps", "0"], 2, "at least 1"),
    Case("text-unpronounceable", "text", ["..."], 2, "nothing pronounceable"),
    # --- the umbrella command
    Case("maskgct-unknown-command", "maskgct", ["speak"], 2, "unknown command 'speak'"),
    Case("maskgct-no-command", "maskgct", [], 2, "name a command"),
    Case("maskgct-clone-bad-out", "maskgct", ["clone", *infer(out="{tmp}/clone")], 2, "ending in .wav",
         ["{tmp}/clone"]),
    Case("maskgct-data-nj-0", "maskgct", ["data", "extract", "{good_dir}", "{tmp}/dump", "--fields",
         "phone_ids", "--nj", "0"], 2, "--nj must be at least 1", ["{tmp}/dump"]),
    Case("maskgct-train-no-task", "maskgct", ["train", "exp_dir={exp}"], 2, "You must specify 'task'",
         ["{exp}"]),
    # --- train: the command line, checked before hydra starts a run
    Case("train-wrong-type", "train", train("trainer.max_steps=abc"), 2,
         "trainer.max_steps=abc: trainer.max_steps must be an integer", ["{exp}"]),
    Case("train-float-for-int", "train", train("data.max_frames=1.5"), 2, "must be an integer", ["{exp}"]),
    Case("train-bool-expected", "train", train("trainer.enable_progress_bar=3"), 2,
         "must be true or false", ["{exp}"]),
    Case("train-checkpoint-steps-text", "train", train("ckpt_every_n_steps=often"), 2,
         "ckpt_every_n_steps must be an integer", ["{exp}"]),
    Case("train-bad-precision", "train", train("trainer.precision=abc"), 2,
         "trainer.precision must be 64 or 32 or 16", ["{exp}"]),
    Case("train-cooldown-unbounded", "train", train("trainer.max_steps=-1", "task.cooldown_steps=100"), 2,
         "task.cooldown_steps needs trainer.max_steps", ["{exp}"]),
    Case("train-cooldown-negative", "train", train("task.cooldown_steps=-5"), 2,
         "task.cooldown_steps must be at least 0", ["{exp}"]),
    Case("train-not-a-dump", "train", train("data.train_dump={good_dir}"), 2, "not a token dump", ["{exp}"]),
    Case("train-missing-dump", "train", train("data.train_dump={nowhere}"), 2, "no such folder", ["{exp}"]),
    Case("train-missing-one-of-two-dumps", "train", train("data.train_dump=[{dump},{nowhere}]"), 2,
         "no such folder", ["{exp}"]),
    Case("train-not-a-data-dir", "train", ["task=mel_codec", "data.train_dir={tmp}", "exp_dir={exp}"], 2,
         "missing wav.scp", ["{exp}"]),
    Case("train-unknown-override", "train", train("trainer.max_stepz=3"), 2,
         "Could not override 'trainer.max_stepz'", ["{exp}"]),
    Case("train-no-task", "train", ["exp_dir={exp}"], 2, "Available options: acoustic_codec", ["{exp}"]),
    Case("train-unknown-task", "train", ["task=nosuch", "exp_dir={exp}"], 2, "Could not find 'task/nosuch'",
         ["{exp}"]),
    Case("train-unknown-experiment", "train", train("experiment=nosuch"), 2,
         "Could not find 'experiment/nosuch'", ["{exp}"]),
    Case("train-unparsable", "train", train("a=b=c]"), 2, "cannot parse the override 'a=b=c]'", ["{exp}"]),
    # --- fresh interpreters: python -m entry points and hydra's run-time errors
    Case("train-bad-strategy", "train", train("+trainer.strategy=nosuch", "trainer.max_steps=1"), 2,
         "trainer: You selected an invalid strategy name", ["{exp}/checkpoints"], subprocess=True),
    Case("train-bad-model-size", "train", train("model.hidden_size=-3", "trainer.max_steps=1"), 2,
         "task: RuntimeError", ["{exp}/checkpoints"], subprocess=True),
    Case("train-missing-init-from", "train", train("init_from={nowhere}", "trainer.max_steps=1"), 2,
         "init_from:", ["{exp}/checkpoints"], subprocess=True),
    Case("infer-module-entry", "infer", infer("--cfg", "nan"), 2, "finite", subprocess=True),
    Case("maskgct-module-entry", "maskgct", ["data", "fix", "{nowhere}"], 2, "data dir not found",
         subprocess=True),
]
# fmt: on


def test_the_table_has_a_row_per_case():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)) and len(CASES) >= 60


def _tone(path: Path, seconds: float, amplitude: float = 0.3) -> Path:
    return write_tone(path, seconds, amplitude)


def _copy_checkpoint(src: Path, dst: Path, edit: dict[str, dict]) -> str:
    """A copy of the tiny checkpoint whose JSON files get ``edit`` ({file: {key: value}}) merged in."""
    shutil.copytree(src, dst)
    for name, changes in edit.items():
        meta = json.loads((dst / name).read_text())
        for key, value in changes.items():
            if isinstance(value, dict):
                meta[key] = {**meta[key], **value}
            else:
                meta[key] = value
        (dst / name).write_text(json.dumps(meta))
    return str(dst)


def _datadir(root: Path, wavs: dict[str, Path]) -> Path:
    root.mkdir(parents=True)
    ids = sorted(wavs)
    (root / "wav.scp").write_text("".join(f"{u} {wavs[u]}\n" for u in ids))
    (root / "text").write_text("".join(f"{u} Hello there.\n" for u in ids))
    (root / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in ids))
    return root


@pytest.fixture(scope="module")
def ws(tiny_checkpoint, fixtures, tmp_path_factory) -> dict[str, str]:
    """The inputs every row may name; rows write only under their own ``tmp``."""
    root = tmp_path_factory.mktemp("bad_input")
    paths: dict[str, str] = {
        "ckpt": str(tiny_checkpoint),
        "prompt": str(fixtures / "prompt.wav"),
        "w2v_bert": str(fixtures / "w2v_bert_tiny"),
        "tiny_config": str(fixtures / "tiny_config.json"),
        "stats": str(fixtures / "w2v_stats_tiny.safetensors"),
        "nowhere": str(root / "nowhere"),
    }
    (root / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt not audio")
    paths["corrupt_wav"] = str(root / "corrupt.wav")
    paths["silent_wav"] = str(_tone(root / "silent.wav", 2, 0.0))
    paths["short_wav"] = str(_tone(root / "short.wav", 0.4))
    # Checkpoints whose descriptions or pointers are wrong.
    t2s = "t2s.json"
    for name, edit in {
        "ckpt_no_module": {t2s: {"class": "maskgct.nosuch.T2S"}},
        "ckpt_no_class": {t2s: {"class": "maskgct.t2s.NoSuch"}},
        "ckpt_outside": {t2s: {"class": "os.system"}},
        "ckpt_extra_field": {t2s: {"config": {"depth": 3}}},
        "ckpt_wrong_type": {t2s: {"config": {"hidden_size": "64"}}},
        "ckpt_codec_type": {"semantic_codec.json": {"config": {"codebook_size": 1.5}}},
        "ckpt_w2v_file": {"semantic_tokenizer.json": {"w2v_bert": "/etc/passwd"}},
        "ckpt_w2v_up": {"semantic_tokenizer.json": {"w2v_bert": "../../secrets"}},
    }.items():
        paths[name] = _copy_checkpoint(tiny_checkpoint, root / name, edit)
    # Codes for decode, made by the codec itself.
    from maskgct.codecs.__main__ import main as codecs_main

    assert (
        codecs_main(["encode", paths["prompt"], str(root / "c.safetensors"), "--model", paths["ckpt"]]) == 0
    )
    paths["codes"] = str(root / "c.safetensors")
    # Data dirs: a good one, one with unreadable audio, one with a repeated id (unsorted, as fix expects).
    (root / "wavs").mkdir()
    good = {f"spk{i % 2}-{i:03d}": _tone(root / "wavs" / f"{i}.wav", 1.0) for i in range(4)}
    paths["good_dir"] = str(_datadir(root / "good", good))
    paths["bad_audio_dir"] = str(_datadir(root / "bad_audio", {**good, "spk1-009": root / "corrupt.wav"}))
    dup = _datadir(root / "dup", good)
    with open(dup / "wav.scp", "a") as file:
        file.write(f"spk0-000 {good['spk0-000']}\n")
    (dup / "spk2utt").write_text("spk0 spk0-000 spk0-002\nspk1 spk1-001 spk1-003\n")
    paths["dup_dir"] = str(dup)
    (root / "bad.tsv").write_text(f"{root / 'corrupt.wav'}\tHello.\tjoe\n{root / 'silent.wav'}\tHi.\tjoe\n")
    paths["bad_manifest"] = str(root / "bad.tsv")
    # A token dump for training.
    paths["dump"] = str(write_token_dump(root / "dump"))
    # Evaluation: generated wavs, meta lists (all good / one missing / one corrupt).
    gen = root / "gen"
    gen.mkdir()
    shutil.copyfile(fixtures / "prompt.wav", gen / "a.wav")
    shutil.copyfile(fixtures / "prompt.wav", gen / "b.wav")
    shutil.copyfile(root / "corrupt.wav", gen / "bad.wav")
    paths["gen"] = str(gen)
    line = f"|{PROMPT_TEXT}|{paths['prompt']}|{PROMPT_TEXT}\n"
    for name, utts in {"meta": "ab", "meta_missing": ["a", "zz"], "meta_one_bad": ["a", "bad", "b"]}.items():
        (root / f"{name}.lst").write_text("".join(f"{utt}{line}" for utt in utts))
        paths[name] = str(root / f"{name}.lst")
    (root / "pairs.tsv").write_text(
        f"x\t{paths['prompt']}\t{paths['prompt']}\nx\t{paths['prompt']}\t{paths['prompt']}\n"
    )
    paths["pairs_repeated"] = str(root / "pairs.tsv")
    # Official-layout snapshots: complete and with one file gone.
    paths["snapshot"] = str(build_snapshot(fixtures, root / "snapshot"))
    incomplete = build_snapshot(fixtures, root / "snapshot_incomplete")
    next(incomplete.rglob("*.safetensors")).unlink()
    paths["snapshot_incomplete"] = str(incomplete)
    return paths


def _fill(value: str, paths: dict[str, str]) -> str:
    return value.format(**paths) if "{" in value and "}" in value and " " not in value else value


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*")
            if p.is_file()}  # fmt: skip


def _run_in_process(case: Case, argv: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    module = importlib.import_module(MODULES[case.command])
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # the umbrella sets it for train: restored after
    if case.command == "train":
        monkeypatch.setattr(sys, "argv", ["python -m maskgct.train", *argv])
        call = module.main
    else:

        def call():
            return module.main(argv)

    try:
        code = call()
    except SystemExit as stop:  # argparse's usage errors
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def _run_subprocess(case: Case, argv: list[str], cwd: Path) -> tuple[int, str, str]:
    module = MODULES[case.command].removesuffix(".__main__")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": f"{TESTS}{os.pathsep}{REPO}"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)  # fmt: skip
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input(case, ws, tmp_path, capsys, monkeypatch):
    paths = {**ws, "tmp": str(tmp_path), "out_wav": str(tmp_path / "out.wav"), "exp": str(tmp_path / "exp"),
             "convert_out": str(tmp_path / "converted")}  # fmt: skip
    argv = [_fill(arg, paths) for arg in case.argv]
    unchanged = Path(_fill(case.unchanged, paths)) if case.unchanged else None
    before = _snapshot(unchanged) if unchanged else None
    monkeypatch.chdir(tmp_path)  # anything written relative to the working folder lands here
    if case.subprocess:
        code, out, err = _run_subprocess(case, argv, tmp_path)
    else:
        code, out, err = _run_in_process(case, argv, capsys, monkeypatch)
    assert code == case.code, (code, err[-2000:])
    assert "Traceback" not in err, err
    if case.code == 2:
        errors = [line for line in err.splitlines() if "error: " in line]
        assert len(errors) == 1, err  # exactly one error line (argparse puts its usage line before it)
        assert case.message in errors[0], errors[0]
        assert errors[0].startswith("error: ") or ": error: " in errors[0], errors[0]
    else:
        assert case.message in out + err, out + err
    for path in case.absent + ["{out_wav}"]:
        assert not Path(_fill(path, paths)).exists(), f"{path} left behind"
    if unchanged:
        assert _snapshot(unchanged) == before, "the failing command changed its input"
    leftovers = [p.name for p in tmp_path.rglob("*.partial")] + [
        p.name for p in tmp_path.glob(".converted.*")
    ]
    assert not leftovers, leftovers


def test_one_corrupt_wav_is_reported_for_its_utterance(ws, tmp_path, capsys):
    """The evaluation goes on (exit 0): the other utterances are scored, the corrupt one is listed in the
    summary, in summary.md and as a warning line."""
    from maskgct.eval.__main__ import main

    argv = ["--meta", ws["meta_one_bad"], "--gen-dir", ws["gen"], "--metrics", "dnsmos", "--out",
            str(tmp_path / "report"), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["n"] == 2 and list(summary["failed"]) == ["bad"]
    assert "cannot read audio file" in summary["failed"]["bad"]
    assert "| bad |" in (tmp_path / "report" / "summary.md").read_text()
    err = capsys.readouterr().err
    assert "warning: not scored: bad: " in err and "Traceback" not in err


def test_training_errors_show_their_trace_with_verbose(ws, tmp_path, monkeypatch):
    """``--verbose`` (HYDRA_FULL_ERROR=1) lets the error through with its trace instead of one line."""
    from maskgct.train.__main__ import main
    from maskgct.train.overrides import OverrideError

    # main() sets HYDRA_FULL_ERROR=1 for --verbose; setenv (not delenv, which records nothing when the name
    # is absent) makes monkeypatch remove it again: later tests' subprocesses must not inherit it.
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    argv = ["task=t2s", f"data.train_dump={ws['dump']}", "trainer.max_steps=abc", "--verbose"]
    monkeypatch.setattr(sys, "argv", ["python -m maskgct.train", *argv])
    with pytest.raises(OverrideError, match="trainer.max_steps must be an integer"):
        main()


def test_data_fix_still_fixes_an_unsorted_dir(ws, tmp_path, capsys):
    """The scratch-copy sort of ``data fix`` still rewrites a fixable dir sorted, with spk2utt."""
    from maskgct.data.__main__ import main
    from maskgct.data.datadir import read_datadir

    folder = tmp_path / "unsorted"
    shutil.copytree(ws["good_dir"], folder)
    lines = (folder / "wav.scp").read_text().splitlines()
    (folder / "wav.scp").write_text("\n".join(reversed(lines)) + "\n")
    assert main(["fix", str(folder)]) == 0
    assert (folder / "wav.scp").read_text().splitlines() == lines
    assert len(read_datadir(folder).utt2spk) == 4 and (folder / "spk2utt").is_file()
    capsys.readouterr()


def test_a_checkpoint_loads_when_its_description_is_right(ws):
    """The description checks reject only what is wrong: the tiny checkpoint itself loads."""
    from maskgct.checkpoint import load_network
    from maskgct.t2s import T2S

    net = load_network(ws["ckpt"], "t2s", expected=T2S)
    assert net.config.hidden_size == 64
    assert np.isfinite(sum(float(p.abs().sum()) for p in net.parameters()))


def test_chinese_text_with_language_en_is_read_in_mandarin():
    """Not silent garbage: CJK runs always go through the Mandarin G2P (the official mixed front end), so
    ``--language en`` on Chinese text speaks the same phones as ``--language zh``."""
    from maskgct.text import text_to_ids

    assert text_to_ids("你好世界", "en") == text_to_ids("你好世界", "zh")
