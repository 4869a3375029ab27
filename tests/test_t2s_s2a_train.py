"""Training tasks: a tiny T2S and S2A overfit a handful of sequences through lightning."""

import logging

import lightning as L
import pytest
import torch
import yaml

from maskgct.checkpoint import load_network, save_network
from maskgct.train.s2a import S2ATask
from maskgct.train.t2s import T2STask

CONF = "conf/model/{}_tiny.yaml"


def handful():
    g = torch.Generator().manual_seed(0)
    batch, phones, frames = 4, 10, 16
    semantic = torch.randint(0, 512, (batch, frames), generator=g)
    # Acoustic codes as a fixed function of the semantic token per layer: learnable from the condition.
    acoustic = torch.randint(0, 64, (512, 12), generator=g)[semantic]
    ones = torch.ones(batch, frames, dtype=torch.long)
    return {
        "utt_ids": [f"utt{i}" for i in range(batch)],
        "phone_ids": torch.randint(0, 363, (batch, phones), generator=g),
        "phone_mask": torch.ones(batch, phones, dtype=torch.long),
        "semantic": semantic,
        "semantic_mask": ones,
        "acoustic": acoustic,
        "acoustic_mask": ones,
    }


def accuracy(task, batch):
    """Masked-token accuracy averaged over 20 random maskings."""
    torch.manual_seed(1)
    with torch.no_grad():
        return sum(task.losses(batch)["acc"].item() for _ in range(20)) / 20


def fit(task, batch, steps):
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    data = torch.utils.data.DataLoader([batch], batch_size=None)
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(task, data)
    return trainer.callback_metrics


@pytest.mark.parametrize(
    "task_class,name,steps,lr",
    [(T2STask, "t2s", 300, 3e-3), (S2ATask, "s2a_1layer", 150, 3e-3), (S2ATask, "s2a_full", 300, 3e-3)],
)
def test_tiny_model_overfits(task_class, name, steps, lr, tmp_path, one_thread):
    torch.manual_seed(0)
    task = task_class(model=yaml.safe_load(open(CONF.format(name))), lr=lr, warmup_steps=10)
    batch = handful()
    before = accuracy(task, batch)
    metrics = fit(task, batch, steps)
    after = accuracy(task, batch)
    assert before < 0.2 and after > 0.9, (before, after)
    assert {"train/loss", "train/acc"} <= set(metrics)
    save_network(task.net, tmp_path, name)
    reloaded = load_network(tmp_path, name)
    assert all(
        torch.equal(a, b)
        for a, b in zip(reloaded.state_dict().values(), task.net.state_dict().values(), strict=True)
    )
