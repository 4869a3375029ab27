"""French, German and other espeak languages, mapped into the MaskGCT vocabulary.

The official model was trained on English and Mandarin only; its frontend sends fr/de through espeak with
a light punctuation normalisation and keeps whatever phones are in the vocabulary. We do the same, and map
espeak phones that the vocabulary lacks to the nearest symbols instead of dropping them (nasal vowels and
long vowels keep the vocabulary's standalone "̃" / "ː" marks). Numbers are read by espeak itself.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache

from maskgct.text import espeak
from maskgct.text.inventory import phone_to_id
from maskgct.text.normalize import clean_for_espeak

# Our language codes -> espeak voices (anything else is passed to espeak as is).
VOICES = {"fr": "fr-fr", "de": "de"}

_PUNCTUATION = {
    "：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": ".", "·": ",", "、": ",",
    "...": ".", "…": ".", "“": "", "”": "", "‘": "", "’": "", "（": "", "）": "", "(": "", ")": "",
    "《": "", "》": "", "【": "", "】": "", "[": "", "]": "", "—": "", "～": "-", "~": "-", "「": "",
    "」": "", "¿": "", "¡": "",
}  # fmt: skip
_PUNCTUATION_RE = re.compile(
    "|".join(re.escape(mark) for mark in sorted(_PUNCTUATION, key=len, reverse=True))
)
_AND = {"fr": " et ", "de": " und "}
_FRENCH_ABBREVIATIONS = [
    (re.compile(rf"\b{short}\.", re.IGNORECASE), long)
    for short, long in [
        ("Mlles", "mesdemoiselles"),
        ("Mlle", "mademoiselle"),
        ("Mmes", "mesdames"),
        ("Mme", "madame"),
        ("M", "monsieur"),
        ("Pr", "professeur"),
        ("Dr", "docteur"),
        ("St", "saint"),
        ("etc", "et cetera"),
        ("av", "avenue"),
        ("bd", "boulevard"),
    ]
]

# espeak phones missing from the vocabulary -> nearest vocabulary symbols.
_NEAREST = {
    "ɛ̃": ("ɛ", "̃"),
    "œ̃": ("œ", "̃"),
    "ʏ": ("y",),
    "ɔø": ("ɔɪ",),
    "ɔʏ": ("ɔɪ",),
    "pf": ("p", "f"),
}


def normalize_european(text: str, language: str) -> str:
    if language == "fr":
        for pattern, long in _FRENCH_ABBREVIATIONS:
            text = pattern.sub(long, text)
    text = _PUNCTUATION_RE.sub(lambda m: _PUNCTUATION[m.group(0)], text)
    text = text.replace(";", ",").replace(":", ",").replace("-", " ")
    text = text.replace("&", _AND.get(language, " & "))
    text = re.sub(r"[<>()\[\]\"«»]+", "", text)
    text = re.sub(r"^[,.!?]+", "", text.strip())
    return re.sub(r"\s+", " ", text).strip()


@cache
def _nearest(phone: str) -> tuple[str, ...] | None:
    """A missing phone -> known symbols: the table, else a split into known pieces (longest first)."""
    if phone in _NEAREST:
        return _NEAREST[phone]
    known = phone_to_id()
    pieces: list[str] = []
    rest = phone
    while rest:
        for end in range(len(rest), 0, -1):
            if rest[:end] in known:
                pieces.append(rest[:end])
                rest = rest[end:]
                break
        else:
            return None
    return tuple(pieces)


def map_to_vocabulary(symbols: list[str], unknown: Counter) -> list[str]:
    """Replace symbols missing from the vocabulary by their nearest symbols; count what cannot be mapped."""
    known = phone_to_id()
    out: list[str] = []
    for symbol in symbols:
        if symbol in known:
            out.append(symbol)
            continue
        nearest = _nearest(symbol)
        if nearest is None:
            unknown[symbol] += 1
        else:
            out.extend(nearest)
    return out


@cache
def voice_for(language: str) -> str:
    voice = VOICES.get(language, language)
    from phonemizer.backend import EspeakBackend

    espeak._backend("en-us")  # points phonemizer at the espeakng-loader library first
    if voice not in EspeakBackend.supported_languages():
        raise ValueError(f"unknown language {language!r}: not an espeak-ng voice")
    return voice


def european_to_symbols(texts: list[str], language: str) -> list[list[str]]:
    """A batch of texts in one espeak language -> symbols (not yet mapped to the vocabulary)."""
    voice = voice_for(language)
    lines = [clean_for_espeak(normalize_european(text, language)) for text in texts]
    phonemized = espeak.phonemize(lines, voice)
    return [[p for p in espeak.split_punctuation(phones).split("|") if p] for phones in phonemized]
