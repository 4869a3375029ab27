"""Word-level forced alignment of a GIVEN transcript to a recording (for speech editing).

The transcript goes through our own G2P (maskgct.text), each phone becomes a set of symbols of the `hama`
phoneme CTC model (4.7 MB, 50 Hz, Apache-2.0, its own numpy/Zig engine, bundled weights: fully offline),
and a Viterbi pass finds the best path of the model's frames through exactly those phones (`viterbi`).
The path tells which frames belong to which word; the energy contour then puts each boundary inside the
gap between two words' phones (`energy`). English only: hama's symbols cover English (and Korean), not
Mandarin's tones.

Measured by bench/align.py (60 + 60 utterances, 10 voices each; figures move by a few ms between runs, as
espeak's output does): word start/end error median 3 ms, p90 13 ms on words spliced with known gaps
(5 / 55 ms where words touch); word onset error median 15 ms, p90 67-72 ms in connected espeak speech.
pocketsphinx: 10 / 37 ms there but no alignment for 55% of those utterances (33% of spliced ones);
whisper tiny.en cross-attention: 99 / 185 ms.

``align_words(wav, sr, "the transcript").words`` → ``[Word("the", 0.12, 0.25), ...]``. ``score`` is the
mean log-probability the transcript's phones lose against the model's own best guess, per phone (0 is a
perfect fit); a transcript that does not match the audio scores far lower (``MATCH_THRESHOLD``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from maskgct.align.energy import HOP_S, energy, silent_runs, snap_to_low_energy
from maskgct.align.symbols import phone_symbol_sets
from maskgct.align.viterbi import NoPathError, forced_align
from maskgct.audio import to_mono

__all__ = ["Alignment", "AlignmentError", "Word", "align_words", "snap_to_low_energy", "MATCH_THRESHOLD"]

SAMPLE_RATE = 16000
FRAME_S = 0.02  # hama: 160-sample STFT hop, subsampled by 2
# CTC puts each phone's spike inside the phone, not at its edges. Where two words run together, the
# boundary lies nearer the last spike of the first word than the first spike of the second (chosen on
# spliced words that touch and on connected espeak speech, bench/align.py), refined to the quietest point
# nearby. (Counting only silences over 60 ms as pauses, so that stop closures are not, moved connected
# speech's 90th percentile from 62 to 52 ms but spliced words' from 10 to 35 ms: not done.)
GAP_FRACTION = 0.4
SNAP_RADIUS_S = 0.04
# Per-phone score below which the transcript is taken not to match the audio. bench/align.py: matched
# transcripts -1.5..0 (real 8 kHz recordings down to -1.6), another sentence -8.6..-1.9 (99% below), one
# word replaced -2.5..-0.2 (8% below; the replaced word's own score is below -3 in 87% of cases, but
# so is the worst word of 28% of matched transcripts).
MATCH_THRESHOLD = -2.0
LANGUAGES = ("en",)


class AlignmentError(ValueError):
    """The transcript cannot be aligned: no words, an unsupported language, or audio too short for it."""


@dataclass
class Word:
    """One transcript word, its position in ``transcript.split()`` (words without sounds, such as a lone
    "-", are left out) and its time span in seconds; ``score`` as :attr:`Alignment.score`, per word."""

    index: int
    word: str
    start_s: float
    end_s: float
    score: float


@dataclass
class Alignment:
    words: list[Word]
    score: float

    @property
    def min_word_score(self) -> float:
        return min(w.score for w in self.words)


@lru_cache(maxsize=1)
def _model():
    try:
        from hama.asr import ASRModel
    except ImportError:
        raise AlignmentError("the aligner needs the package 'hama' (pip install hama==1.7.0)") from None
    return ASRModel()


def _log_probs(wav16: np.ndarray) -> np.ndarray:
    """``(L,)`` 16 kHz audio → ``(T, V)`` log-softmax over hama's symbols, T = L / 320."""
    model = _model()
    feeds = {"waveform": wav16[None].astype(np.float32), "waveform_lengths": np.array([len(wav16)], np.int64)}
    logits, lengths = model.session.run(["log_probs", "out_lengths"], feeds)
    logits = np.asarray(logits[0, : int(np.asarray(lengths).reshape(-1)[0])], dtype=np.float64)
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def _words(transcript: str, language: str) -> list[tuple[int, str, list[tuple[int, ...]]]]:
    """``(index in transcript.split(), word, symbol sets of its phones)`` for each word that has sounds."""
    from maskgct.text import texts_to_phones

    if language not in LANGUAGES:
        raise AlignmentError(f"the aligner supports {', '.join(LANGUAGES)}, not {language!r}")
    words = [(i, w) for i, w in enumerate(transcript.split()) if re.search(r"\w", w)]
    phones = texts_to_phones([w for _, w in words], language) if words else []
    vocabulary = _model().decoder_tokens
    units = [phone_symbol_sets(p, vocabulary) for p in phones]
    kept = [(i, w, u) for (i, w), u in zip(words, units, strict=True) if u]
    if not kept:
        raise AlignmentError("the transcript has no words")
    return kept


