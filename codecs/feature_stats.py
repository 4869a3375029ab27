"""Normalisation statistics of a semantic front end's features: the ``mean``/``var`` file, and computing
them over a data dir (``python -m maskgct.codecs.semantic stats``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from maskgct.audio import AudioError
from maskgct.checkpoint import CheckpointError, read_safetensors
from maskgct.constants import SEMANTIC_SAMPLE_RATE, SILENCE_PEAK
from maskgct.progress import ProgressLines


def load_stats(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read ``mean`` and ``var`` ``(C,)`` from a statistics file (the official file has exactly these)."""
    if not Path(path).is_file():
        raise CheckpointError(f"statistics file not found: {path}")
    stats = read_safetensors(path)
    if "mean" not in stats or "var" not in stats:
        raise CheckpointError(f"{path}: expected tensors 'mean' and 'var', found {sorted(stats)}")
    mean, var = stats["mean"].float(), stats["var"].float()
    if mean.ndim != 1 or mean.shape != var.shape:
        raise CheckpointError(
            f"{path}: mean {tuple(mean.shape)} and var {tuple(var.shape)} must be equal (C,)"
        )
    if not (var > 0).all():
        raise CheckpointError(f"{path}: var must be positive")
    return mean, var


def save_stats(path: str | Path, mean: torch.Tensor, var: torch.Tensor) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file({"mean": mean.float().contiguous(), "var": var.float().contiguous()}, str(path))


def usable_batches(
    items: list, batch_size: int, min_samples: int, max_samples: int | None, rejected: dict[str, str]
):
    """Yield batches (lists of ``(L_i,)`` float32 arrays) of the usable 16 kHz utterances among ``items``
    (``maskgct.data.extract.Utterance``); the others go into ``rejected`` as ``{utt: reason}``."""
    wavs = []
    for item in items:
        try:
            wav = item.audio(SEMANTIC_SAMPLE_RATE)
        except AudioError as err:
            rejected[item.utt] = str(err)
            continue
        seconds = len(wav) / SEMANTIC_SAMPLE_RATE
        if len(wav) < min_samples:
            rejected[item.utt] = f"too short ({seconds * 1000:.1f} ms < {min_samples / 16:.0f} ms)"
        elif max_samples is not None and len(wav) > max_samples:
            rejected[item.utt] = f"too long ({seconds:.2f} s > {max_samples / SEMANTIC_SAMPLE_RATE:g} s)"
        elif np.abs(wav).max() < SILENCE_PEAK:
            rejected[item.utt] = f"silent (peak below {SILENCE_PEAK:g})"
        else:
            wavs.append(wav)
        if len(wavs) == batch_size:
            yield wavs
            wavs = []
    if wavs:
        yield wavs


@torch.no_grad()
def compute_stats(
    features: nn.Module, data_dir: str | Path, batch_size: int, min_samples: int, progress_every: int = 0
) -> tuple[torch.Tensor, torch.Tensor, int, dict[str, str]]:
    """Mean and (population) variance ``(C,)`` of the unnormalised layer features over every valid frame.

    Sums are kept in float64, so the order of utterances does not matter to float32 precision.
    ``progress_every`` > 0 prints a line on stderr every that many utterances.
    Returns ``(mean, var, frames, rejected)``.
    """
    from maskgct.data.datadir import read_datadir
    from maskgct.data.extract import utterances

    items = utterances(read_datadir(data_dir))
    progress = ProgressLines("feature statistics", len(items), "utterances", progress_every)
    total = torch.zeros(features.hidden_size, dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    frames = used = 0
    rejected: dict[str, str] = {}
    for wavs in usable_batches(items, batch_size, min_samples, features.max_samples, rejected):
        hidden, mask = features(wavs, normalise=False)
        valid = hidden[mask].double().cpu()
        total += valid.sum(0)
        total_sq += valid.pow(2).sum(0)
        frames += valid.shape[0]
        used += len(wavs)
        progress.update(used + len(rejected), f" ({len(rejected)} skipped, {frames} frames)")
    progress.update(len(items), f" ({len(rejected)} skipped, {frames} frames)")
    if frames == 0:
        raise ValueError(f"{data_dir}: no usable utterance")
    mean = total / frames
    var = (total_sq / frames - mean.pow(2)).clamp_min(1e-8)
    return mean.float(), var.float(), frames, rejected
