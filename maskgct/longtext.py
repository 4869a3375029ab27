"""Long text: a target length for each piece of the text, pieces that fit the model, and the audio joined.

The models were trained on prompt + target of at most 30 s. When the estimated target plus the prompt is
longer, the phone ids are split at sentence ends (then clause marks, then word boundaries) into chunks
that fit; each chunk is generated with the same prompt and the chunks are joined with 50 ms equal-power
crossfades.

The target length of a chunk comes from ``duration``: "rule" (the official phone-ratio rule,
``maskgct.constants.rule_frames``), or seconds shared out over the chunks; ``speed`` divides it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from maskgct.constants import FRAME_RATE, MAX_CHUNKS, MAX_OUTPUT_SECONDS, MAX_SECONDS, rule_frames
from maskgct.request import InputError

if TYPE_CHECKING:
    from maskgct.api import Prompt

CROSSFADE_SECONDS = 0.05

# Phone ids (official vocabulary) where long inputs may be split, in order of preference.
SENTENCE_END_IDS = frozenset({1, 2, 3, 362})  # . ? ! …
CLAUSE_END_IDS = frozenset({0, 359, 360})  # , : ;
WORD_BOUNDARY_ID = 4  # _


def plan_chunks(
    target_ids: list[int], prompt: Prompt, duration: str | float | None, speed: float
) -> list[tuple[list[int], int]]:
    """``[(chunk_ids, target_frames)]``: the target phones in pieces that each fit, with the prompt, in
    the 30 s the models were trained on (one piece when the whole target fits). A plan longer than
    ``MAX_OUTPUT_SECONDS`` or of more than ``MAX_CHUNKS`` pieces is refused before any is generated."""
    budget = int(MAX_SECONDS * FRAME_RATE) - len(prompt.semantic)
    pieces = split_ids(target_ids, chunk_frames(target_ids, prompt, duration, speed), budget)
    seconds = sum(frames for _, frames in pieces) / FRAME_RATE
    if seconds > MAX_OUTPUT_SECONDS:
        raise InputError(
            f"the speech would last {seconds:.0f} s; at most {MAX_OUTPUT_SECONDS:g} s per request: "
            "split the text or ask for less"
        )
    if len(pieces) > MAX_CHUNKS:
        raise InputError(
            f"the text needs {len(pieces)} chunks after a {prompt.seconds:.1f} s prompt; at most "
            f"{MAX_CHUNKS} per request: use a shorter prompt or split the text"
        )
    return pieces


def target_frames(n_target: int, prompt: Prompt, duration: str | float | None, speed: float) -> int:
    """Target semantic frames T for ``n_target`` phones.

    "rule" is the official rule (then divided by ``speed``, exact at 1.0); seconds give
    ``int(s * 50 / speed)``.
    """
    if duration is None or duration == "rule":
        frames = rule_frames(prompt.num_samples, len(prompt.phone_ids), n_target)
    elif duration == "auto":
        raise InputError("no duration model in this checkpoint: use duration='rule' or a number of seconds")
    elif isinstance(duration, str):
        raise InputError(f"duration must be 'rule', 'auto' or seconds, not {duration!r}")
    else:
        if not duration > 0 or not math.isfinite(duration):
            raise InputError(f"duration must be a positive number of seconds, not {duration!r}")
        frames = duration * FRAME_RATE
    return int(frames / speed)


def chunk_frames(target_ids: list[int], prompt: Prompt, duration, speed: float) -> Callable[[int], int]:
    """``frames(n_phones)``: the target length of a chunk of ``n_phones`` of ``target_ids``.

    With the rule the length is the rule itself; with seconds the whole duration is shared out in
    proportion to phone counts (a single chunk gets exactly ``int(s * 50 / speed)``).
    """
    if not (isinstance(speed, (int, float)) and speed > 0 and math.isfinite(speed)):
        raise InputError(f"speed must be a positive number, not {speed!r}")
    total = target_frames(len(target_ids), prompt, duration, speed)
    minimum = max(1, len(prompt.acoustic) - len(prompt.semantic) + 1)
    if duration is None or isinstance(duration, str):
        return lambda n: max(minimum, target_frames(n, prompt, duration, speed))
    return lambda n: max(minimum, total if n == len(target_ids) else int(total * n / len(target_ids)))


def split_ids(ids: list[int], frames: Callable[[int], int], budget: int) -> list[tuple[list[int], int]]:
    """Split phone ids into ``[(chunk_ids, target_frames)]`` whose frames fit ``budget``.

    The budget is what the prompt leaves of the 30 s. Whole input first; otherwise sentences are packed
    greedily, a sentence too long alone is split at clause marks, and a clause at word boundaries.
    """
    if frames(len(ids)) <= budget:
        return [(ids, frames(len(ids)))]
    if budget < FRAME_RATE:
        raise InputError(
            f"the prompt leaves only {max(budget, 0) / FRAME_RATE:.1f} s of the {MAX_SECONDS:g} s the model "
            "can generate: use a shorter prompt"
        )
    chunks: list[list[int]] = []
    for sentence in split_after(ids, SENTENCE_END_IDS):
        for piece in fit(sentence, frames, budget):
            if chunks and frames(len(chunks[-1]) + len(piece)) <= budget:
                chunks[-1] = chunks[-1] + piece
            else:
                chunks.append(piece)
    planned = [(chunk, frames(len(chunk))) for chunk in chunks]
    longest = max(n for _, n in planned)
    if longest > budget:  # a single word asked to last longer than the model can generate
        raise InputError(
            f"a piece of the text that cannot be split would last {longest / FRAME_RATE:.1f} s, more than "
            f"the {budget / FRAME_RATE:.1f} s the prompt leaves of {MAX_SECONDS:g} s: ask for less"
        )
    return planned


def fit(ids: list[int], frames: Callable[[int], int], budget: int) -> list[list[int]]:
    """Pieces of one sentence that each fit the budget (clauses, then runs of words; a single word that is
    still too long is kept whole)."""
    if frames(len(ids)) <= budget:
        return [ids]
    pieces: list[list[int]] = []
    for clause in split_after(ids, CLAUSE_END_IDS):
        if frames(len(clause)) <= budget:
            pieces.append(clause)
            continue
        for word in split_after(clause, frozenset({WORD_BOUNDARY_ID})):
            if pieces and frames(len(pieces[-1]) + len(word)) <= budget:
                pieces[-1] = pieces[-1] + word
            else:
                pieces.append(word)
    return pieces


def split_after(ids: list[int], marks: frozenset[int]) -> list[list[int]]:
    """Split after every id in ``marks`` (the mark stays with the piece before it); no empty pieces."""
    pieces, current = [], []
    for i in ids:
        current.append(i)
        if i in marks:
            pieces.append(current)
            current = []
    if current:
        pieces.append(current)
    return pieces


def crossfade_join(pieces: list[np.ndarray], overlap: int) -> np.ndarray:
    """Join audio pieces with equal-power crossfades of ``overlap`` samples (shorter if a piece is)."""
    out = pieces[0]
    for piece in pieces[1:]:
        n = min(overlap, len(out), len(piece))
        if n == 0:
            out = np.concatenate([out, piece])
            continue
        ramp = (np.arange(n, dtype=np.float64) + 0.5) / n * (np.pi / 2)
        mixed = out[-n:] * np.cos(ramp) + piece[:n] * np.sin(ramp)
        out = np.concatenate([out[:-n], mixed.astype(np.float32), piece[n:]])
    return out.astype(np.float32, copy=False)
