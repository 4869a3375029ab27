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
crossfades is the original's (at 24 kHz). ``python -m maskgct.edit`` is the command line
(``maskgct.edit_cli``), ``MaskGCT.edit`` the API.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

import numpy as np
import torch

from maskgct.align import MATCH_THRESHOLD, Alignment, AlignmentError, align_words
from maskgct.align.energy import HOP_S, energy
from maskgct.api import MaskGCT, sampling_options
from maskgct.constants import (
    ACOUSTIC_HOP,
    FRAME_RATE,
    MAX_SECONDS,
    SAMPLE_RATE,
    SEMANTIC_SAMPLE_RATE,
    rule_frames,
)
from maskgct.request import InputError, check_mode_arg, phones_of
from maskgct.s2a import s2a_generate
from maskgct.text import text_to_ids
from maskgct.vc import TOKEN_PAD_SECONDS, load_clip

# Edits with less untouched audio than this between them are one span: so little context is not worth
# keeping, and it keeps the crossfades of neighbouring spans apart.
MERGE_GAP_FRAMES = FRAME_RATE // 2
# A span edge moves to the quietest frame boundary within this many frames (the aligner's ~40 ms error).
SNAP_FRAMES = 2
# Frames of codes decoded on each side of a span, so the codec's receptive field sees real context.
DECODE_CONTEXT_FRAMES = 25
MIN_AUDIO_SECONDS = 0.5


@dataclass
class EditSpan:
    """One edited stretch: the transcript's words ``old[old_range]`` become the new text's
    ``new[new_range]`` (either may be empty: an insert, a delete); the recording's token frames
    ``[start_frame, end_frame)`` (equal for an insert) are replaced by ``new_frames`` generated ones."""

    old_words: list[str]
    new_words: list[str]
    old_range: tuple[int, int]
    new_range: tuple[int, int]
    start_frame: int
    end_frame: int
    new_frames: int = 0

    @property
    def start_s(self) -> float:
        return self.start_frame / FRAME_RATE

    @property
    def end_s(self) -> float:
        return self.end_frame / FRAME_RATE

    @property
    def new_seconds(self) -> float:
        return self.new_frames / FRAME_RATE


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


def words_of(text: str) -> list[str]:
    """The words of a transcript as the aligner counts them (tokens with a letter or digit)."""
    return [w for w in text.split() if re.search(r"\w", w)]


def word_key(word: str) -> str:
    """What the word diff compares: case and punctuation do not make an edit."""
    return re.sub(r"[^\w']", "", word.lower())


