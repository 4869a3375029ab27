"""Overfitting a few utterances: T2S and S2A masked-token accuracy must rise above 0.9."""

from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from test_train_fakes import write_token_dump

from maskgct.data.datamodule import TokenDataModule

CONF = Path(__file__).resolve().parents[1] / "conf"


def tiny_task(task: str):
    model = OmegaConf.to_container(OmegaConf.load(CONF / "model" / f"{task}_tiny.yaml"))
    model["cfg_scale"] = 0.0  # always give the prompt: memorising needs no unconditional case
    task_cfg = OmegaConf.merge(
        OmegaConf.load(CONF / "task" / f"{task}.yaml"), {"lr": 3e-3, "warmup_steps": 10}
    )
    return instantiate(task_cfg, model=model, _recursive_=False, _convert_="all")


@pytest.mark.parametrize("task,steps", [("t2s", 300), ("s2a_1layer", 150)])
def test_masked_token_accuracy_rises_above_0_9(task, steps, tmp_path):
    torch.manual_seed(0)
    dump = write_token_dump(tmp_path / "dump", n_utts=4)
    data = TokenDataModule(str(dump), max_frames=200)
    module = tiny_task(task)
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=data)
    module.eval()
    batch = next(iter(data.train_dataloader()))
    with torch.no_grad():
        accuracy = sum(float(module.losses(batch)["acc"]) for _ in range(20)) / 20
    assert accuracy > 0.9, accuracy
