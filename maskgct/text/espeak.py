"""espeak-ng through phonemizer, with the official MaskGCT settings.

The library and its data come from the `espeakng-loader` wheel (espeak-ng 1.52), not from the system:
phones depend on the espeak-ng version, and the reference ids were made with this one. One backend per
voice is built lazily and kept; whole batches go through one `phonemize` call because the per-call
overhead of phonemizer is much larger than espeak's own work.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

from maskgct.text.inventory import PUNCTUATION

# The official separators: phones by "|", words by "|_|" (so "_" becomes a phone of its own).
_PUNCTUATION_PIECE = re.compile("([" + re.escape(PUNCTUATION) + "])")
_REPEATED_BARS = re.compile(r"\|+")


@cache
def _backend(voice: str):
    import espeakng_loader
    from phonemizer.backend import EspeakBackend
    from phonemizer.backend.espeak.wrapper import EspeakWrapper

    EspeakWrapper.set_library(espeakng_loader.get_library_path())
    EspeakWrapper.set_data_path(espeakng_loader.get_data_path())
    return EspeakBackend(
        voice,
        punctuation_marks=PUNCTUATION,
        preserve_punctuation=True,
        with_stress=False,
        tie=False,
        language_switch="remove-flags",
        words_mismatch="ignore",
    )


@lru_cache(maxsize=1)
def _separator():
    from phonemizer.separator import Separator

    return Separator(word="|_|", syllable="-", phone="|")


def espeak_version() -> str:
    return ".".join(str(part) for part in _backend("en-us").version())


def phonemize(lines: list[str], voice: str) -> list[str]:
    """Phonemize cleaned single-line texts; returns one phonemizer string per line (not yet split)."""
    # phonemizer leaves empty lines out of its output, so only non-empty ones are sent.
    filled = [i for i, line in enumerate(lines) if line.strip()]
    out = [""] * len(lines)
    if filled:
        phonemized = _backend(voice).phonemize(
            [lines[i] for i in filled], separator=_separator(), strip=True, njobs=1
        )
        for i, phones in zip(filled, phonemized, strict=True):
            out[i] = phones
    return out


def split_punctuation(phones: str) -> str:
    """Each punctuation mark becomes its own piece, runs of "|" collapse and a trailing "|" is dropped,
    exactly as the reference post-processes phonemizer's output."""
    phones = _PUNCTUATION_PIECE.sub(r"|\1|", phones)
    return _REPEATED_BARS.sub("|", phones).rstrip("|")