def _boundaries(wav16: np.ndarray, spans: list[tuple[int, int]]) -> list[tuple[float, float]]:
    """Per word the CTC frames ``(first, last)`` of its phones → ``(start_s, end_s)``.

    Between two words: a silence (the longest silent run in the gap between their phones) ends one and
    starts the other; words that run together meet at the quietest point near ``GAP_FRACTION`` of the way
    across the gap. The first word starts after the silence before it, the
    last ends at the silence after it.
    """
    contour = energy(wav16, SAMPLE_RATE)
    starts = [contour.frame(first * FRAME_S) for first, _ in spans]
    ends = [contour.frame((last + 1) * FRAME_S) for _, last in spans]
    times = [[s * HOP_S, e * HOP_S] for s, e in zip(starts, ends, strict=True)]
    runs = silent_runs(contour.silent, 0, starts[0])
    times[0][0] = runs[-1][1] * HOP_S if runs else 0.0
    for i in range(len(spans) - 1):
        lo, hi = ends[i], max(ends[i], starts[i + 1])
        pauses = silent_runs(contour.silent, lo, hi)
        if pauses:
            pause = max(pauses, key=lambda r: r[1] - r[0])
            times[i][1], times[i + 1][0] = pause[0] * HOP_S, pause[1] * HOP_S
        else:
            meet = contour.quietest_near((lo + GAP_FRACTION * (hi - lo)) * HOP_S, SNAP_RADIUS_S)
            times[i][1] = times[i + 1][0] = meet
    runs = silent_runs(contour.silent, ends[-1], len(contour.silent))
    times[-1][1] = (runs[0][0] if runs else len(contour.silent) - 1) * HOP_S
    return [(s, e) for s, e in times]


def align_words(wav: np.ndarray, sample_rate: int, transcript: str, language: str = "en") -> Alignment:
    """Align ``transcript`` to ``wav`` ``(L,)`` (or ``(C, L)``) at ``sample_rate`` → per-word spans.

    Raises :class:`AlignmentError` when there is nothing to align or the audio is too short for the
    transcript; a transcript that merely does not match scores low (compare with ``MATCH_THRESHOLD``).
    """
    kept = _words(transcript, language)
    units = [u for _, _, u in kept]
    wav16 = to_mono(wav, sample_rate, SAMPLE_RATE)
    log_probs = _log_probs(wav16)
    blank = _model().blank_id
    word_gap = (blank, _model().decoder_tokens.index("<wb>"))
    tokens, blanks, owner = [], [word_gap], []
    for w, word_units in enumerate(units):
        tokens += word_units
        owner += [w] * len(word_units)
        blanks += [(blank,)] * (len(word_units) - 1) + [word_gap]
    try:
        path = forced_align(log_probs, tokens, blanks)
    except NoPathError as err:
        raise AlignmentError(f"the audio is too short for the transcript ({err})") from None
    loss = path.best_logp - path.frame_logp  # (T,) what following the transcript costs at each frame
    owner = np.array(owner)
    spans, scores = [], []
    for w in range(len(kept)):
        ids = np.flatnonzero(owner == w)
        first, last = path.token_frames(ids[0])[0], path.token_frames(ids[-1])[-1]
        spans.append((int(first), int(last)))
        scores.append(-float(loss[first : last + 1].sum()) / len(ids))
    times = _boundaries(wav16, spans)
    return Alignment(
        words=[Word(i, w, *span, sc) for (i, w, _), span, sc in zip(kept, times, scores, strict=True)],
        score=-float(loss.sum()) / len(tokens),
    )
