"""The plan of a speech edit: which words change, where they are in the recording, how long the new ones last.

    transcript vs new text ─ word diff (case and punctuation ignored) ─▶ runs of changed words
    recording + transcript ─ aligner (maskgct.align) ─▶ word times ─▶ token frames [a, b) per run,
    edges on the quietest 20 ms frame boundary nearby; runs with little audio between them merged
    new length ─ the official duration rule on the run's new phones at the recording's pace, or seconds

Everything here runs before any network (``python -m maskgct.edit`` checks a request with it before
loading the model); ``maskgct.edit`` carries the plan out.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

import numpy as np

from maskgct.align import MATCH_THRESHOLD, Alignment, AlignmentError, align_words
from maskgct.align.energy import HOP_S, energy
from maskgct.constants import ACOUSTIC_HOP, FRAME_RATE, MAX_SECONDS, SEMANTIC_SAMPLE_RATE, rule_frames
from maskgct.request import InputError
from maskgct.text import text_to_ids
from maskgct.vc import load_clip

# Edits with less untouched audio than this between them are one span: so little context is not worth
# keeping, and it keeps the crossfades of neighbouring spans apart.
MERGE_GAP_FRAMES = FRAME_RATE // 2
# A span edge moves to the quietest frame boundary within this many frames (the aligner's ~40 ms error).
SNAP_FRAMES = 2
# Shorter than this holds no word worth editing (and too few frames for a span between two crossfades).
MIN_AUDIO_SECONDS = 0.5


@dataclass
class EditSpan:
    """One edited stretch: the transcript's words ``old[old_range]`` become the new text's
    ``new[new_range]`` (either may be empty: an insert, a delete); the recording's token frames
    ``[start_frame, end_frame)`` (for an insert the pause between its neighbours, often empty) are
    replaced by ``new_frames`` generated ones."""

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
class EditPlan:
    """A checked edit request: the recording mono float32 at 16 kHz and 24 kHz, the two transcripts' words,
    the spans (lengths set), the transcript's alignment, and the recording's whole 20 ms frames."""

    wav16: np.ndarray
    wav24: np.ndarray
    old: list[str]
    new: list[str]
    spans: list[EditSpan]
    alignment: Alignment
    frames: int


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


def prepare_edit(
    audio, text: str, new_text: str, sample_rate: int | None, duration, language: str
) -> EditPlan:
    """Everything before the networks (the command line runs it before loading the model): the audio,
    the word diff, the alignment and the plan. Raises ``InputError`` / ``AudioError`` for bad input."""
    for name, value in (("transcript", text), ("new text", new_text)):
        if value is None or not value.strip():
            raise InputError(f"the {name} is empty")
        try:
            text_to_ids(value, language)
        except ValueError as err:
            raise InputError(f"{name}: {err}") from None
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
    return EditPlan(wav16, wav24, old, new, spans, alignment, frames)
