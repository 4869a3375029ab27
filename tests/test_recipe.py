"""Recipes: the option parser, the LibriTTS recipe's data stage on a tiny fake LibriTTS tree, the synthetic
recipe's second corpus, its GPU burst."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from train_support import write_token_dump

from maskgct.checkpoint import read_safetensors

REPO = Path(__file__).resolve().parents[1]


def copy_recipe(name: str, dest: Path) -> Path:
    """A copy of egs/<name>/tts1 (utils resolved), so a test run writes nothing into the repository."""
    recipe = dest / name
    shutil.copytree(REPO / "egs" / name / "tts1", recipe, symlinks=False)
    return recipe


def run_recipe(recipe: Path, *args: str, script: str = "run.sh") -> subprocess.CompletedProcess:
    env = dict(os.environ, MAIN_ROOT=str(REPO))
    return subprocess.run(
        ["bash", str(recipe / script), *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_parse_options(tmp_path):
    script = tmp_path / "opts.sh"
    script.write_text(
        "stage=0\nstop_stage=100\nname=x\n"
        f". {REPO / 'egs' / 'utils' / 'parse_options.sh'}\n"
        'echo "$stage $stop_stage $name $*"\n'
    )
    (tmp_path / "my.conf").write_text("name=from_config\nstage=3\n")
    ok = subprocess.run(
        [
            "bash",
            str(script),
            "--stop-stage=5",
            "--config",
            str(tmp_path / "my.conf"),
            "--stage",
            "4",
            "rest",
        ],
        capture_output=True,
        text=True,
    )
    assert ok.stdout.strip() == "4 5 from_config rest"
    bad = subprocess.run(["bash", str(script), "--no-such-option", "1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown option --no-such-option" in bad.stderr


def fake_libritts(root: Path) -> None:
    """Two speakers per subset, two 1 s utterances each; one transcript is empty."""
    rng = np.random.default_rng(0)
    for subset, speakers in (
        ("train-clean-100", ("19", "198")),
        ("dev-clean", ("84",)),
        ("test-clean", ("121",)),
    ):
        for spk in speakers:
            folder = root / subset / spk / "1000"
            folder.mkdir(parents=True)
            for k in range(2):
                stem = f"{spk}_1000_000001_00000{k}"
                sf.write(folder / f"{stem}.wav", 0.1 * rng.standard_normal(24000).astype(np.float32), 24000)
                text = "" if (spk, k) == ("198", 1) else f"Sentence {k} of speaker {spk}."
                (folder / f"{stem}.normalized.txt").write_text(text)


def test_libritts_recipe_data_stage(tmp_path):
    fake_libritts(tmp_path / "LibriTTS")
    recipe = copy_recipe("libritts", tmp_path)
    args = ["--libritts-root", str(tmp_path / "LibriTTS"), "--train-subsets", "train-clean-100"]
    # The fine-tuning and voice-conversion options of the synth recipe exist here too.
    options = ["--finetune-from", "", "--vc-finetune", "false", "--vc-steps", "5"]
    run = run_recipe(recipe, *args, *options, "--stage", "1", "--stop-stage", "1")
    assert run.returncode == 0, run.stderr
    # An empty transcript is a warning (extraction rejects that utterance); the data stage goes on.
    assert "warning: 198-1000-000001-000001 empty transcript" in run.stderr
    assert "data/test: 2 utterances, 1 speakers, 0 problems: OK" in run.stdout
    train = (recipe / "data" / "train" / "spk2utt").read_text().splitlines()
    assert train == [
        "19 19-1000-000001-000000 19-1000-000001-000001",
        "198 198-1000-000001-000000 198-1000-000001-000001",
    ]
    # An unreadable recording fails validation, and so the recipe.
    (tmp_path / "LibriTTS" / "dev-clean" / "84" / "1000" / "84_1000_000001_000000.wav").write_bytes(b"junk")
    run = run_recipe(recipe, *args, "--stage", "1", "--stop-stage", "1")
    assert run.returncode != 0 and "84-1000-000001-000000 cannot read audio file" in run.stderr


def test_synth_recipe_second_corpus_reads_only_new_sentences(tmp_path):
    """--extra-voices: a second corpus whose every sentence is one the first never read."""
    recipe = copy_recipe("synth", tmp_path)
    first = ["--voices", "espeak_us_m1,espeak_gb_m3,espeak_sc_f1", "--heldout", "espeak_sc_f1"]
    first += ["--utts-per-speaker", "3", "--dev-per-speaker", "1", "--sentences", "large", "--nj", "1"]
    extra = ["--extra-voices", "espeak_us_m1,espeak_rp_f5,espeak_sc_f1", "--extra-utts-per-speaker", "4"]
    run = run_recipe(recipe, *first, *extra, "--extra-sentences", "40", "--stage", "1", "--stop-stage", "1")
    assert run.returncode == 2 and "--extra-voices needs --extra-heldout" in run.stderr
    extra += ["--extra-heldout", "espeak_sc_f1", "--extra-sentences", "40"]
    run = run_recipe(recipe, *first, *extra, "--stage", "1", "--stop-stage", "1")
    assert run.returncode == 0, run.stderr

    def sentences(data: Path) -> dict[str, str]:
        return dict(line.split(" ", 1) for line in (data / "text").read_text().splitlines())

    read = {text for name in ("train", "dev", "test") for text in sentences(recipe / "data" / name).values()}
    new = sentences(recipe / "data" / "extra" / "train")
    assert len(read) == 9 and len(new) == 6  # 2 training voices x (4 - 1 dev)
    assert {utt.split("-")[0] for utt in new} == {"espeak_us_m1", "espeak_rp_f5"} and not read & set(
        new.values()
    )
    listed = (recipe / "data" / "extra_sentences.txt").read_text().splitlines()
    assert set(new.values()) <= set(listed) and len(listed) == 40 - len(read & set(listed))


def test_train_burst_trains_the_networks_at_once_and_exports_them(tmp_path):
    """local/train_burst.sh (for a short GPU loan) on CPU: T2S and S2A 1-layer side by side, exported in
    float16; a missing dump, an unknown task or a fractional time is one error line and exit code 2."""
    dump = tmp_path / "dump"
    for name, seed in (("train", 0), ("extra", 1), ("dev", 2)):
        write_token_dump(dump / name, seed=seed)
    recipe = copy_recipe("synth", tmp_path)
    quick = "trainer.max_steps=2 trainer.log_every_n_steps=1 data.max_frames=120"
    args = ["--trainer", "cpu", "--model-size", "tiny", "--tasks", "t2s s2a_1layer", "--half", "true"]
    args += ["--t2s-args", quick, "--s2a-args", quick]

    def burst(*extra: str) -> subprocess.CompletedProcess:
        return run_recipe(recipe, *extra, script="local/train_burst.sh")

    run = burst(*args, str(dump), str(tmp_path / "exp"))
    assert run.returncode == 0, run.stderr
    for task in ("t2s", "s2a_1layer"):
        weights = read_safetensors(tmp_path / "exp" / task / "model" / f"{task}.safetensors")
        assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float16}
        steps = (tmp_path / "exp" / task / "logs" / "metrics.csv").read_text()
        assert "train/loss" in steps
    assert not (tmp_path / "exp" / "s2a_full").exists()

    missing = burst(*args, str(tmp_path / "nowhere"), str(tmp_path / "exp2"))
    unknown = burst("--tasks", "t2s codec", str(dump), str(tmp_path / "exp2"))
    no_time = burst("--minutes", "0.5", str(dump), str(tmp_path / "exp2"))
    for bad, says in (
        (missing, "nowhere/train not found"),
        (unknown, "not codec"),
        (no_time, "whole number"),
    ):
        assert bad.returncode == 2 and bad.stderr.startswith("error:") and says in bad.stderr, bad.stderr
