"""The optimiser of the training tasks: AdamW with a linear learning-rate warm-up and an optional cool-down.

The learning rate rises linearly over ``warmup_steps``, then stays constant; with ``cooldown_steps`` it
falls linearly to 0 over the last ``cooldown_steps`` of ``trainer.max_steps`` (warm-up, stable, decay).
A run at a constant rate that has flattened can so be resumed with ``trainer.max_steps`` raised and a
cool-down set: the scheduler's step count comes back from the checkpoint and the new schedule applies from
there, because the schedule is a function of the step alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial

import torch

from maskgct.train.freeze import trainable


def lr_factor(step: int, warmup_steps: int, cooldown_steps: int = 0, max_steps: int = -1) -> float:
    """The learning rate after ``step`` optimiser steps, as a share of the peak rate."""
    factor = min(1.0, (step + 1) / max(warmup_steps, 1))
    if cooldown_steps > 0:
        factor = min(factor, max(0.0, (max_steps - step) / cooldown_steps))
    return factor


def adamw_with_warmup(parameters: Iterable[torch.nn.Parameter], hp: Mapping, max_steps: int) -> dict:
    """AdamW over ``parameters`` with the task's ``hp`` (``lr``, ``betas``, ``weight_decay``,
    ``warmup_steps``, ``cooldown_steps``); ``max_steps`` is the trainer's (-1: unbounded,
    which a cool-down cannot be).

    Returns lightning's ``configure_optimizers`` dict (the scheduler steps every optimiser step). Frozen
    parameters (``maskgct.train.freeze``) are left out, so no optimiser state is kept for them.
    """
    cooldown = hp["cooldown_steps"]
    if cooldown < 0:
        raise ValueError(f"cooldown_steps must be ≥ 0, not {cooldown!r}")
    if cooldown and max_steps <= 0:
        raise ValueError("cooldown_steps needs trainer.max_steps: the rate reaches 0 at the last step")
    optimizer = torch.optim.AdamW(
        trainable(parameters), lr=hp["lr"], betas=tuple(hp["betas"]), weight_decay=hp["weight_decay"]
    )
    factor = partial(lr_factor, warmup_steps=hp["warmup_steps"], cooldown_steps=cooldown, max_steps=max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
