"""The optimiser of the training tasks: AdamW with a linear learning-rate warm-up."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from maskgct.train.freeze import trainable


def adamw_with_warmup(
    parameters: Iterable[torch.nn.Parameter],
    lr: float,
    betas: Sequence[float],
    weight_decay: float,
    warmup_steps: int,
) -> dict:
    """AdamW whose learning rate rises linearly over ``warmup_steps`` optimiser steps, then stays at ``lr``.

    Returns lightning's ``configure_optimizers`` dict (the scheduler steps every optimiser step). Frozen
    parameters (``maskgct.train.freeze``) are left out, so no optimiser state is kept for them.
    """
    optimizer = torch.optim.AdamW(trainable(parameters), lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    warmup = max(warmup_steps, 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
