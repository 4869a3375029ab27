"""Our G2P phones (maskgct.text, English) → sets of the `hama` phoneme CTC model's IPA symbols.

hama writes affricates with a tie bar, has no length mark on vowels and writes r-coloured vowels and
diphthongs as separate symbols, so each of our phones is split into hama symbols first (longest match).
Each hama symbol is then widened to the few symbols the model is seen to emit for it on synthetic and real
English (reduced vowels heard as ɪ/ʌ/i, "ɡ" written as "g", a flap heard as t or d, ...): forced alignment
only needs to know WHICH phone comes next, and a too-narrow set makes the path hug the wrong frames.
"""

from __future__ import annotations

from functools import cache

# Spelling differences, applied before the longest match.
_RESPELL = {"dʒ": "d͡ʒ", "tʃ": "t͡ʃ", "ː": ""}

# Symbols the model may emit for each symbol (the symbol itself always included).
_CONFUSIONS = {
    "ə": "ʌɪɐɚiɛ",
    "ɚ": "ɝəɜ",
    "ɜ": "ɝɚə",
    "ɪ": "iəɛ",
    "i": "ɪ",
    "ɑ": "ɔʌaɒ",
    "ɔ": "ɑoɒ",
    "ʌ": "əɑɐ",
    "æ": "ɛae",
    "ɛ": "eæ",
    "ʊ": "uə",
    "u": "ʊ",
    "ɡ": "g",
    "ɾ": "td",
    "ɹ": "rɻɾ",
    "t": "ɾʔ",
    "d": "ɾ",
    "θ": "fð",
    "ð": "θd",
    "z": "s",
    "n": "ŋ",
    "ŋ": "n",
    "l": "ɫ",
    "j": "i",
}
_MULTI_CONFUSIONS = {"oʊ": ("o", "ɔ"), "eɪ": ("e",), "aɪ": ("a",), "aʊ": ("a",), "ɔɪ": ("ɔ",)}

# Phones that are not sounds: the word boundary and punctuation of maskgct.text.
SILENT = frozenset("_,.?!;:…—-\"'«»()¡¿")


def _split(phone: str, symbols: frozenset[str]) -> list[str]:
    for old, new in _RESPELL.items():
        phone = phone.replace(old, new)
    pieces, i = [], 0
    while i < len(phone):
        for size in (3, 2, 1):
            if phone[i : i + size] in symbols:
                pieces.append(phone[i : i + size])
                i += size
                break
        else:
            raise KeyError(f"no hama symbol for {phone[i]!r} (in the phone {phone!r})")
    return pieces


@cache
def _phone_sets(phone: str, vocabulary: tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
    index = {symbol: i for i, symbol in enumerate(vocabulary)}
    out = []
    for piece in _split(phone, frozenset(index)):
        alternatives = [piece, *_CONFUSIONS.get(piece, ""), *_MULTI_CONFUSIONS.get(piece, ())]
        out.append(tuple(sorted({index[a] for a in alternatives if a in index})))
    return tuple(out)


def phone_symbol_sets(phones: list[str], vocabulary: list[str]) -> list[tuple[int, ...]]:
    """Phones of one word → one set of hama symbol ids per aligned unit (silent phones dropped).

    ``vocabulary`` is the model's symbol list (``hama.asr.ASRModel().decoder_tokens``).
    """
    vocabulary = tuple(vocabulary)
    return [s for phone in phones if phone not in SILENT for s in _phone_sets(phone, vocabulary)]
