"""Text -> MaskGCT phone symbols and ids: language runs, inline phone spans, batching, error reporting.

Languages:
- "en", "zh", "auto": the official mixed path. The text is split into runs of CJK characters
  (U+4E00-U+9FA5) and runs of ASCII letters; any other character joins the current run and leading ones
  join the first run. CJK runs go through the Mandarin G2P and Latin runs through English, whichever of
  the three was asked (as in the official frontend, so "en" text with Chinese in it is read correctly).
  The language only decides a text with neither (e.g. "2024"): "zh" reads it in Mandarin, "en"/"auto"
  in English. The official frontend rejects such texts.
- "fr", "de" (or any other espeak-ng voice name): espeak in that language, mapped into the vocabulary.
- "phones": the text is a list of vocabulary symbols separated by spaces or "|".

Inline phones: "{...}" in any text is a span of symbols passed through as written, e.g.
"I say {t ə m eɪ t oʊ} _" (write "_" for a word boundary yourself). An unknown symbol in a span is an error.

Anything the frontend produces that is not in the vocabulary is left out and reported with an
`UnknownPhoneWarning` giving each symbol and its count; a text with nothing pronounceable raises ValueError.
`strict_reference=True` reproduces the official ids exactly (it keeps the official frontend's habits of
deleting symbols such as "&" and losing the first phone after a line break).
"""

from __future__ import annotations

import re
from collections import Counter

from maskgct.text.english import english_to_symbols
from maskgct.text.european import european_to_symbols, map_to_vocabulary
from maskgct.text.inventory import PUNCTUATION, WORD_BOUNDARY, phone_to_id, report_unknown, symbols_to_ids
from maskgct.text.mandarin import mandarin_to_symbols

MIXED_LANGUAGES = ("en", "zh", "auto")
_SPAN = re.compile(r"\{([^{}]*)\}")
_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def _kind(char: str) -> str:
    if "\u4e00" <= char <= "\u9fa5":
        return "zh"
    if "a" <= char <= "z" or "A" <= char <= "Z":
        return "en"
    return "other"


def split_runs(text: str) -> list[tuple[str, str]]:
    """Official segmentation into [(run, "zh" | "en" | "other")]; "other" only when there is no letter."""
    runs: list[tuple[str, str]] = []
    current, language = "", ""
    for char in text:
        kind = _kind(char)
        if not current:
            current, language = char, kind
        elif language == "other":
            current, language = current + char, kind
        elif kind in (language, "other"):
            current += char
        else:
            runs.append((current, language))
            current, language = char, kind
    if current:
        runs.append((current, language))
    return runs


def parse_phones(text: str) -> list[str]:
    """User-written symbols ("h ə l oʊ" or "h|ə|l|oʊ") -> symbols; unknown ones are an error."""
    symbols = [s for s in re.split(r"[\s|]+", text) if s]
    unknown = [s for s in symbols if s not in phone_to_id()]
    if unknown:
        raise ValueError(f"not MaskGCT phones: {' '.join(sorted(set(unknown)))}")
    return symbols


def _plan(text: str, language: str, strict_reference: bool) -> list[tuple[str, str]]:
    """Text -> [(kind, content)] with kind "phones", "en", "zh" or an espeak language."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, not {type(text).__name__}")
    if language == "phones":
        return [("phones", text)]
    if not strict_reference:
        text = text.translate(_FULLWIDTH)
    plan: list[tuple[str, str]] = []
    position = 0
    for match in [*_SPAN.finditer(text), None]:
        chunk = text[position : match.start() if match else len(text)]
        if chunk.strip():
            if language in MIXED_LANGUAGES:
                fallback = "zh" if language == "zh" else "en"
                plan += [(fallback if kind == "other" else kind, run) for run, kind in split_runs(chunk)]
            else:
                plan.append((language, chunk))
        if match:
            plan.append(("phones", match.group(1)))
            position = match.end()
    return plan


def texts_to_phones(
    texts: list[str], language: str = "en", strict_reference: bool = False
) -> list[list[str]]:
    """A batch of texts -> vocabulary symbols per text (English runs share one espeak call)."""
    if isinstance(texts, str):
        raise ValueError("texts_to_phones / texts_to_ids take a list of texts; use text_to_ids for one")
    plans = [_plan(text, language, strict_reference) for text in texts]
    by_kind: dict[str, list[str]] = {}
    for plan in plans:
        for kind, content in plan:
            if kind not in ("phones", "zh"):
                by_kind.setdefault(kind, []).append(content)
    converted = {
        kind: iter(
            english_to_symbols(runs, strict_reference) if kind == "en" else european_to_symbols(runs, kind)
        )
        for kind, runs in by_kind.items()
    }
    results = []
    for text, plan in zip(texts, plans, strict=True):
        unknown: Counter = Counter()
        symbols: list[str] = []
        for kind, content in plan:
            if kind == "phones":
                symbols += parse_phones(content)
            elif kind == "zh":
                symbols += mandarin_to_symbols(content, unknown)
            else:
                symbols += next(converted[kind])
        # The official frontend drops the word boundary that ends a text's final English run.
        if plan and plan[-1][0] == "en" and symbols and symbols[-1] == WORD_BOUNDARY:
            symbols.pop()
        if strict_reference:
            unknown.update(s for s in symbols if s not in phone_to_id())
            symbols = [s for s in symbols if s in phone_to_id()]
        else:
            symbols = map_to_vocabulary(symbols, unknown)
        report_unknown(unknown, text)
        if not any(s not in PUNCTUATION and s != WORD_BOUNDARY for s in symbols):
            raise ValueError(f"nothing pronounceable in {text!r} (language {language!r})")
        results.append(symbols)
    return results


def texts_to_ids(texts: list[str], language: str = "en", strict_reference: bool = False) -> list[list[int]]:
    """A batch of texts -> phone ids per text; raises ValueError on a text with nothing pronounceable."""
    return [symbols_to_ids(s) for s in texts_to_phones(texts, language, strict_reference)]


def text_to_phones(text: str, language: str = "en", strict_reference: bool = False) -> list[str]:
    """One text -> vocabulary symbols, e.g. "Hi." -> ["h", "aɪ", "."]."""
    return texts_to_phones([text], language, strict_reference)[0]


def text_to_ids(text: str, language: str = "en", strict_reference: bool = False) -> list[int]:
    """One text -> MaskGCT phone ids (no BOS/EOS, no language token), e.g. "Hi." -> [41, 20, 1]."""
    return texts_to_ids([text], language, strict_reference)[0]


def phones_to_ids(phones: str | list[str]) -> list[int]:
    """Symbols given directly (a list, or a string separated by spaces or "|") -> ids."""
    symbols = parse_phones(phones if isinstance(phones, str) else " ".join(phones))
    if not symbols:
        raise ValueError("no phones given")
    return symbols_to_ids(symbols)
