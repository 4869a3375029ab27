"""Training the flow-matching duration model (``task=duration``, ``data=duration``).

A training example is a same-speaker prompt/target pair (``maskgct.data.duration``, which also describes
the batches): the model learns the target's total length from its phones, the prompt's phones and the
prompt's length.

Logs ``train/loss`` (velocity MSE) and, on validation pairs, ``val/loss`` and the mean absolute error of
log-duration of the model (``val/mae_log``) and of the phone-ratio rule (``val/mae_log_rule``).
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch

from maskgct.data.duration import DataDirUtterances, DumpUtterances, DurationPairDataset, collate_pairs
from maskgct.duration import DurationConfig, DurationModel, rule_frames
from maskgct.train.optim import adamw_with_warmup
from maskgct.train.rng import ResumableRng

# In the order of ``DurationModel.loss``'s arguments.
BATCH_KEYS = ("prompt_phone_ids", "prompt_phone_mask", "prompt_frames", "phone_ids", "phone_mask", "frames")


def mae_log(predicted: torch.Tensor, actual: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of log-duration: Float(B,) frames, Long/Float(B,) frames -> scalar."""
    return (predicted.float().log() - actual.float().log()).abs().mean()


@torch.no_grad()
def compare_with_rule(
    net: DurationModel,
    utterances: DumpUtterances | DataDirUtterances,
    prompts_per_target: int = 4,
    batch_size: int = 64,
    steps: int = 8,
    num_samples: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """MAE of log-duration of the model and of the phone-ratio rule on same-speaker pairs of a test set.

    Each utterance is the target of up to ``prompts_per_target`` pairs, its prompts drawn (seeded) from the
    other utterances of its speaker. Returns ``{"mae_log", "mae_log_rule", "pairs"}``.
    """
    dataset = DurationPairDataset(utterances, seed)
    rng = np.random.default_rng(seed)
    pairs = []
    for group in dataset.by_speaker.values():
        for target in group:
            others = [index for index in group if index != target]
            chosen = rng.permutation(len(others))[:prompts_per_target]
            pairs += [(target, others[i]) for i in chosen]
    if not pairs:
        raise ValueError("no speaker with two utterances to pair")
    generator = torch.Generator().manual_seed(seed)
    device = net.to_velocity.weight.device
    model_errors, rule_errors = [], []
    for start in range(0, len(pairs), batch_size):
        batch = collate_pairs([dataset.pair(t, p) for t, p in pairs[start : start + batch_size]])
        inputs = [batch[key].to(device) for key in BATCH_KEYS[:-1]]
        predicted = net.predict_frames(*inputs, steps=steps, num_samples=num_samples, generator=generator)
        rule = torch.tensor(
            [
                rule_frames(int(f), int(p.sum()), int(t.sum()))
                for f, p, t in zip(
                    batch["prompt_frames"], batch["prompt_phone_mask"], batch["phone_mask"], strict=True
                )
            ]
        )
        actual = batch["frames"].float().log()
        model_errors.append((predicted.cpu().log() - actual).abs())
        rule_errors.append((rule.float().log() - actual).abs())
    return {
        "mae_log": float(torch.cat(model_errors).mean()),
        "mae_log_rule": float(torch.cat(rule_errors).mean()),
        "pairs": len(pairs),
    }


class DurationTask(ResumableRng, L.LightningModule):
    """LightningModule for the duration model; ``self.net`` is ``maskgct.duration.DurationModel``."""

    def __init__(
        self,
        model: dict,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.9, 0.98),
        weight_decay: float = 0.01,
        warmup_steps: int = 500,
        cooldown_steps: int = 0,
        sample_steps: int = 8,
        num_samples: int | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = DurationModel(DurationConfig(**model))

    @staticmethod
    def _inputs(batch: dict) -> tuple[torch.Tensor, ...]:
        missing = [key for key in BATCH_KEYS if key not in batch]
        if missing:
            raise ValueError(
                f"duration batch has no {missing[0]!r}: train with data=duration "
                "(maskgct.data.duration.DurationDataModule), which pairs prompts with targets"
            )
        return tuple(batch[key] for key in BATCH_KEYS[:-1])

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        return self.net.loss(*self._inputs(batch), batch["frames"])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.losses(batch)["loss"]
        self.log("train/loss", loss, batch_size=len(batch["frames"]))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        inputs = self._inputs(batch)
        # Own generators: validation must not move the global RNG, which training (and resume) rely on.
        loss = self.net.loss(*inputs, batch["frames"], generator=torch.Generator().manual_seed(batch_idx))
        predicted = self.net.predict_frames(
            *inputs,
            steps=self.hparams.sample_steps,
            num_samples=self.hparams.num_samples,
            generator=torch.Generator().manual_seed(batch_idx),
        )
        prompt_frames, prompt_mask, target_mask = inputs[2], inputs[1], inputs[4]
        rule = (prompt_frames * target_mask.sum(1) // prompt_mask.sum(1)).clamp(min=1)
        values = {
            "val/loss": loss["loss"],
            "val/mae_log": mae_log(predicted, batch["frames"]),
            "val/mae_log_rule": mae_log(rule, batch["frames"]),
        }
        self.log_dict(values, batch_size=len(batch["frames"]), sync_dist=True)

    def configure_optimizers(self):
        hp = self.hparams
        return adamw_with_warmup(self.net.parameters(), hp, self.trainer.max_steps)
