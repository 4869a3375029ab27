"""Recipes: the option parser, and the LibriTTS recipe's data stage on a tiny fake LibriTTS tree."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]


def copy_recipe(name: str, dest: Path) -> Path:
    """A copy of egs/<name>/tts1 (utils resolved), so a test run writes nothing into the repository."""
    recipe = dest / name
    shutil.copytree(REPO / "egs" / name / "tts1", recipe, symlinks=False)
    return recipe


def run_recipe(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MAIN_ROOT=str(REPO))
    return subprocess.run(
        ["bash", str(recipe / "run.sh"), *args], capture_output=True, text=True, env=env, timeout=300
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
