"""The random streams of a training run, carried in its checkpoints so that a resumed run draws what an
unbroken one would (masks, prompt lengths, quantizer dropout, dropout). Every task mixes in
``ResumableRng``, so the state travels with the task under our entry point and under a bare trainer.
"""

from __future__ import annotations

import random

import lightning as L
import numpy as np
import torch


class RngStateCallback(L.Callback):
    """Save the torch, numpy and Python RNG states of every rank in checkpoints; restore each rank's own
    when training restarts (under DDP the ranks' streams differ: each draws masks for its own batches).

    Restored as lightning restores the checkpoint, before the fit loop: the sanity check runs under
    lightning's ``isolate_rng`` and our data modules' loaders draw from generators of their own, so the
    first draws from the restored streams are those that followed the save in the unbroken run (the next
    batch's masks, or a plain DataLoader's iterator seed when the save ended an epoch).
    """

    @staticmethod
    def _local_state() -> dict:
        kind, keys, position, has_gauss, cached = np.random.get_state()
        state = {
            "torch": torch.get_rng_state(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
            "python": random.getstate(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def state_dict(self) -> dict:
        # Lightning asks every rank for its callbacks' state and writes rank 0's: gather them all there.
        states = [self._local_state()]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            states = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(states, self._local_state())
        return {"ranks": states}

    def load_state_dict(self, state_dict: dict) -> None:
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        states = state_dict.get("ranks", [state_dict])  # checkpoints before per-rank states hold one
        if rank >= len(states):
            raise ValueError(f"the checkpoint holds RNG states of {len(states)} ranks; this is rank {rank}")
        state = states[rank]
        torch.set_rng_state(state["torch"])
        kind, keys, position, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
        python = state["python"]
        random.setstate((python[0], tuple(python[1]), python[2]))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class ResumableRng:
    """Mixed into every task (LightningModule): lightning attaches the task's ``RngStateCallback``."""

    def configure_callbacks(self) -> list[L.Callback]:
        return [RngStateCallback()]
