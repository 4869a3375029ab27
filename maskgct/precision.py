"""What fast mode computes in: bfloat16 where the device multiplies it natively, float32 elsewhere.

Reference mode is the official float32 computation and never looks here. Fast mode runs the T2S and S2A
transformers under ``torch.autocast`` in ``fast_dtype``: their matrix products (nearly all of the work) in
bfloat16, the residual stream, norms' statistics and the sampler in float32. A processor with AMX or
AVX512-BF16 (and a CUDA card with bf16) multiplies bfloat16 several times faster than float32; one
without would emulate it and lose, so there fast mode stays in float32 (``fast_dtype``: "never lose").
Measured on an AMX Xeon, one thread, an official-size T2S forward of 337 rows: float32 2.47 s, bfloat16
0.62 s (``bench/infer.py`` has the end-to-end figures).

A model's ``precision`` (``MaskGCT.from_pretrained(..., precision=...)``):

* ``"auto"`` (default): float32 weights, so both modes work; fast mode computes in ``fast_dtype``.
* ``"float32"``: fast mode computes in float32 too (SDPA and unpadded guidance only).
* ``"bfloat16"``: the Linear weights of T2S and S2A are *stored* in bfloat16 (half their memory), so only
  fast mode can run. The command line loads this way for ``--mode fast`` where bfloat16 is native
  (``load_precision``). Autocast rounds float32 weights exactly as storing them does, so "auto" and
  "bfloat16" give the same fast-mode tokens.

The prompt encoders (w2v-BERT or whisper, the codecs) stay float32 in every precision: a prompt's tokens
do not depend on the mode, so an encoded ``Prompt`` serves both.

Only ``nn.Linear`` weights are stored in bfloat16: they are nearly all of the parameters, autocast feeds
them bfloat16 inputs, and the embeddings and norms they leave in float32 keep the sums and statistics
that autocast keeps in float32 from meeting a bfloat16 parameter.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

PRECISIONS = ("auto", "float32", "bfloat16")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")


def native_bfloat16(device: str | torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 in hardware (CPU: AMX or AVX512-BF16; CUDA: Ampere on)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    # Private probes of torch.cpu; a torch without them counts as "no" (fast mode then stays float32).
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def fast_dtype(device: str | torch.device, precision: str = "auto") -> torch.dtype:
    """The dtype fast mode's transformers compute in, for a model loaded with ``precision``."""
    check_precision(precision)
    if precision == "auto":
        return torch.bfloat16 if native_bfloat16(device) else torch.float32
    return torch.bfloat16 if precision == "bfloat16" else torch.float32


def load_precision(mode: str, device: str | torch.device) -> str:
    """The precision a one-mode command loads with: bfloat16 weights for fast mode where bfloat16 is native
    (half the memory, same speed), float32 otherwise (reference mode needs it)."""
    return "bfloat16" if mode == "fast" and native_bfloat16(device) else "float32"


def computing_in(dtype: torch.dtype, device: str | torch.device):
    """A context running autocast in ``dtype`` on ``device`` (nothing for float32)."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def store_linears(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast the weights and biases of every ``nn.Linear`` in ``module`` to ``dtype``, in place."""
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            sub.to(dtype)
    return module
