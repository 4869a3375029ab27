"""The shared base of the masked-token training tasks (``train/t2s.py``, ``train/s2a.py``): the network,
AdamW with warm-up, and the ``loss``/``acc`` logging. The networks' own ``loss`` does the masking (see
``maskgct.masking``); ``infill_prob`` (``task.infill_prob=0.3``) also trains filling a middle span between
two fixed parts, as speech editing uses the models (0, the default, is the official training exactly).
"""

from __future__ import annotations

import lightning as L
import torch

from maskgct.train.optim import adamw_with_warmup
from maskgct.train.rng import ResumableRng


class MaskedTokenTask(ResumableRng, L.LightningModule):
    """The masked-token tasks (T2S, S2A): network, optimiser and logging.

    A subclass names its network (``network``, ``network_config``) and the batch keys that are the
    positional arguments of the network's ``loss`` (``batch_keys``), which returns ``{"loss", "acc", ...}``.
    """

    network: type[torch.nn.Module]
    network_config: type
    batch_keys: tuple[str, ...]

    def __init__(
        self,
        model: dict,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.98),
        weight_decay: float = 0.0,
        warmup_steps: int = 1000,
        cooldown_steps: int = 0,
        attention: str = "sdpa",
        infill_prob: float = 0.0,
    ):
        super().__init__()
        if not 0 <= infill_prob <= 1:
            raise ValueError(f"infill_prob must lie in [0, 1], not {infill_prob!r}")
        self.save_hyperparameters()
        self.net = self.network(self.network_config(**model))

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        inputs = [batch[key] for key in self.batch_keys]
        return self.net.loss(*inputs, attention=self.hparams.attention, infill_prob=self.hparams.infill_prob)

    def _log(self, prefix: str, losses: dict[str, torch.Tensor], batch: dict) -> None:
        batch_size = len(batch["utt_ids"]) if "utt_ids" in batch else batch["semantic"].shape[0]
        values = {f"{prefix}/{k}": v.float() for k, v in losses.items() if k in ("loss", "acc", "guide")}
        self.log_dict(values, batch_size=batch_size, sync_dist=prefix == "val")

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        losses = self.losses(batch)
        self._log("train", losses, batch)
        return losses["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._log("val", self.losses(batch), batch)

    def configure_optimizers(self):
        hp = self.hparams
        return adamw_with_warmup(self.net.parameters(), hp, self.trainer.max_steps)
