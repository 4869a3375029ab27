"""English G2P: normalise, espeak-ng en-us, then the official merges and word-boundary rule.

Output pieces are vocabulary symbols ("_" is the word boundary). The steps and their order follow the
official frontend, so that the ids are identical to the reference (see tests/test_text_english.py).
"""

from __future__ import annotations

from maskgct.text import espeak
from maskgct.text.inventory import WORD_BOUNDARY
from maskgct.text.normalize import clean_for_espeak, expand_english

# If the phone string ends with one of these characters, a word boundary is appended (the official rule
# looks at the last character only, so e.g. a final "ð" or "ɚ" gets none).
_BOUNDARY_AFTER = set("p⁼ʰmftnlkxʃs`ɹaoəɛɪeɑʊŋiuɥwæjː")

# Official merges ("t|ɹ" -> "tɹ", ...), applied by the reference in this order, each until nothing changes:
# the five pair merges, then the one-piece replacements, then "oː|ɹ". No piece is both the second of one
# pair and the first of another, and no replacement creates a first piece of "oː|ɹ", so one left-to-right
# pass per group gives the same result.
_PAIR_MERGES = {("t", "ɹ"): "tɹ", ("d", "ɹ"): "dɹ", ("t", "s"): "ts", ("d", "z"): "dz", ("ɪ", "ɹ"): "ɪɹ"}
_REPLACEMENTS = {"ɐ": "ɚ", "ᵻ": "ɪ", "əl": "l", "x": "k", "ɬ": "l", "ʔ": "t", "n̩": "n"}
_LATE_PAIR_MERGES = {("oː", "ɹ"): "oːɹ"}


def _merge_pairs(pieces: list[str], merges: dict[tuple[str, str], str]) -> list[str]:
    out: list[str] = []
    for piece in pieces:
        merged = merges.get((out[-1], piece)) if out else None
        if merged is None:
            out.append(piece)
        else:
            out[-1] = merged
    return out


def _merge(pieces: list[str]) -> list[str]:
    pieces = _merge_pairs(pieces, _PAIR_MERGES)
    pieces = [_REPLACEMENTS.get(piece, piece) for piece in pieces]
    return _merge_pairs(pieces, _LATE_PAIR_MERGES)


def postprocess(phones: str) -> list[str]:
    """A "|"-joined espeak string -> symbols, with the word-boundary rule and the merges."""
    if phones and phones[-1] in _BOUNDARY_AFTER:
        phones += "|" + WORD_BOUNDARY
    return _merge([piece for piece in phones.split("|") if piece])


def english_to_symbols(texts: list[str], strict_reference: bool = False) -> list[list[str]]:
    """Phonemize a batch of English runs (one espeak call for the whole batch).

    Line breaks are read as spaces. (The official frontend phonemizes each line alone and joins them with
    a newline character, which glues the newline to the next phone and loses it; `strict_reference`
    reproduces that.)
    """
    lines: list[str] = []
    owners: list[int] = []
    for index, text in enumerate(texts):
        text = expand_english(text, expand_symbols=not strict_reference)
        parts = text.strip("\n").split("\n") if strict_reference else [text.replace("\n", " ")]
        for part in parts:
            lines.append(clean_for_espeak(part))
            owners.append(index)
    phonemized = espeak.phonemize(lines, "en-us")
    joined: list[list[str]] = [[] for _ in texts]
    for owner, phones in zip(owners, phonemized, strict=True):
        joined[owner].append(phones)
    return [postprocess(espeak.split_punctuation("\n".join(parts))) for parts in joined]
