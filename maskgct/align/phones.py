"""Phone-level forced alignment of an utterance's G2P phones, for guided attention in T2S training.

``align_words`` (speech editing) needs word spans; T2S training needs, for each phone of a dump's
``phone_ids``, WHERE in the 50 Hz semantic frames it is said (``maskgct.train.guided_attention`` then
guides attention towards the phone each frame says instead of towards the diagonal). The same `hama`
CTC model and Viterbi pass as ``align_words`` place each sounding phone at the mean of the frames its
symbols' spikes occupy; a silent phone (word boundary, punctuation) sits midway between its sounding
neighbours, so a pause maps to the boundary or the comma that stands for it. hama's frames are 20 ms,
the semantic tokens' rate.
"""

from __future__ import annotations

import numpy as np

from maskgct.align import SAMPLE_RATE, AlignmentError, _log_probs, _model
from maskgct.align.symbols import SILENT, phone_symbol_sets
from maskgct.align.viterbi import NoPathError, forced_align
from maskgct.audio import to_mono


def phone_centres(
    log_probs: np.ndarray, phones: list[str], blank: int, word_gap: tuple[int, ...], vocabulary: list[str]
) -> np.ndarray:
    """``log_probs (T, V)`` and the utterance's phones → ``(P,)`` float frame of each phone's centre,
    non-decreasing. Raises :class:`AlignmentError` when no phone has a sound or the audio is too short."""
    units, owner = [], []
    for index, phone in enumerate(phones):
        try:
            sets = phone_symbol_sets([phone], vocabulary)
        except KeyError as err:  # a phone of another language
            raise AlignmentError(str(err)) from None
        units += sets
        owner += [index] * len(sets)
    if not units:
        raise AlignmentError("no phone has a sound")
    # Where a silent phone follows, the blank may also be the model's word-boundary symbol.
    blanks = [word_gap]
    for k in range(len(units)):
        boundary = k + 1 == len(units) or any(p in SILENT for p in phones[owner[k] + 1 : owner[k + 1]])
        blanks.append(word_gap if boundary else (blank,))
    try:
        path = forced_align(log_probs, units, blanks)
    except NoPathError as err:
        raise AlignmentError(f"the audio is too short for the phones ({err})") from None
    owner = np.array(owner)
    centres = np.full(len(phones), np.nan)
    for index in np.unique(owner):
        frames = np.concatenate([path.token_frames(k) for k in np.flatnonzero(owner == index)])
        centres[index] = frames.mean()
    # Silent phones: midway between the sounding phones around them (or at the utterance's edge).
    sounding = np.flatnonzero(~np.isnan(centres))
    for index in np.flatnonzero(np.isnan(centres)):
        before, after = sounding[sounding < index], sounding[sounding > index]
        left = centres[before[-1]] if before.size else 0.0
        right = centres[after[0]] if after.size else float(len(log_probs) - 1)
        centres[index] = (left + right) / 2
    return np.maximum.accumulate(centres)


def align_phones(wav: np.ndarray, sample_rate: int, phones: list[str]) -> np.ndarray:
    """``wav (L,)`` at ``sample_rate`` and its G2P phones (``maskgct.text.ids_to_symbols`` of a dump's
    ``phone_ids``) → ``(P,)`` int: the 50 Hz frame at each phone's centre. English phones only."""
    model = _model()
    log_probs = _log_probs(to_mono(wav, sample_rate, SAMPLE_RATE))
    word_gap = (model.blank_id, model.decoder_tokens.index("<wb>"))
    centres = phone_centres(log_probs, phones, model.blank_id, word_gap, model.decoder_tokens)
    return np.rint(centres).astype(np.int64)
