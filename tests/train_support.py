"""Helpers for the training tests: hydra configs, a quiet trainer, learnable token dumps and a callback
that SIGKILLs its own run."""

import os
import signal
from pathlib import Path

import lightning as L
import numpy as np
from hydra import compose, initialize_config_dir

from maskgct.data.shards import ShardWriter


def compose_cfg(overrides: list[str]):
    """The training config (``conf/train.yaml``) with hydra command-line ``overrides``."""
    # Imported here: a training subprocess that loads ``KillAtStep`` runs that module as ``__main__``.
    from maskgct.train.__main__ import CONF_DIR

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def quiet_trainer(**kwargs) -> L.Trainer:
    """A CPU trainer with no logger, checkpoints, progress bar or model summary (unless ``kwargs`` say so)."""
    options = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return L.Trainer(**(options | kwargs))


def write_token_dump(out_dir: Path, n_utts: int = 6, seed: int = 0, aligned: bool = False) -> Path:
    """Utterances whose tokens are learnable: semantic frames repeat each phone 3×, acoustic = f(semantic);
    ``aligned``: with each phone's frame (``phone_frames``: the middle of its three).

    Sizes fit the tiny configs (semantic < 512, acoustic < 64, phones < 100).
    """
    rng = np.random.default_rng(seed)
    writer = ShardWriter(out_dir, "job000", shard_bytes=1 << 20)
    for i in range(n_utts):
        phones = rng.integers(4, 100, int(rng.integers(8, 14)))
        semantic = np.repeat(phones * 5 % 512, 3)
        acoustic = (semantic[:, None] * 7 + np.arange(12)[None] * 11) % 64
        arrays = {"phone_ids": phones, "semantic": semantic, "acoustic": acoustic}
        if aligned:
            arrays["phone_frames"] = 3 * np.arange(len(phones)) + 1
        writer.add(f"spk{i % 2}-{i:03d}", f"spk{i % 2}", arrays)
    writer.flush()
    return out_dir


class KillAtStep(L.Callback):
    """SIGKILL this process at the end of optimiser step ``step`` (a crash nobody can clean up after)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)
