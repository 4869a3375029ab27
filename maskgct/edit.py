"""Speech editing: change the words of a recording, in its speaker's voice, and keep the rest of it as it was.

The MaskGCT paper's recipe, with our aligner finding the edit boundaries::

    transcript vs new text ─ word diff ─▶ changed words (close edits merged into one span)
    recording + transcript ─ aligner (maskgct.align) ─▶ word times ─▶ span edges on 20 ms frame boundaries
    T2S(phones of the edited text, semantic before | n masked | semantic after) ─▶ n new semantic tokens
    S2A(semantic of all three, codes before | n masked | codes after) ─▶ n new frames of acoustic codes
    codec ─▶ the span's audio, spliced into the original recording with one 20 ms crossfade on each side

The span's new length n comes from the official duration rule on its new phones at the recording's own
speaking rate (``maskgct.constants.rule_frames``), or from ``duration`` seconds. Several separate edits are
filled left to right, each seeing the text as edited so far; every sample outside the spans and their
crossfades is the original's (at 24 kHz). The plan (diff, spans, lengths, request checks) is
``maskgct.edit_plan``; ``python -m maskgct.edit`` is the command line (``maskgct.edit_cli``),
``MaskGCT.edit`` the API.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from maskgct.align import Alignment
from maskgct.api import MaskGCT, sampling_options
from maskgct.constants import ACOUSTIC_HOP, SAMPLE_RATE, SEMANTIC_SAMPLE_RATE
from maskgct.edit_plan import EditPlan, EditSpan, prepare_edit
from maskgct.request import InputError, check_mode_arg
from maskgct.s2a import s2a_generate
from maskgct.text import text_to_ids
from maskgct.vc import TOKEN_PAD_SECONDS

# Frames of codes decoded on each side of a span, so the codec's receptive field sees real context.
DECODE_CONTEXT_FRAMES = 25


@dataclass
class EditResult:
    """The edited audio, float32 ``(L,)`` at ``sample_rate``; the plan; the transcript's alignment; and the
    edited recording's tokens: ``semantic`` Long(T',), ``codes`` Long(T', Q) (the original's outside the
    spans, T' its whole frames after the edit)."""

    audio: np.ndarray
    sample_rate: int
    spans: list[EditSpan]
    alignment: Alignment
    semantic: torch.Tensor
    codes: torch.Tensor


def crossfade_splice(pieces: list[np.ndarray], overlap: int) -> np.ndarray:
    """Join pieces with linear crossfades of ``overlap`` samples (each piece at least ``2 * overlap`` long,
    the first and last at least ``overlap``). Linear, not equal-power: across an edge both sides are the
    same sound (the original and the codec's rendering of it), so their gains should add up to one."""
    ramp = (np.arange(overlap, dtype=np.float64) + 0.5) / overlap
    out = [pieces[0][:-overlap]]
    for index in range(1, len(pieces)):
        previous, piece = pieces[index - 1], pieces[index]
        out.append((previous[-overlap:] * (1 - ramp) + piece[:overlap] * ramp).astype(np.float32))
        out.append(piece[overlap:] if index == len(pieces) - 1 else piece[overlap:-overlap])
    return np.concatenate(out).astype(np.float32, copy=False)


@torch.no_grad()
def edit_speech(
    model: MaskGCT,
    audio,
    text: str,
    new_text: str,
    *,
    sample_rate: int | None = None,
    duration: float | None = None,
    seed: int | None = None,
    mode: str = "reference",
    language: str = "en",
    steps: int | None = None,
    s2a_steps=None,
    cfg: float | None = None,
    s2a_cfg: float | None = None,
    temperature: float | None = None,
    s2a_temperature: float | None = None,
) -> EditResult:
    """Make the recording ``audio`` (a file, or an array at ``sample_rate``), which says ``text``, say
    ``new_text``. duration: seconds of the new words (one edited span), else the duration rule; seed:
    seeds a private generator; mode: "reference" | "fast"; the rest: T2S / S2A decoding overrides as in
    ``MaskGCT.clone_with_details``. Returns the 24 kHz audio and the plan (``EditResult.spans``)."""
    check_mode_arg(mode)
    layers = model.s2a_full.config.num_quantizer
    options = sampling_options(steps, s2a_steps, cfg, s2a_cfg, temperature, s2a_temperature, layers)
    if len(options.s2a_steps) != layers:
        raise InputError(f"s2a_steps needs {layers} entries, got {len(options.s2a_steps)}")
    plan = prepare_edit(audio, text, new_text, sample_rate, duration, language)
    frames, device = plan.frames, model.device
    # Silence after the audio makes the semantic tokens cover every whole frame (as maskgct.vc does).
    silence = np.zeros(round(TOKEN_PAD_SECONDS * SEMANTIC_SAMPLE_RATE), np.float32)
    semantic = model.tokenizer.tokenize(np.concatenate([plan.wav16, silence]))[:frames].to(device)
    wav = torch.from_numpy(plan.wav24[: frames * ACOUSTIC_HOP]).to(device)
    acoustic = model.codec.encode(wav[None, None])[0]
    if len(semantic) != frames or len(acoustic) != frames:
        raise RuntimeError(
            f"{len(semantic)} semantic and {len(acoustic)} acoustic tokens for {frames} frames"
        )
    generator = None if seed is None else torch.Generator(device).manual_seed(int(seed))
    with model._precision(mode):
        semantic, acoustic, starts = fill_spans(
            model, plan, semantic, acoustic, options, (mode, generator), language
        )
    audio = splice(model, plan.wav24, acoustic, semantic, plan.spans, starts)
    return EditResult(audio, SAMPLE_RATE, plan.spans, plan.alignment, semantic, acoustic)


def fill_spans(model: MaskGCT, plan: EditPlan, semantic, acoustic, options, sampling, language):
    """Generate each span in turn, left to right: semantic Long(T,) and codes Long(T, Q) of the recording
    → those of the edited recording, and where each span starts in it. ``sampling``: (mode, generator)."""
    t2s_decoding, s2a_decoding = options.t2s(*sampling), options.s2a(*sampling)
    starts, offset = [], 0
    for span in plan.spans:
        a, b, n = span.start_frame + offset, span.end_frame + offset, span.new_frames
        starts.append(a)
        offset += n - (b - a)
        if n == 0:  # a delete: the codes before and after meet, the codec renders the join
            semantic, acoustic = (
                torch.cat([semantic[:a], semantic[b:]]),
                torch.cat([acoustic[:a], acoustic[b:]]),
            )
            continue
        # The text as edited up to this span, as it stands after it (later spans are still old).
        words = plan.new[: span.new_range[1]] + plan.old[span.old_range[1] :]
        phones = torch.tensor([text_to_ids(" ".join(words), language)], device=semantic.device)
        middle = model.t2s.generate(
            phones, semantic[None, :a], n, options.t2s_steps, t2s_decoding, semantic[None, b:]
        )[0]
        semantic = torch.cat([semantic[:a], middle, semantic[b:]])
        codes = s2a_generate(
            model.s2a_1layer,
            model.s2a_full,
            semantic[None],
            acoustic[None, :a],
            options.s2a_steps,
            s2a_decoding,
            acoustic[None, b:],
        )[0]
        acoustic = torch.cat([acoustic[:a], codes, acoustic[b:]])
    return semantic, acoustic, starts


def splice(
    model: MaskGCT, wav24: np.ndarray, codes: torch.Tensor, semantic: torch.Tensor, spans, starts
) -> np.ndarray:
    """The original audio with each span replaced by the decoded codes ``(T', Q)`` of the edited recording,
    with its semantic tokens ``(T',)`` (the span plus the frame either side, crossfaded with the original's
    over those frames)."""
    pieces, previous_end = [], 0
    for span, start in zip(spans, starts, strict=True):
        first, stop = start - 1, start + span.new_frames + 1  # the edited frames and one each side
        lo, hi = max(0, first - DECODE_CONTEXT_FRAMES), min(len(codes), stop + DECODE_CONTEXT_FRAMES)
        decoded = model.decode(codes[lo:hi], semantic[lo:hi])
        if len(decoded) != (hi - lo) * ACOUSTIC_HOP:
            raise RuntimeError(f"the codec gave {len(decoded)} samples for {hi - lo} frames")
        pieces.append(wav24[previous_end * ACOUSTIC_HOP : span.start_frame * ACOUSTIC_HOP])
        pieces.append(decoded[(first - lo) * ACOUSTIC_HOP : (stop - lo) * ACOUSTIC_HOP])
        previous_end = span.end_frame
    pieces.append(wav24[previous_end * ACOUSTIC_HOP :])
    return crossfade_splice(pieces, ACOUSTIC_HOP)


if __name__ == "__main__":
    import sys

    from maskgct.edit_cli import main

    sys.exit(main())
