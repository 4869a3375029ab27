"""CTC forced alignment: the single best path of a CTC model's frames through a KNOWN token sequence.

The classic CTC topology: blank, token 1, blank, token 2, ..., token N, blank. A path may stay in a state,
move to the next one, or jump over a blank between two tokens that cannot be confused (the blank is only
required between two tokens that could be the same symbol, as CTC collapses repeats). Each token here is a
*set* of acceptable model symbols (an English phone may be heard as one of a few close IPA symbols), scored
by the best of them, and each blank state has its own set too (between words it also accepts the model's
word-boundary symbol).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class NoPathError(ValueError):
    """The audio has fewer frames than the token sequence needs."""


@dataclass
class ForcedPath:
    """The best path: ``states`` ``(T,)`` the state index of each frame (token k is state ``2k + 1``),
    ``frame_logp`` ``(T,)`` its log-probability at each frame, ``best_logp`` ``(T,)`` the best any symbol
    scores at each frame (the unconstrained upper bound, for scoring how well the transcript fits)."""

    states: np.ndarray
    frame_logp: np.ndarray
    best_logp: np.ndarray

    def token_frames(self, token: int) -> np.ndarray:
        """The frames the path spends on ``token`` (never empty: every token is visited)."""
        return np.flatnonzero(self.states == 2 * token + 1)


def _set_scores(log_probs: np.ndarray, sets: list[tuple[int, ...]]) -> np.ndarray:
    """``(T, V)`` log-probabilities → ``(T, len(sets))``, each column the best symbol of its set."""
    unique = sorted(set(sets))
    column = {s: i for i, s in enumerate(unique)}
    best = np.stack([log_probs[:, list(s)].max(axis=1) for s in unique], axis=1)
    return best[:, [column[s] for s in sets]]


def forced_align(
    log_probs: np.ndarray, tokens: list[tuple[int, ...]], blanks: list[tuple[int, ...]]
) -> ForcedPath:
    """Align ``log_probs`` ``(T, V)`` (log-softmax over V symbols) to ``tokens`` (N sets of symbol ids).

    ``blanks`` holds N + 1 symbol sets, the blank state before each token and the one after the last.
    Raises :class:`NoPathError` when T < N plus the blanks needed between repeated symbols.
    """
    n = len(tokens)
    if len(blanks) != n + 1:
        raise ValueError(f"expected {n + 1} blank sets for {n} tokens, got {len(blanks)}")
    sets = [blanks[0]]
    for token, blank in zip(tokens, blanks[1:], strict=True):
        sets += [token, blank]
    emit = _set_scores(log_probs, sets)  # (T, S)
    frames, states = emit.shape
    # A token may be entered straight from the previous token (skipping their blank) unless the two could
    # be the same symbol, in which case CTC needs a blank to tell a repeat from a longer single phone.
    skip = np.zeros(states, dtype=bool)
    for k in range(1, n):
        skip[2 * k + 1] = not set(tokens[k]) & set(tokens[k - 1])

    score = np.full(states, -np.inf)
    score[:2] = emit[0, :2]
    back = np.zeros((frames, states), dtype=np.int8)  # how many states the path moved at each frame
    for t in range(1, frames):
        stay = score
        step = np.concatenate(([-np.inf], score[:-1]))
        jump = np.where(skip, np.concatenate(([-np.inf, -np.inf], score[:-2])), -np.inf)
        moves = np.stack([stay, step, jump])
        back[t] = moves.argmax(axis=0)
        score = moves.max(axis=0) + emit[t]

    # The path ends in the last token or the blank after it.
    end = states - 1 if score[-1] >= score[-2] else states - 2
    if not np.isfinite(score[end]):
        raise NoPathError(f"{frames} frames cannot hold {n} phones")
    path = np.empty(frames, dtype=np.int64)
    path[-1] = end
    for t in range(frames - 1, 0, -1):
        path[t - 1] = path[t] - back[t, path[t]]
    return ForcedPath(
        states=path,
        frame_logp=emit[np.arange(frames), path],
        best_logp=log_probs.max(axis=1),
    )