def changed_ranges(old: list[str], new: list[str]) -> list[tuple[int, int, int, int]]:
    """``[(i1, i2, j1, j2)]``: ``old[i1:i2]`` becomes ``new[j1:j2]``, for each run of changed words."""
    matcher = difflib.SequenceMatcher(None, [word_key(w) for w in old], [word_key(w) for w in new], False)
    return [(i1, i2, j1, j2) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def word_times(words: list[str], alignment: Alignment) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` of each transcript word; a word the aligner skipped (no sounds) takes no time,
    at the end of the word before it."""
    times, aligned, last = [], iter(alignment.words), 0.0
    pending = next(aligned, None)
    for word in words:
        if pending is not None and pending.word == word:
            times.append((pending.start_s, pending.end_s))
            last, pending = pending.end_s, next(aligned, None)
        else:
            times.append((last, last))
    return times


def snap_edge(db: np.ndarray, seconds: float, left: bool, lo: int, hi: int) -> int:
    """The frame boundary in ``[lo, hi]`` within ``SNAP_FRAMES`` of ``seconds`` whose crossfade frame (the
    one before a left edge, after a right edge) is quietest; ``db`` is the 5 ms energy contour."""
    per_frame = round(1 / FRAME_RATE / HOP_S)
    centre = min(max(round(seconds * FRAME_RATE), lo), hi)

    def level(k: int) -> tuple[float, int]:
        first = (k - 1 if left else k) * per_frame
        return float(db[first : first + per_frame + 1].mean()), abs(k - centre)

    return min(range(max(lo, centre - SNAP_FRAMES), min(hi, centre + SNAP_FRAMES) + 1), key=level)


def plan_edits(
    old: list[str], new: list[str], alignment: Alignment, wav16: np.ndarray, frames: int
) -> list[EditSpan]:
    """The edited spans of a recording of ``frames`` whole token frames, left to right (lengths not set).

    A changed run of words spans from the start of its first word to the end of its last; an insert, the
    gap between its neighbours. Edges are snapped to quiet frame boundaries and kept one frame inside the
    recording, so each crossfade has original audio on both sides; close spans are merged.
    """
    times, db = word_times(old, alignment), energy(wav16, SEMANTIC_SAMPLE_RATE).db
    spans: list[EditSpan] = []
    for i1, i2, j1, j2 in changed_ranges(old, new):
        if i1 < i2:
            start, end = times[i1][0], times[i2 - 1][1]
        else:  # an insert: the gap between the words around it
            start = times[i1 - 1][1] if i1 > 0 else times[0][0]
            end = times[i1][0] if i1 < len(old) else times[-1][1]
        a = snap_edge(db, start, True, 1, frames - 1)
        b = max(a, snap_edge(db, end, False, 1, frames - 1))
        if spans and a - spans[-1].end_frame < MERGE_GAP_FRAMES:
            last = spans.pop()
            (i1, _), (j1, _), a, b = last.old_range, last.new_range, last.start_frame, max(b, last.end_frame)
        spans.append(EditSpan(old[i1:i2], new[j1:j2], (i1, i2), (j1, j2), a, b))
    return spans


def set_lengths(
    spans: list[EditSpan], duration: float | None, wav16: np.ndarray, old: list[str], frames: int, language
) -> None:
    """Each span's new length: ``duration`` seconds (one span only), else the official rule on its new
    phones at the recording's speaking rate (a delete generates nothing). The edited recording must fit the
    30 s the models were trained on."""
    if duration is not None and len(spans) > 1:
        raise InputError(f"a duration sets the length of one edited span; this edit has {len(spans)}")
    rate_phones = len(text_to_ids(" ".join(old), language))
    for span in spans:
        if duration is not None:
            span.new_frames = max(1, int(duration * FRAME_RATE))
        elif span.new_words:
            n_new = len(text_to_ids(" ".join(span.new_words), language))
            span.new_frames = max(1, int(rule_frames(len(wav16), rate_phones, n_new)))
    total = frames + sum(s.new_frames - (s.end_frame - s.start_frame) for s in spans)
    if total > MAX_SECONDS * FRAME_RATE:
        raise InputError(
            f"the edited recording would last {total / FRAME_RATE:.1f} s, more than the {MAX_SECONDS:g} s "
            "the model can generate: edit less, or give a shorter duration"
        )


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
    wav16, wav24, old, new, spans, alignment, frames = plan
    device = model.device
    # Silence after the audio makes the semantic tokens cover every whole frame (as maskgct.vc does).
    silence = np.zeros(round(TOKEN_PAD_SECONDS * SEMANTIC_SAMPLE_RATE), np.float32)
    semantic = model.tokenizer.tokenize(np.concatenate([wav16, silence]))[:frames].to(device)
    acoustic = model.codec.encode(torch.from_numpy(wav24[: frames * ACOUSTIC_HOP]).to(device)[None, None])[0]
    if len(semantic) != frames or len(acoustic) != frames:
        raise RuntimeError(
            f"{len(semantic)} semantic and {len(acoustic)} acoustic tokens for {frames} frames"
        )
    generator = None if seed is None else torch.Generator(device).manual_seed(int(seed))
    t2s_decoding, s2a_decoding = options.t2s(mode, generator), options.s2a(mode, generator)
    starts, offset = [], 0
    with model._precision(mode):
        for span in spans:
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
            words = new[: span.new_range[1]] + old[span.old_range[1] :]
            phones = torch.tensor([text_to_ids(" ".join(words), language)], device=device)
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
    audio = splice(model, wav24, acoustic, spans, starts)
    return EditResult(audio, SAMPLE_RATE, spans, alignment, semantic, acoustic)


def splice(model: MaskGCT, wav24: np.ndarray, codes: torch.Tensor, spans, starts) -> np.ndarray:
    """The original audio with each span replaced by the decoded codes ``(T', Q)`` of the edited recording
    (the span plus the frame either side, crossfaded with the original's over those frames)."""
    pieces, previous_end = [], 0
    for span, start in zip(spans, starts, strict=True):
        first, stop = start - 1, start + span.new_frames + 1  # the edited frames and one each side
        lo, hi = max(0, first - DECODE_CONTEXT_FRAMES), min(len(codes), stop + DECODE_CONTEXT_FRAMES)
        decoded = model.codec.decode(codes[None, lo:hi])[0, 0].float().cpu().numpy()
        pieces.append(wav24[previous_end * ACOUSTIC_HOP : span.start_frame * ACOUSTIC_HOP])
        pieces.append(decoded[(first - lo) * ACOUSTIC_HOP : (stop - lo) * ACOUSTIC_HOP])
        previous_end = span.end_frame
    pieces.append(wav24[previous_end * ACOUSTIC_HOP :])
    return crossfade_splice(pieces, ACOUSTIC_HOP)


def prepare_edit(audio, text: str, new_text: str, sample_rate: int | None, duration, language: str):
    """Everything before the networks (the command line runs it before loading the model): the audio,
    the word diff, the alignment and the plan. Raises ``InputError`` / ``AudioError`` for bad input."""
    for name, value in (("transcript", text), ("new text", new_text)):
        if value is None or not value.strip():
            raise InputError(f"the {name} is empty")
    phones_of(text, None, language, "transcript")
    phones_of(new_text, None, language, "new")
    old, new = words_of(text), words_of(new_text)
    if not old or not new:
        raise InputError(f"the {'transcript' if not old else 'new text'} has no words")
    if not changed_ranges(old, new):
        raise InputError("nothing to edit: the new text has the same words as the transcript")
    if duration is not None and not (isinstance(duration, (int, float)) and 0 < duration < math.inf):
        raise InputError(f"duration must be a positive number of seconds, not {duration!r}")
    wav16, wav24 = load_clip(audio, sample_rate, "audio", MIN_AUDIO_SECONDS, MAX_SECONDS)
    try:
        alignment = align_words(wav16, SEMANTIC_SAMPLE_RATE, " ".join(old), language)
    except AlignmentError as err:
        raise InputError(f"cannot align the transcript to the audio: {err}") from None
    if alignment.score < MATCH_THRESHOLD:
        raise InputError(
            f"the transcript does not match the audio (alignment score {alignment.score:.2f} per phone, "
            f"below {MATCH_THRESHOLD:g}): give what the recording says"
        )
    frames = len(wav24) // ACOUSTIC_HOP
    spans = plan_edits(old, new, alignment, wav16, frames)
    set_lengths(spans, duration, wav16, old, frames, language)
    return wav16, wav24, old, new, spans, alignment, frames


if __name__ == "__main__":
    import sys

    from maskgct.edit_cli import main

    sys.exit(main())
