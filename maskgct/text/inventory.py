"""The MaskGCT phone vocabulary (363 symbols) and the symbol <-> id mapping.

The vocabulary ships as package data (`phones.json`, list index = id). It is the official one: T2S
checkpoints only understand these ids. Symbols that are not in it are never dropped silently: they are
collected and reported with `UnknownPhoneWarning` (symbol and count).
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from functools import lru_cache
from importlib import resources

WORD_BOUNDARY = "_"
PUNCTUATION = ",.?!;:'…"


class UnknownPhoneWarning(UserWarning):
    """Some phones produced by the frontend (or passed by the user) are not in the vocabulary."""


@lru_cache(maxsize=1)
def phone_list() -> tuple[str, ...]:
    """All symbols in id order (`phone_list()[i]` is the symbol of id i)."""
    text = resources.files("maskgct.text").joinpath("phones.json").read_text(encoding="utf-8")
    return tuple(json.loads(text)["phones"])


@lru_cache(maxsize=1)
def phone_to_id() -> dict[str, int]:
    return {symbol: index for index, symbol in enumerate(phone_list())}


def report_unknown(unknown: Counter, context: str) -> None:
    """Warn once for a text with every unknown symbol and its count (nothing when there are none)."""
    if unknown:
        listed = ", ".join(f"{symbol!r} x{count}" for symbol, count in unknown.most_common())
        warnings.warn(
            f"could not be read into MaskGCT phones, left out: {listed} (in {context!r})",
            UnknownPhoneWarning,
            stacklevel=3,
        )


def symbols_to_ids(symbols: list[str], unknown: Counter | None = None) -> list[int]:
    """Map symbols to ids. Unknown symbols are counted into `unknown` (the caller reports them)."""
    table = phone_to_id()
    ids = []
    for symbol in symbols:
        index = table.get(symbol)
        if index is None:
            if unknown is not None:
                unknown[symbol] += 1
        else:
            ids.append(index)
    return ids


def ids_to_symbols(ids: list[int]) -> list[str]:
    phones = phone_list()
    bad = [i for i in ids if not 0 <= i < len(phones)]
    if bad:
        raise ValueError(f"phone ids out of range 0..{len(phones) - 1}: {bad[:5]}")
    return [phones[i] for i in ids]
