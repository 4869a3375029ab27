"""Short-time energy: where the silences are, and the quietest point near a time (to cut or splice at).

CTC places each phone at a narrow spike somewhere inside it, so it says WHICH gap lies between two words
but not where in the gap the words stop and start; the energy contour does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOP_S = 0.005  # 5 ms resolution
WINDOW_S = 0.020
# A frame is silent when it is this far below the loud (95th percentile) frames of the recording, or, in
# noisy audio, no more than NOISE_MARGIN_DB above the noise floor (5th percentile).
SILENCE_BELOW_SPEECH_DB = 40.0
NOISE_MARGIN_DB = 6.0
FLOOR_DB = -100.0


@dataclass
class Energy:
    """``db`` ``(F,)``: the level of each 5 ms frame (centred at ``i * HOP_S``); ``silent`` ``(F,)``."""

    db: np.ndarray
    silent: np.ndarray

    def frame(self, seconds: float) -> int:
        return int(np.clip(round(seconds / HOP_S), 0, len(self.db) - 1))

    def quietest_near(self, seconds: float, radius_s: float) -> float:
        """The time within ``seconds ± radius_s`` where the level is lowest; of points within 1 dB of that
        level (e.g. a stretch of digital silence) the one nearest ``seconds``."""
        centre, radius = self.frame(seconds), round(radius_s / HOP_S)
        lo, hi = max(0, centre - radius), min(len(self.db), centre + radius + 1)
        window = self.db[lo:hi]
        quiet = lo + np.flatnonzero(window <= window.min() + 1.0)
        return float(quiet[np.argmin(np.abs(quiet - centre))] * HOP_S)


def energy(wav: np.ndarray, sample_rate: int) -> Energy:
    """The energy contour of ``wav`` ``(L,)``."""
    hop = max(1, round(HOP_S * sample_rate))
    window = max(hop, round(WINDOW_S * sample_rate))
    padded = np.pad(np.asarray(wav, dtype=np.float64), window // 2)
    squares = np.concatenate(([0.0], np.cumsum(padded**2)))
    starts = np.arange(0, len(wav) + 1, hop)
    power = (squares[starts + window] - squares[starts]) / window
    db = np.maximum(10 * np.log10(power + 1e-12), FLOOR_DB)
    floor, loud = np.percentile(db, [5, 95])
    threshold = max(floor + NOISE_MARGIN_DB, loud - SILENCE_BELOW_SPEECH_DB)
    return Energy(db=db, silent=db < threshold)


def silent_runs(silent: np.ndarray, lo: int, hi: int) -> list[tuple[int, int]]:
    """The silent runs ``[a, b)`` of frames within ``[lo, hi)``."""
    runs, start = [], None
    for i in range(lo, hi):
        if silent[i] and start is None:
            start = i
        elif not silent[i] and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, hi))
    return runs


def snap_to_low_energy(wav: np.ndarray, sample_rate: int, seconds: float, radius_ms: float = 40.0) -> float:
    """The time (s) within ``seconds ± radius_ms`` where ``wav`` ``(L,)`` is quietest, to place an edit's
    edge on (see :meth:`Energy.quietest_near`)."""
    snapped = energy(wav, sample_rate).quietest_near(seconds, radius_ms / 1000)
    return min(snapped, len(wav) / sample_rate)
