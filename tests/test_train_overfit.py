"""Overfitting a few utterances through the task configs and the token data module: the masked-token
accuracy of T2S and both S2A models rises from chance to above 0.9, and the trained network exports."""

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from train_support import compose_cfg, quiet_trainer, write_token_dump

from maskgct.checkpoint import load_network, save_network
from maskgct.data.datamodule import TokenDataModule


def tiny_task(task: str):
    cfg = compose_cfg([f"task={task}", "task.lr=3e-3", "task.warmup_steps=10", "++model.cfg_scale=0.0"])
    # cfg_scale 0: always give the prompt, memorising needs no unconditional case.
    return instantiate(cfg.task, model=OmegaConf.to_container(cfg.model), _recursive_=False, _convert_="all")


def accuracy(module, batch) -> float:
    """Masked-token accuracy averaged over 20 random maskings."""
    with torch.no_grad():
        return sum(float(module.losses(batch)["acc"]) for _ in range(20)) / 20


@pytest.mark.parametrize("task,steps", [("t2s", 300), ("s2a_1layer", 150), ("s2a_full", 300)])
def test_masked_token_accuracy_rises_above_0_9(task, steps, tmp_path, one_thread):
    torch.manual_seed(0)
    dump = write_token_dump(tmp_path / "dump", n_utts=4)
    data = TokenDataModule(str(dump), max_frames=200)
    module = tiny_task(task)
    batch = next(iter(data.train_dataloader()))
    before = accuracy(module, batch)
    trainer = quiet_trainer(max_steps=steps, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=data)
    module.eval()
    after = accuracy(module, batch)
    assert before < 0.2 and after > 0.9, (before, after)
    assert {"train/loss", "train/acc"} <= set(trainer.callback_metrics)
    save_network(module.net, tmp_path / "export", task)
    reloaded = load_network(tmp_path / "export", task)
    for (key, a), b in zip(module.net.state_dict().items(), reloaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), key
