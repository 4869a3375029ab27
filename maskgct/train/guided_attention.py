"""Guided attention for T2S training (``task.guided_attention``; 0, the default, is the official training).

T2S must find by attention alone which phones each semantic frame says: its input is ``[phones | tokens]``
with nothing tying the two. With little data that alignment is slow to appear (the shipped default model
predicts the frames after a prompt barely better from their own text than from another sentence's:
``val/acc_text`` vs ``val/acc_other_text``), and without it T2S babbles in the prompt's voice. Guided
attention (Tachibana et al., 2017, "Efficiently trainable text-to-speech ... with guided attention") adds a
penalty on attention far from the diagonal: frame ``t`` of ``T`` looking at phone ``n`` of ``N`` costs
``1 - exp(-(n/N - t/T)² / (2 σ²))``. In training the phones are the whole utterance's and the prompt is its
beginning, so the diagonal runs over the whole sequence of frames.

Where the dump carries forced alignments (``python -m maskgct.data align``: each phone's frame), the diagonal
is replaced by the alignment itself: frame ``t`` lies at the fractional phone position ``a(t)`` interpolated
between the phones' frames, and looking at phone ``n`` costs ``1 - exp(-(n - a(t))² / (2 w²))``, ``w`` in
phones (``guided_width``): the head is told which phone each frame says, not only roughly where in the
sentence it is. Utterances the aligner could not place (frames -1) keep the diagonal.

Only the chosen heads of one layer are guided (the others stay free), and only their attention from the
frames to the phones, renormalised over the phones: "which phone does this frame read". The attention is
recomputed from that layer's input, captured by a forward hook, so the network's code and its inference
path are unchanged.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from maskgct.transformer import Attention


def diagonal_penalty(phone_mask: torch.Tensor, frame_mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """``phone_mask (B, P)``, ``frame_mask (B, T)`` (1 = valid) → ``W (B, T, P)``: 0 on the diagonal of
    each utterance's valid phones × frames, rising to 1 away from it (0 where either is padding)."""
    n = torch.arange(phone_mask.shape[1], device=phone_mask.device)[None, None, :]
    t = torch.arange(frame_mask.shape[1], device=frame_mask.device)[None, :, None]
    phones = phone_mask.sum(1).clamp(min=1)[:, None, None]
    frames = frame_mask.sum(1).clamp(min=1)[:, None, None]
    w = 1 - torch.exp(-((n / phones - t / frames) ** 2) / (2 * sigma**2))
    return w * frame_mask[:, :, None] * phone_mask[:, None, :]


def aligned_penalty(
    phone_frames: torch.Tensor, phone_mask: torch.Tensor, frame_mask: torch.Tensor, width: float
) -> torch.Tensor:
    """``phone_frames (B, P)`` (each phone's frame, non-decreasing; padding -1), masks as
    :func:`diagonal_penalty` → ``W (B, T, P)``: 0 at the phone each frame says, rising to 1 ``width`` phones
    and more away from it (0 where either is padding)."""
    # a(t) = the number of phone-to-phone segments frame t has passed, the last one in part: 0 before the
    # first phone, the last phone's index after it (a single phone: no segment, 0).
    c = phone_frames.float()
    segments = (phone_mask[:, 1:] * phone_mask[:, :-1]).float()[:, None]  # (B, 1, P - 1)
    span = (c[:, 1:] - c[:, :-1]).clamp(min=1e-6)[:, None]
    t = torch.arange(frame_mask.shape[1], device=frame_mask.device, dtype=torch.float32)[None, :, None]
    position = (((t - c[:, None, :-1]) / span).clamp(0, 1) * segments).sum(-1)  # (B, T) fractional phone
    n = torch.arange(phone_mask.shape[1], device=phone_mask.device)[None, None, :]
    w = 1 - torch.exp(-((n - position[:, :, None]) ** 2) / (2 * width**2))
    return w * frame_mask[:, :, None] * phone_mask[:, None, :]


def penalty(batch: dict, sigma: float, width: float) -> torch.Tensor:
    """The penalty ``W (B, T, P)`` of a token batch: by each utterance's alignment where the batch has
    ``phone_frames`` and the utterance was aligned, by the diagonal otherwise."""
    phone_mask, frame_mask = batch["phone_mask"].float(), batch["semantic_mask"].float()
    if "phone_frames" not in batch:
        return diagonal_penalty(phone_mask, frame_mask, sigma)
    w = aligned_penalty(batch["phone_frames"], phone_mask, frame_mask, width)
    aligned = (batch["phone_frames"][:, 0] >= 0)[:, None, None]
    return torch.where(aligned, w, diagonal_penalty(phone_mask, frame_mask, sigma))


@contextmanager
def capture_inputs(module: torch.nn.Module):
    """Within the block, ``captured["args"]`` holds the positional inputs of ``module``'s last call."""
    captured: dict = {}

    def hook(_module, args):
        captured["args"] = args

    handle = module.register_forward_pre_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


def frame_to_phone_attention(
    attn: Attention, args: tuple, phone_mask: torch.Tensor, heads: int
) -> torch.Tensor:
    """The first ``heads`` heads' attention from the frames to the phones, renormalised over the valid
    phones: ``(B, heads, T, P)``. ``args`` are the layer's inputs ``(x (B, P + T, C), cos, sin, ...)``."""
    x, cos, sin = args[:3]
    num_phones = phone_mask.shape[1]
    q, k = attn.queries_keys(x, cos, sin)
    q, k = q[:, :heads, num_phones:], k[:, :heads, :num_phones]
    scores = torch.matmul(q, k.transpose(2, 3)).float() / math.sqrt(attn.head_dim)
    scores = scores.masked_fill(~phone_mask.bool()[:, None, None, :], float("-inf"))
    return F.softmax(scores, dim=-1).nan_to_num()  # a row without phones (none in T2S data) attends to none


def guided_attention_loss(attention: torch.Tensor, w: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Mean over the valid frames and the heads of ``Σ_n A[t, n] · W[t, n]`` (``attention (B, H, T, P)``,
    ``w (B, T, P)`` from :func:`penalty`)."""
    per_frame = (attention * w[:, None]).sum(-1)  # (B, H, T)
    frames = frame_mask.float()[:, None, :].expand_as(per_frame)
    return (per_frame * frames).sum() / frames.sum().clamp(min=1)
