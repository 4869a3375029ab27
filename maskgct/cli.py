"""Bad input on the command line (every ``python -m maskgct...`` command): one ``error: ...`` line, exit 2."""

from __future__ import annotations

import sys


def report_error(error: BaseException | str) -> int:
    """Print ``error: <message>`` to stderr and return the exit status 2 (``return report_error(err)``)."""
    print(f"error: {error}", file=sys.stderr)
    return 2


DEVICE_HELP = "auto (CUDA when present, else CPU), cpu, cuda, cuda:1, ... (default: %(default)s)"


def pick_device(device: str) -> str:
    """A ``--device`` value → a torch device name: "auto" is CUDA when present, else CPU (every command's
    default); an unknown name or CUDA without a GPU is a ``ValueError``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return device
