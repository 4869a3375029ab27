"""Mandarin G2P: numbers, segmentation, pinyin, tone sandhi, and the official IPA-with-tone symbols.

Steps (as the official frontend): cn2an turns Arabic numbers into Chinese numerals; punctuation is mapped
to ASCII and everything but CJK characters and the marks is removed; jieba segments; each word gets
pinyin; word-level tone sandhi (3-3, 不, 一, 儿) is applied; each syllable becomes the official symbols.

Symbols: the initial is its own symbol ("p⁼", "tʃʰ", "ts`⁼", ...) and the final carries the tone as a
suffix ("a↓", "jɛn→", "ioʊ↓↑"; a neutral tone has no suffix). b/p/m/f + o are one symbol ("p⁼wo↑"),
zhi/chi/shi/ri/zi/ci/si are the initial plus "ɹ" and the tone ("ts`⁼ɹ→"; with a neutral tone just
the initial, as in the reference).

Polyphones: the official frontend resolves them with a BERT model and a lexicon that are not available.
We use pypinyin's phrase dictionary on jieba's words (its single-character fallback is the most frequent
reading); the difference shows up on polyphonic single-character words whose reading depends on the
sentence (e.g. 还 huan2/hai2, 得 de5/dei3, 长 chang2/zhang3 outside a known phrase).
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from functools import lru_cache

from maskgct.text.inventory import PUNCTUATION
from maskgct.text.normalize import map_punctuation

_CJK = re.compile("[\u4e00-\u9fff]")
_NOT_KEPT = re.compile(r"[^\u4e00-\u9fff_,.?!;:'…]")
_SPACES = re.compile(r"\s+")

_INITIALS = {
    "zh": "ts`⁼",
    "ch": "ts`ʰ",
    "sh": "s`",
    "b": "p⁼",
    "p": "pʰ",
    "m": "m",
    "f": "f",
    "d": "t⁼",
    "t": "tʰ",
    "n": "n",
    "l": "l",
    "g": "k⁼",
    "k": "kʰ",
    "h": "x",
    "j": "tʃ⁼",
    "q": "tʃʰ",
    "x": "ʃ",
    "r": "ɹ`",
    "z": "ts⁼",
    "c": "tsʰ",
    "s": "s",
}
_APICAL_INITIALS = {"zh", "ch", "sh", "r", "z", "c", "s"}

# Canonical finals (y/w spellings and the iu/ui/un abbreviations undone; "v" is ü) -> symbols, the tone
# goes on the last one.
_FINALS = {
    "a": ["a"],
    "o": ["o"],
    "e": ["ə"],
    "ê": ["ɛ"],
    "ai": ["aɪ"],
    "ei": ["eɪ"],
    "ao": ["ɑʊ"],
    "ou": ["oʊ"],
    "an": ["an"],
    "en": ["ən"],
    "ang": ["ɑŋ"],
    "eng": ["əŋ"],
    "er": ["əɹ"],
    "ong": ["ʊŋ"],
    "i": ["i"],
    "ia": ["ia"],
    "io": ["i", "o"],
    "iai": ["i", "aɪ"],
    "ie": ["iɛ"],
    "iao": ["iɑʊ"],
    "iou": ["ioʊ"],
    "ian": ["jɛn"],
    "in": ["in"],
    "iang": ["iɑŋ"],
    "ing": ["iŋ"],
    "iong": ["jʊŋ"],
    "u": ["u"],
    "ua": ["ua"],
    "uo": ["uo"],
    "uai": ["uaɪ"],
    "uei": ["ueɪ"],
    "uan": ["uan"],
    "uen": ["uən"],
    "uang": ["uɑŋ"],
    "ueng": ["ʊŋ"],
    "v": ["ɥ"],
    "ve": ["ɥɛ"],
    "van": ["ɥæn"],
    "vn": ["ɥn"],
}
# Syllables without a regular initial + final split (the vocabulary has no toned "m", so 噷 hm keeps "m"
# toneless).
_WHOLE_SYLLABLES = {"m": ["m", "u"], "n": ["ən"], "ng": ["ən"], "hng": ["x", "əŋ"]}
_Y_W_SPELLINGS = {
    "yi": "i", "ya": "ia", "yo": "io", "yai": "iai", "ye": "ie", "yao": "iao", "you": "iou", "yan": "ian",
    "yin": "in", "yang": "iang", "ying": "ing", "yong": "iong", "yu": "v", "yue": "ve", "yuan": "van",
    "yun": "vn", "yve": "ve", "wu": "u", "wa": "ua", "wo": "uo", "wai": "uai", "wei": "uei", "wan": "uan",
    "wen": "uen", "wang": "uang", "weng": "ueng", "wong": "ueng",
}  # fmt: skip
_ABBREVIATED_FINALS = {"iu": "iou", "ui": "uei", "un": "uen", "ue": "ve"}
_TONE_SUFFIX = {1: "→", 2: "↑", 3: "↓↑", 4: "↓", 5: ""}
_PINYIN = re.compile(r"^([a-zê]+)([1-5])$")


@lru_cache(maxsize=4096)
def syllable_symbols(syllable: str, tone: int) -> tuple[str, ...] | None:
    """Toneless pinyin ("zhuang", "lve", "yi") and tone 1..5 -> symbols; None if it is not pinyin."""
    syllable = syllable.replace("ü", "v")
    suffix = _TONE_SUFFIX[tone]
    if syllable == "hm":
        return ("x", "m")
    if syllable in _WHOLE_SYLLABLES:
        pieces = list(_WHOLE_SYLLABLES[syllable])
        pieces[-1] += suffix
        return tuple(pieces)
    initial = next((i for i in ("zh", "ch", "sh") if syllable.startswith(i)), None)
    if initial is None and syllable[:1] in _INITIALS:
        initial = syllable[0]
    final = syllable[len(initial) :] if initial else syllable
    if initial is None:
        final = _Y_W_SPELLINGS.get(final, final)
    elif initial in _APICAL_INITIALS and final == "i":
        # The reference appends "ɹ" only before a tone mark, so a neutral zi/shi keeps the bare initial.
        return (_INITIALS[initial] + ("ɹ" + suffix if suffix else ""),)
    elif initial in "jqx" and final.startswith("u"):
        final = "v" + final[1:]
    final = _ABBREVIATED_FINALS.get(final, final)
    if initial in ("b", "p", "m", "f") and final == "o":
        return (_INITIALS[initial] + "wo" + suffix,)
    if final not in _FINALS:
        return None
    pieces = list(_FINALS[final])
    pieces[-1] += suffix
    return ((_INITIALS[initial],) if initial else ()) + tuple(pieces)


# --- word-level merges and tone sandhi (on lists of (toneless pinyin, tone)) ---------------------------

_NUMERALS = set("零一二三四五六七八九十")
_YI_KEEPS_TONE_BEFORE = "：，；。？！“”‘’':,;.?!()（）{}【】[]-~`、 "
_ER_NOT_SUFFIX = {"女儿", "老儿", "男儿", "少儿", "小儿"}


def merge_words(words: list[str]) -> list[str]:
    """Merge jieba words so that sandhi sees them: 看/一/看, 一/X, 不/X, X/儿."""
    merged: list[str] = []
    i = 0
    while i < len(words):
        if i + 2 < len(words) and words[i + 1] == "一" and words[i] == words[i + 2]:
            merged.append(words[i] + "一" + words[i])
            i += 3
            continue
        merged.append(words[i])
        i += 1
    out: list[str] = []
    for word in merged:
        if out and out[-1] == "一":
            out[-1] += word
        else:
            out.append(word)
    merged, out = out, []
    # A "不" that ends the text stays (the reference drops it).
    for word in merged:
        if out and out[-1] == "不" and word != "不":
            out[-1] += word
        else:
            out.append(word)
    merged, out = out, []
    for word in merged:
        if out and word == "儿":
            out[-1] += word
        else:
            out.append(word)
    return out


def apply_sandhi(word: str, tones: list[int]) -> list[int]:
    """Word-level tone sandhi as in the reference. `tones` has one entry per character of `word`."""
    tones = list(tones)
    n = len(word)
    # 3-3 -> 2-3 on two-character words. (The reference's three-character rule has no effect on its
    # output: it appends a second tone mark that the vocabulary then drops; so it is not applied here.)
    if n == 2 and tones[0] == 3 and tones[1] == 3:
        tones[0] = 2
    # 不
    if set(word) == {"不"} or word == "不字":
        pass
    elif n == 3 and word[1] == "不":
        tones[1] = 5  # 看不懂
    else:
        for i in range(n - 1):
            if word[i] == "不" and tones[i + 1] == 4:
                tones[i] = 2
    # 一
    if "一" in word and any(c.isnumeric() for c in word if c != "一"):
        for i, char in enumerate(word):
            if i == 0 and char == "一" and n > 1 and word[1] not in _NUMERALS:
                tones[0] = 2 if tones[1] in (4, 5) else 4  # 一百, 一万
            elif char == "一":
                tones[i] = 1  # read as a digit
    elif n == 3 and word[1] == "一" and word[0] == word[2]:
        tones[1] = 5  # 看一看
    elif word.startswith("第一"):
        tones[1] = 1
    elif word.startswith(("一月", "一日", "一号")):
        tones[0] = 1
    else:
        for i in range(n - 1):
            if word[i] == "一":
                if tones[i + 1] == 4:
                    tones[i] = 2
                elif word[i + 1] not in _YI_KEEPS_TONE_BEFORE:
                    tones[i] = 4
    # 儿 suffix
    if n > 1 and word[-1] == "儿" and word not in _ER_NOT_SUFFIX:
        tones[-1] = 5
    return tones


# --- text -> symbols ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _jieba():
    import logging

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jieba imports the deprecated pkg_resources
        import jieba
    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


@lru_cache(maxsize=65536)
def _word_pinyin(word: str) -> tuple[str, ...]:
    from pypinyin import Style, lazy_pinyin

    return tuple(lazy_pinyin([word], style=Style.TONE3, neutral_tone_with_five=True, errors=list))


def normalize_mandarin(text: str) -> tuple[str, str]:
    """cn2an numbers, ASCII punctuation, only CJK + marks. Returns (normalised, removed letters/digits)."""
    import cn2an

    text = cn2an.transform(text.strip(), "an2cn")
    text = _SPACES.sub("", map_punctuation(text))
    removed = "".join(c for c in _NOT_KEPT.findall(text) if c.isalnum())
    return _NOT_KEPT.sub("", text), removed


def word_symbols(word: str, unknown: Counter) -> list[str]:
    """One jieba word (after merges) -> symbols; characters without pinyin are counted as unknown."""
    if not _CJK.search(word):
        return [c for c in word if c in PUNCTUATION or c == "_"]
    readings = _word_pinyin(word)
    if len(readings) != len(word):  # pypinyin could not align; go character by character
        readings = tuple(r for c in word for r in _word_pinyin(c))
    parsed = [_PINYIN.match(r) for r in readings]
    tones = apply_sandhi(word, [int(m.group(2)) if m else 1 for m in parsed])
    symbols: list[str] = []
    for char, match, tone in zip(word, parsed, tones, strict=True):
        pieces = syllable_symbols(match.group(1), tone) if match else None
        if char in PUNCTUATION or char == "_":  # a mark that jieba attached to a word (e.g. "一，")
            symbols.append(char)
        elif pieces is None:
            unknown[char] += 1
        else:
            symbols.extend(pieces)
    return symbols


def mandarin_to_symbols(text: str, unknown: Counter) -> list[str]:
    """One Mandarin run -> symbols. Unknown characters and removed letters/digits go to `unknown`."""
    text, removed = normalize_mandarin(text)
    for char in removed:
        unknown[char] += 1
    symbols: list[str] = []
    for word in merge_words(_jieba().lcut(text, cut_all=False)):
        symbols.extend(word_symbols(word, unknown))
    return symbols
