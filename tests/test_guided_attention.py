"""Guided attention for T2S training: the diagonal and the aligned priors, the penalty, and training runs
that use them."""

import pytest
import torch
from train_support import compose_cfg, write_token_dump

from maskgct.data.datamodule import TokenDataModule
from maskgct.train.__main__ import train
from maskgct.train.guided_attention import aligned_penalty, diagonal_penalty, guided_attention_loss, penalty
from maskgct.train.t2s import T2STask


def test_the_penalty_is_zero_on_each_utterances_diagonal_and_on_padding():
    phone_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    frame_mask = torch.tensor([[1] * 8, [1] * 4 + [0] * 4])
    w = diagonal_penalty(phone_mask.float(), frame_mask.float(), sigma=0.2)
    assert w.shape == (2, 8, 4)
    assert w[0, 0, 0] == 0 and w[0, 4, 2] == 0 and w[1, 2, 1] == 0  # t/T == n/N
    assert w[0, 7, 0] > 0.9 and w[0, 0, 3] > 0.5  # far from the diagonal
    assert (w[1, 4:] == 0).all() and (w[1, :, 2:] == 0).all()  # padded frames and phones


def test_diagonal_attention_costs_less_than_reversed():
    phone_mask, frame_mask = torch.ones(1, 5), torch.ones(1, 10)
    diagonal = torch.zeros(1, 1, 10, 5)
    diagonal[0, 0, torch.arange(10), torch.arange(10) // 2] = 1
    reversed_ = diagonal.flip(-1)
    uniform = torch.full((1, 1, 10, 5), 0.2)
    w = diagonal_penalty(phone_mask, frame_mask, 0.2)
    costs = [guided_attention_loss(a, w, frame_mask) for a in (diagonal, uniform, reversed_)]
    assert costs[0] < 0.15 < costs[1] < costs[2]


def test_the_aligned_penalty_is_zero_at_the_phone_each_frame_says():
    # Utterance 0: phones at frames 1, 2, 6, 7 (a pause between the 2nd and 3rd); utterance 1: two phones.
    phone_frames = torch.tensor([[1, 2, 6, 7], [0, 3, -1, -1]])
    phone_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    frame_mask = torch.tensor([[1] * 9, [1] * 5 + [0] * 4])
    w = aligned_penalty(phone_frames, phone_mask.float(), frame_mask.float(), width=1.0)
    assert w.shape == (2, 9, 4)
    for t, n in (
        (0, 0),
        (1, 0),
        (2, 1),
        (6, 2),
        (7, 3),
        (8, 3),
    ):  # before the first / after the last: the edge
        assert w[0, t, n] == 0 and w[0, t].argmin() == n
    assert w[0, 4, 1] > 0 and w[0, 4, 1] == pytest.approx(w[0, 4, 2])  # midway through the pause
    assert w[0, 4, 1] < w[0, 4, 0] and w[0, 0, 3] > 0.9
    assert w[1, 3, 1] == 0 and (w[1, 5:] == 0).all() and (w[1, :, 2:] == 0).all()  # padding
    # Against the diagonal it needs: frames 3-5 (the pause) read phone 1-2, not the diagonal's phone 1.5-2.5.
    diagonal = diagonal_penalty(phone_mask[:1].float(), frame_mask[:1].float(), sigma=0.1)[0]
    assert not torch.equal(w[0].argmin(1), diagonal.argmin(1))


def test_a_single_phone_is_said_by_every_frame():
    w = aligned_penalty(torch.tensor([[2]]), torch.ones(1, 1), torch.ones(1, 5), width=1.0)
    assert w.shape == (1, 5, 1) and (w == 0).all()


def test_unaligned_utterances_keep_the_diagonal():
    batch = {
        "phone_mask": torch.ones(2, 3),
        "semantic_mask": torch.ones(2, 6),
        "phone_frames": torch.tensor([[0, 1, 5], [-1, -1, -1]]),
    }
    w = penalty(batch, sigma=0.2, width=1.0)
    assert torch.equal(w[1], diagonal_penalty(batch["phone_mask"], batch["semantic_mask"], 0.2)[1])
    assert torch.equal(
        w[0], aligned_penalty(batch["phone_frames"], batch["phone_mask"], batch["semantic_mask"], 1.0)[0]
    )
    without = {k: v for k, v in batch.items() if k != "phone_frames"}
    assert torch.equal(
        penalty(without, 0.2, 1.0), diagonal_penalty(batch["phone_mask"], batch["semantic_mask"], 0.2)
    )


def test_t2s_trains_with_aligned_guidance(tmp_path):
    dump = write_token_dump(tmp_path / "dump", aligned=True)
    overrides = [f"exp_dir={tmp_path / 'exp'}", f"data.train_dump={dump}", "data.max_frames=120"]
    guided = [
        "task.guided_attention=1.0",
        "task.guided_layer=0",
        "data.fields=[phone_ids,semantic,phone_frames]",
    ]
    trainer = train(compose_cfg(["task=t2s", *overrides, *guided, "+trainer.fast_dev_run=2"]))
    assert trainer.global_step == 2 and 0 < trainer.callback_metrics["train/guide"] < 1
    batch = next(
        iter(TokenDataModule(str(dump), fields=["phone_ids", "semantic", "phone_frames"]).train_dataloader())
    )
    assert (batch["phone_frames"][batch["phone_mask"] == 0] == -1).all()
    # Each frame of the dump says phone frame // 3: the aligned penalty is 0 there.
    w = penalty(batch, sigma=0.2, width=1.5)
    t = torch.arange(batch["semantic"].shape[1])
    own = w[0, t[: int(batch["semantic_mask"][0].sum())], t[: int(batch["semantic_mask"][0].sum())] // 3]
    assert own.max() < 0.1


def test_t2s_trains_with_guided_attention(tmp_path):
    dump = write_token_dump(tmp_path / "dump")
    overrides = [f"exp_dir={tmp_path / 'exp'}", f"data.train_dump={dump}", "data.max_frames=120"]
    guided = ["task.guided_attention=1.0", "task.guided_layer=0", "task.guided_heads=2"]
    trainer = train(compose_cfg(["task=t2s", *overrides, *guided, "+trainer.fast_dev_run=2"]))
    assert trainer.global_step == 2 and 0 < trainer.callback_metrics["train/guide"] < 1
    # The penalty reaches the guided layer's queries and keys and what feeds them, not the layers above.
    task = trainer.lightning_module.train()
    task.zero_grad()
    task.losses(next(iter(TokenDataModule(str(dump), max_frames=120).train_dataloader())))["guide"].backward()
    layers = task.net.diff_estimator.layers
    attn = layers[0].self_attn
    assert attn.q_proj.weight.grad.abs().sum() > 0 and attn.k_proj.weight.grad.abs().sum() > 0
    assert task.net.phone_emb.weight.grad.abs().sum() > 0 and attn.v_proj.weight.grad is None
    assert all(p.grad is None for p in layers[1].parameters())
    with pytest.raises(ValueError, match="guided_layer"):
        T2STask(task.hparams.model, guided_attention=1.0, guided_layer=len(layers))
