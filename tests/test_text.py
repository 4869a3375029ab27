"""Mandarin, mixed, French/German, phone input, errors and the CLI of the text frontend.

Expected Mandarin symbols were checked by hand against the official bopomofo -> IPA rules.
"""

import warnings

import pytest

from maskgct.text import (
    UnknownPhoneWarning,
    ids_to_symbols,
    phones_to_ids,
    split_runs,
    text_to_ids,
    text_to_phones,
    texts_to_ids,
)
from maskgct.text.__main__ import main
from maskgct.text.mandarin import merge_words, syllable_symbols

MANDARIN = {
    # 3-3 sandhi on a two-character word (你好 -> ni2 hao3); 世 shi4 is zh/ch/sh/r + "ɹ" + tone.
    "你好，世界！": "n i↑ x ɑʊ↓↑ , s`ɹ↓ tʃ⁼ iɛ↓ !",
    # 一 before tone 4 -> yi2, before others -> yi4, in 看一看 neutral; 这个: neutral 个 has no tone suffix.
    "我们一起去银行，看一看这个长城。": "uo↓↑ m ən i↓ tʃʰ i↓↑ tʃʰ ɥ↓ in↑ x ɑŋ↑ , kʰ an↓ i kʰ an↓ "
    "ts`⁼ ə↓ k⁼ ə ts`ʰ ɑŋ↑ ts`ʰ əŋ↑ .",
    # 不 before tone 4 -> bu2; 看不懂 -> neutral 不; final 不 is kept; 一 as a digit / ordinal keeps tone 1.
    "一个人不怕，第一名，看不懂，你去不": "i↑ k⁼ ə↓ ɹ` ən↑ p⁼ u↑ pʰ a↓ , t⁼ i↓ i→ m iŋ↑ , "
    "kʰ an↓ p⁼ u t⁼ ʊŋ↓↑ , n i↓↑ tʃʰ ɥ↓ p⁼ u↓",
    # 儿 suffix becomes neutral except in 女儿; neutral 子 is the bare initial.
    "花儿和女儿的桌子": "x ua→ əɹ x ə↑ n ɥ↓↑ əɹ↑ t⁼ ə ts`⁼ uo→ ts⁼",
    # Numbers through cn2an: dates, decimals, negative numbers, percent.
    "2024年，-3.5度，50%": "əɹ↓ l iŋ↑ əɹ↓ sɹ↓ n jɛn↑ , f u↓ s an→ t⁼ jɛn↓↑ u↓↑ t⁼ u↓ , p⁼ aɪ↓↑ f ən→ ts`⁼ɹ→ "
    "u↓↑ s`ɹ↑",
    # ü finals after l/n/j/q/x and y; iong.
    "略绿女雪军去用熊": "l ɥɛ↓ l ɥ↓ n ɥ↓↑ ʃ ɥɛ↓↑ tʃ⁼ ɥn→ tʃʰ ɥ↓ jʊŋ↓ ʃ jʊŋ↑",
}


@pytest.mark.parametrize("text", list(MANDARIN))
def test_mandarin_hand_checked(text):
    assert " ".join(text_to_phones(text, "zh")) == MANDARIN[text]


def test_syllables():
    assert syllable_symbols("bo", 2) == ("p⁼wo↑",)
    assert syllable_symbols("zhi", 1) == ("ts`⁼ɹ→",)
    assert syllable_symbols("si", 5) == ("s",)  # neutral: no "ɹ", as in the reference
    assert syllable_symbols("jiong", 3) == ("tʃ⁼", "jʊŋ↓↑")
    assert syllable_symbols("xian", 1) == ("ʃ", "jɛn→")
    assert syllable_symbols("gui", 4) == ("k⁼", "ueɪ↓")
    assert syllable_symbols("wen", 2) == ("uən↑",)
    assert syllable_symbols("er", 3) == ("əɹ↓↑",)
    assert syllable_symbols("qq", 1) is None
    assert merge_words(["看", "一", "看", "一", "个", "不", "好", "花", "儿"]) == [
        "看一看",
        "一个",
        "不好",
        "花儿",
    ]


def test_mixed_and_segmentation():
    assert split_runs(" 2024年我爱Python编程, it's fun.") == [
        (" 2024年我爱", "zh"),
        ("Python", "en"),
        ("编程, ", "zh"),
        ("it's fun.", "en"),
    ]
    expected = "uo↓↑ aɪ↓ p aɪ θ ə n _ p⁼ jɛn→ ts`ʰ əŋ↑ , ɪ t ' ɛ s _ f ʌ n ."
    for language in ("auto", "en", "zh"):  # CJK runs go through Mandarin whatever the mixed language
        assert " ".join(text_to_phones("我爱Python编程, it's fun.", language)) == expected
    # A text with neither letters nor CJK is read in the asked language.
    assert text_to_phones("2024", "zh") == "əɹ↓ tʃʰ jɛn→ l iŋ↑ əɹ↓ s`ɹ↑ sɹ↓".split()  # 二千零二十四
    # Full-width letters and digits are read (the reference deletes them).
    assert text_to_phones("ＯＫ", "en") == text_to_phones("OK", "en")


def test_french_and_german_map_into_vocabulary():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownPhoneWarning)
        french = text_to_phones("Un bon vin blanc, merci!", "fr")
        german = text_to_phones("Schöne Grüße aus München, Pfeffer und Öl.", "de")
    assert french == "œ ̃ _ b ɔ̃ _ v ɛ ̃ _ b l ɑ̃ , m ɛ ʁ s i !".split()
    assert german == "ʃ ø ː n ə _ ɡ ɾ y ː s ə _ aʊ s _ m y n ç ə n , p f ɛ f ɜ _ ʊ n t _ ø ː l .".split()


def test_phone_input_and_inline_spans():
    assert phones_to_ids("h ə l oʊ") == phones_to_ids(["h", "ə", "l", "oʊ"]) == [41, 57, 50, 23]
    assert text_to_ids("h|ə|l|oʊ", "phones") == [41, 57, 50, 23]
    assert text_to_phones("Say {h ə l oʊ _} now.") == "s eɪ _ h ə l oʊ _ n aʊ .".split()
    assert ids_to_symbols(text_to_ids("你{n i↓↑}好", "zh")) == "n i↓↑ n i↓↑ x ɑʊ↓↑".split()
    with pytest.raises(ValueError, match="not MaskGCT phones: zz"):
        text_to_ids("Say {h zz}")


def test_errors_and_unknown_characters():
    with pytest.warns(UnknownPhoneWarning, match=r"'ã' x2"):
        assert text_to_phones("中文ãã", "zh") == "ts`⁼ ʊŋ→ uən↑".split()
    with pytest.raises(ValueError, match="unknown language 'xx'"):
        text_to_ids("hello", "xx")
    with pytest.raises(ValueError, match="nothing pronounceable"):
        text_to_ids("。！", "zh")
    with pytest.raises(ValueError, match="must be a string"):
        text_to_ids(None)
    with pytest.raises(ValueError, match="list of texts"):
        texts_to_ids("one text")


def test_cli(capsys):
    assert main(["Hi.", "-l", "en"]) == 0
    assert "phones: h aɪ .\nids:    41 20 1" in capsys.readouterr().out
    assert main(["你好", "--language", "zh", "--ids-only"]) == 0
    assert capsys.readouterr().out.split() == ["45", "271", "81", "239"]
    assert main(["..."]) == 2
    assert capsys.readouterr().err.startswith("error: nothing pronounceable")
