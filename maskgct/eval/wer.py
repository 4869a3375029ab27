"""Word and character error rates: text normalisation, then a jiwer (rapidfuzz) alignment.

Two normalisations, chosen by name (``NORMALISERS``):

``"maskgct"`` (the default, the figures this toolkit has always reported)
    every Unicode punctuation or symbol character except the apostrophe is deleted, typographic
    apostrophes (U+2019) become ASCII ones first (``don’t`` in a script matches whisper's ``don't``),
    English is lower-cased.
``"seed-tts"`` (seed-tts-eval's ``run_wer.py``, for figures comparable with the papers)
    only the characters of Python's ``string.punctuation`` and zhon's ``hanzi.punctuation`` are deleted,
    the apostrophe kept: ``don’t`` becomes ``dont``, symbols outside those sets (``€``, ``°``) stay.
    English is lower-cased. Its ASR step also turns Paraformer's traditional characters into simplified
    ones (zhconv) before scoring: that belongs to the recogniser, not to this text normalisation.

In both, zh/ja/yue are scored per character (CER) and other languages per whitespace-separated word.
"""

from __future__ import annotations

import string
import unicodedata
from dataclasses import dataclass

CHARACTER_LANGUAGES = ("zh", "ja", "yue")  # written without spaces: scored per character, as seed-tts-eval
NORMALISERS = ("maskgct", "seed-tts")
DEFAULT_NORMALISER = "maskgct"


def _seed_tts_punctuation() -> frozenset[str]:
    try:
        from zhon.hanzi import punctuation
    except ImportError as error:
        raise ValueError("the seed-tts normalisation needs zhon: pip install 'maskgct[eval]'") from error
    return frozenset(string.punctuation + punctuation) - {"'"}


def normalize_text(text: str, language: str = "en", normaliser: str = DEFAULT_NORMALISER) -> list[str]:
    """The tokens to align: words, or characters for zh/ja/yue, after ``normaliser`` (see the module)."""
    if normaliser == "maskgct":
        text = text.replace("\u2019", "'")
        text = "".join(ch for ch in text if ch == "'" or unicodedata.category(ch)[0] not in "PS")
    elif normaliser == "seed-tts":
        deleted = _seed_tts_punctuation()
        text = "".join(ch for ch in text if ch not in deleted)
    else:
        raise ValueError(f"unknown normalisation {normaliser!r}; choose from {', '.join(NORMALISERS)}")
    if language in CHARACTER_LANGUAGES:
        # seed-tts-eval lower-cases English only, so Latin letters inside Chinese text keep their case.
        return [ch for ch in text if not ch.isspace()]
    return text.lower().split()


@dataclass(frozen=True)
class ErrorCounts:
    """A hypothesis aligned with a reference: substitutions, deletions, insertions, reference length."""

    substitutions: int
    deletions: int
    insertions: int
    reference_length: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        return self.errors / self.reference_length


def error_counts(
    hypothesis: str | list[str],
    reference: str | list[str],
    language: str = "en",
    normaliser: str = DEFAULT_NORMALISER,
) -> ErrorCounts:
    """Minimum-edit alignment of the hypothesis against the reference (jiwer, O(n·m) in C++).

    Texts are normalised first (see :func:`normalize_text`); token lists are aligned as they are (tokens
    must not contain whitespace: jiwer reads words from a space-joined string).
    """
    import jiwer

    if isinstance(reference, str):
        reference = normalize_text(reference, language, normaliser)
    if isinstance(hypothesis, str):
        hypothesis = normalize_text(hypothesis, language, normaliser)
    if not reference:
        raise ValueError("the reference has no words after normalisation")
    # jiwer's default transform splits on whitespace and drops empty strings, which the tokens already are.
    out = jiwer.process_words(" ".join(reference), " ".join(hypothesis))
    return ErrorCounts(out.substitutions, out.deletions, out.insertions, len(reference))
