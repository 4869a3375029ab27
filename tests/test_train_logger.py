"""The hydra ``logger`` group: metrics.csv always, TensorBoard or W&B beside it, a missing package refused."""

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
from train_support import compose_cfg, write_token_dump

from maskgct.train.__main__ import CSVLogger, LoggerUnavailable, build, train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def token_dump(tmp_path_factory) -> Path:
    return write_token_dump(tmp_path_factory.mktemp("dump"))


def _cfg(token_dump, exp_dir, *overrides):
    return compose_cfg(
        [
            "task=t2s",
            f"exp_dir={exp_dir}",
            f"data.train_dump={token_dump}",
            "data.max_frames=120",
            "trainer.enable_progress_bar=false",
            *overrides,
        ]
    )


def test_csv_is_the_default_and_the_only_logger(token_dump, tmp_path):
    _, _, trainer = build(_cfg(token_dump, tmp_path))
    assert [type(logger) for logger in trainer.loggers] == [CSVLogger]


def test_tensorboard_writes_events_beside_metrics_csv(token_dump, tmp_path):
    overrides = ("logger=tensorboard", "trainer.max_steps=2", "++trainer.log_every_n_steps=1")
    trainer = train(_cfg(token_dump, tmp_path, *overrides))
    assert [type(logger) for logger in trainer.loggers] == [CSVLogger, L.pytorch.loggers.TensorBoardLogger]
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and b"train/loss" in events[0].read_bytes()
    with (tmp_path / "logs" / "metrics.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["step"] for row in rows] == ["0", "1"] and all(float(row["train/loss"]) > 0 for row in rows)


def test_a_missing_logger_package_is_refused_before_training(token_dump, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    with pytest.raises(
        LoggerUnavailable, match=r"^WandbLogger needs the 'wandb' package: pip install wandb$"
    ):
        build(_cfg(token_dump, tmp_path, "logger=wandb"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(LoggerUnavailable, match="'tensorboard' package"):
        build(_cfg(token_dump, tmp_path, "logger=tensorboard"))


def test_the_command_line_says_so_in_one_line(token_dump, tmp_path):
    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here; the in-process test covers the refusal")
    result = subprocess.run(
        [sys.executable, "-m", "maskgct.train", "task=t2s", "logger=wandb", f"exp_dir={tmp_path / 'exp'}"]
        + [f"data.train_dump={token_dump}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr == "error: WandbLogger needs the 'wandb' package: pip install wandb\n"
    assert not (tmp_path / "exp" / "checkpoints").exists()
