"""Semantic codec training: the loss falls on the tiny config, resume is exact, audio batches work."""

from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader
from train_support import quiet_trainer

from maskgct.checkpoint import load_network, save_network
from maskgct.train.__main__ import model_config
from maskgct.train.semantic_codec import SemanticCodecTask

CONF = Path(__file__).resolve().parents[1] / "conf"


def _tiny_task(**overrides) -> SemanticCodecTask:
    task_cfg = OmegaConf.load(CONF / "task" / "semantic_codec.yaml")
    model = model_config("semantic_codec_tiny")
    task_cfg = OmegaConf.merge(task_cfg, {"lr": 3e-3, "warmup_steps": 5, **overrides})
    return instantiate(task_cfg, model=model, _recursive_=False)


def _feature_batches(n_batches: int = 4, batch: int = 4, frames: int = 40) -> list[dict]:
    """Structured 64-dim features: smooth low-rank trajectories, so they can be reconstructed."""
    gen = torch.Generator().manual_seed(0)
    basis = torch.randn(6, 64, generator=gen)
    t = torch.linspace(0, 1, frames)
    out = []
    for _ in range(n_batches):
        freq = torch.rand(batch, 6, 1, generator=gen) * 6
        weights = torch.sin(2 * torch.pi * freq * t + torch.rand(batch, 6, 1, generator=gen) * 6)
        mask = torch.ones(batch, frames, dtype=torch.long)
        mask[0, -7:] = 0  # one padded item: padding must not enter the reconstruction loss
        out.append({"features": weights.transpose(1, 2) @ basis, "feature_mask": mask})
    return out


def _rec_loss(task: SemanticCodecTask, batches: list[dict]) -> float:
    task.eval()
    with torch.no_grad():
        return sum(float(task.losses(b)["rec_loss"]) for b in batches) / len(batches)


def test_training_lowers_reconstruction_loss_and_resumes_exactly(tmp_path):
    batches = _feature_batches()
    L.seed_everything(0)
    task = _tiny_task()
    before = _rec_loss(task, batches)
    quiet_trainer(max_steps=60, default_root_dir=tmp_path).fit(task, DataLoader(batches, batch_size=None))
    after = _rec_loss(task, batches)
    assert after < 0.5 * before, (before, after)

    # Exported network round-trips through the shared checkpoint format.
    save_network(task.net, tmp_path / "export", "semantic_codec")
    loaded = load_network(tmp_path / "export", "semantic_codec")
    for key, value in task.net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)

    # 4 + 4 steps with a checkpoint in between == 8 steps in one go (weights, optimiser, scheduler state).
    # One batch per epoch: Lightning restarts a plain loader on resume, so only then is the data order equal.
    loader = DataLoader(batches[:1], batch_size=None)
    L.seed_everything(1)
    straight = _tiny_task()
    quiet_trainer(max_steps=8, default_root_dir=tmp_path / "a").fit(straight, loader)
    L.seed_everything(1)
    first = _tiny_task()
    trainer = quiet_trainer(max_steps=4, default_root_dir=tmp_path / "b")
    trainer.fit(first, loader)
    trainer.save_checkpoint(tmp_path / "b" / "half.ckpt")
    resumed = _tiny_task()
    trainer = quiet_trainer(max_steps=8, default_root_dir=tmp_path / "b")
    trainer.fit(resumed, loader, ckpt_path=tmp_path / "b" / "half.ckpt")
    assert trainer.global_step == 8
    for key, value in straight.net.state_dict().items():
        assert torch.equal(resumed.net.state_dict()[key], value), key


def test_audio_batches_use_a_frozen_w2v_bert(fixtures):
    task = _tiny_task(
        w2v_bert=str(fixtures / "w2v_bert_tiny"),
        stats=str(fixtures / "w2v_stats_tiny.safetensors"),
        output_layer=3,
    )
    gen = torch.Generator().manual_seed(0)
    batch = {
        "utt_ids": ["a", "b"],
        "wav": 0.1 * torch.randn(2, 8000, generator=gen),
        "wav_lengths": torch.tensor([8000, 6000]),
    }
    features, mask = task.batch_features(batch)
    assert features.shape == (2, 24, 64) and mask.sum(1).tolist() == [24, 18]
    assert not features[1, 18:].any()
    loss = task.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss) and task.net.encoder[1].weight.grad is not None
    # The w2v-BERT stays frozen and outside the checkpoint.
    assert not any(k.startswith("w2v") for k in task.state_dict())
    assert not any(p.requires_grad for p in task.w2v_features.parameters())


def test_bad_batches_and_configs(fixtures):
    task = _tiny_task()
    with pytest.raises(ValueError, match="need w2v_bert and stats"):
        task.batch_features({"wav": torch.zeros(1, 8000)})
    with pytest.raises(ValueError, match="neither 'features' nor 'wav'"):
        task.batch_features({"semantic": torch.zeros(1, 8)})
    with pytest.raises(ValueError, match="100 channels"):
        task.batch_features({"features": torch.zeros(1, 8, 100)})
    with pytest.raises(ValueError, match="with_decoder"):
        SemanticCodecTask(model={**model_config("semantic_codec_tiny"), "with_decoder": False})
