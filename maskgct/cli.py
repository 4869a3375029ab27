"""Bad input on the command line (every ``python -m maskgct...`` command): one ``error: ...`` line, exit 2."""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Callable


def report_error(error: BaseException | str) -> int:
    """Print ``error: <message>`` to stderr and return the exit status 2 (``return report_error(err)``)."""
    print(f"error: {error}", file=sys.stderr)
    return 2


def finite_float(value: str) -> float:
    """A float option; nan and inf are refused (they would silently make garbage audio)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {value!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"expected a finite number, not {value}")
    return number


def parse_steps(value: str) -> tuple[int, ...]:
    """``25,10,1,...``: S2A decoding steps, one per acoustic layer."""
    try:
        return tuple(int(step) for step in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, not {value!r}") from None


MODE_HELP = (
    "reference: the official computation exactly; fast: SDPA attention, no work on padding, and bfloat16 "
    "where the device has it natively (then also half the weight memory)"
)
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


def stderr_log(quiet: bool) -> Callable[[str], None]:
    """The progress logger of a command: a line on stderr, nothing with ``--quiet``."""

    def log(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr)

    return log


def run_audio_command(run: Callable[[], int]) -> int:
    """Run a command that reads audio (infer, vc, edit): ``ValueError``/``OSError`` become one error line.

    librosa falls back to audioread for files soundfile cannot read, warning twice on the way; the unreadable
    file is reported as one error line instead, so those warnings are silenced.
    """
    warnings.filterwarnings("ignore", message="PySoundFile failed")
    warnings.filterwarnings(
        "ignore", message=r"librosa\.core\.audio\.__audioread_load", category=FutureWarning
    )
    try:
        return run()
    except (ValueError, OSError) as err:
        return report_error(err)
