"""Text normalisation shared by the languages, and the English number/abbreviation expansion.

The English rules follow the official frontend step by step (the order matters: "$1,250" must lose its
comma before the dollar rule, "1/2" must become words before "/" is removed, ...). Where the official
frontend silently loses text (symbols such as "&" or "+" are deleted), `expand_symbols` reads them
instead; `strict_reference=True` in the public API turns that off to reproduce the official ids exactly.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Full-width / CJK punctuation to the ASCII marks the vocabulary has (applied in this order).
_PUNCTUATION_MAP = [
    ("，", ","),
    ("。", "."),
    ("！", "!"),
    ("？", "?"),
    ("；", ";"),
    ("：", ":"),
    ("、", ","),
    ("‘", "'"),
    ("’", "'"),
    ("⋯", "…"),
    ("···", "…"),
    ("・・・", "…"),
    ("...", "…"),
]


def map_punctuation(text: str) -> str:
    for source, target in _PUNCTUATION_MAP:
        text = text.replace(source, target)
    return text


_ABBREVIATIONS = [
    (re.compile(rf"\b{short}\b", re.IGNORECASE), long)
    for short, long in [
        ("mrs", "misess"),
        ("mr", "mister"),
        ("dr", "doctor"),
        ("st", "saint"),
        ("co", "company"),
        ("jr", "junior"),
        ("maj", "major"),
        ("gen", "general"),
        ("drs", "doctors"),
        ("rev", "reverend"),
        ("lt", "lieutenant"),
        ("hon", "honorable"),
        ("sgt", "sergeant"),
        ("capt", "captain"),
        ("esq", "esquire"),
        ("ltd", "limited"),
        ("col", "colonel"),
        ("ft", "fort"),
        ("etc", "et cetera"),
        ("btw", "by the way"),
    ]
]

_THOUSANDS = re.compile(r"([0-9][0-9,]+[0-9])")
_POUNDS = re.compile(r"£([0-9,]*[0-9]+)")
_DOLLARS = re.compile(r"\$([0-9.,]*[0-9]+)")
_FRACTION = re.compile(r"([0-9]+)/([0-9]+)")
_DECIMAL = re.compile(r"([0-9]+\.[0-9]+)")
_PERCENT = re.compile(r"([0-9.,]*[0-9]+%)")
_ORDINAL = re.compile(r"[0-9]+(st|nd|rd|th)")
_CARDINAL = re.compile(r"[0-9]+")

# Symbols the official cleanup deletes; read as words instead (not in strict reference mode).
_SYMBOLS = [
    (re.compile(r"#\s*(?=[0-9])"), " number "),
    (re.compile(r"&"), " and "),
    (re.compile(r"\+"), " plus "),
    (re.compile(r"="), " equals "),
    (re.compile(r"@"), " at "),
]


@lru_cache(maxsize=1)
def _inflect():
    import inflect

    return inflect.engine()


def _plural(count: int, unit: str) -> str:
    return unit if count == 1 else unit + "s"


def _dollars(match: re.Match) -> str:
    amount = match.group(1)
    parts = amount.split(".")
    if len(parts) > 2:
        return f" {amount} dollars "
    dollars = int(parts[0]) if parts[0] else 0
    cents = int(parts[1]) if len(parts) > 1 and parts[1] else 0
    if dollars and cents:
        return f" {dollars} {_plural(dollars, 'dollar')}, {cents} {_plural(cents, 'cent')} "
    if dollars:
        return f" {dollars} {_plural(dollars, 'dollar')} "
    if cents:
        return f" {cents} {_plural(cents, 'cent')} "
    return " zero dollars "


def _fraction(match: re.Match) -> str:
    numerator, denominator = int(match.group(1)), int(match.group(2))
    words = _inflect().number_to_words
    if denominator == 2:
        return " one half " if numerator == 1 else f" {words(numerator)} halves "
    if denominator == 4:
        return " one quarter " if numerator == 1 else f" {words(numerator)} quarters "
    return f" {words(numerator)} {_inflect().ordinal(words(denominator))} "


def _cardinal(match: re.Match) -> str:
    return _cardinal_words(match.group(0))


@lru_cache(maxsize=4096)
def _cardinal_words(digits: str) -> str:
    """inflect is slow per call (run-time type checks), and the same numbers recur, so results are kept."""
    number = int(digits)
    words = _inflect().number_to_words
    # 1001..2999 are read like years: "nineteen ninety-nine", "two thousand five", "eighteen hundred".
    if 1000 < number < 3000:
        if number == 2000:
            return " two thousand "
        if 2000 < number < 2010:
            return f" two thousand {words(number % 100)} "
        if number % 100 == 0:
            return f" {words(number // 100)} hundred "
        return " " + words(number, andword="", zero="oh", group=2).replace(", ", " ") + " "
    return f" {words(number, andword='')} "


def expand_english(text: str, expand_symbols: bool = True) -> str:
    """Abbreviations, then numbers (currency, fractions, decimals, percent, ordinals, cardinals)."""
    if expand_symbols:
        for pattern, words in _SYMBOLS:
            text = pattern.sub(words, text)
    for pattern, long in _ABBREVIATIONS:
        text = pattern.sub(long, text)
    text = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), text)
    text = _POUNDS.sub(r"\1 pounds", text)
    text = _DOLLARS.sub(_dollars, text)
    text = _FRACTION.sub(_fraction, text)
    text = _DECIMAL.sub(lambda m: m.group(1).replace(".", " point "), text)
    text = _PERCENT.sub(lambda m: m.group(1).replace("%", " percent "), text)
    text = _ORDINAL.sub(lambda m: f" {_inflect().number_to_words(m.group(0))} ", text)
    return _CARDINAL.sub(_cardinal, text)


_NOT_KEPT = re.compile(r"[^\w\s_,.?!;:'…]")
_SPACE_AROUND_MARK = re.compile(r"\s*([,.?!;:'…])\s*")
_SPACES = re.compile(r"\s+")


def clean_for_espeak(line: str) -> str:
    """The official pre-espeak cleanup: ASCII punctuation, only word characters, spaces and marks."""
    line = map_punctuation(line.strip())
    line = _NOT_KEPT.sub("", line)
    line = _SPACE_AROUND_MARK.sub(r"\1", line)
    return _SPACES.sub(" ", line)
