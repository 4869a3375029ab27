"""English G2P against the official reference (fixtures g2p_en.json / phone_vocab.json)."""

import json
import warnings

import pytest

from maskgct.text import UnknownPhoneWarning, phone_list, text_to_ids, text_to_phones, texts_to_ids
from maskgct.text.espeak import espeak_version

# Sentences where our default mode differs from the reference on purpose, with the reason.
# (strict_reference=True reproduces all of them.)
DIFFERS_BY_DEFAULT = {
    "Salt & pepper, please.": "'&' is read as 'and' (the reference deletes it)",
    "Cats + dogs = chaos.": "'+' and '=' are read as 'plus' and 'equals' (deleted by the reference)",
    "Send it to info@example.com today.": "'@' is read as 'at' (deleted by the reference)",
    "The #1 rule is: have fun.": "'#1' is read as 'number one' (the reference deletes '#')",
    "Line one.\nLine two.": "a line break is a space (the reference loses the 'l' after it)",
}


@pytest.fixture(scope="module")
def reference(fixtures):
    data = json.loads((fixtures / "g2p_en.json").read_text(encoding="utf-8"))
    assert data["espeak_ng_version"] == espeak_version() == "1.52.0"
    return data["items"]


def test_inventory_is_the_official_vocabulary(fixtures):
    vocab = json.loads((fixtures / "phone_vocab.json").read_text(encoding="utf-8"))["vocab"]
    assert len(phone_list()) == len(vocab) == 363
    assert {symbol: index for index, symbol in enumerate(phone_list())} == vocab


def _match_rate(items, ids, label):
    matches = sum(it["ids"] == got for it, got in zip(items, ids, strict=True))
    print(f"\n{label}: {matches}/{len(items)} sentences with ids identical to the reference "
          f"({100 * matches / len(items):.1f}%)")  # fmt: skip
    return matches


def test_strict_reference_ids_identical(reference):
    items = [it for it in reference if "ids" in it]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownPhoneWarning)  # the reference's own lost "\nl"
        ids = texts_to_ids([it["text"] for it in items], "en", strict_reference=True)
    assert _match_rate(items, ids, "strict_reference") == len(items)


def test_default_ids_identical_except_listed(reference):
    items = [it for it in reference if "ids" in it]
    ids = texts_to_ids([it["text"] for it in items], "en")
    _match_rate(items, ids, "default")
    different = {it["text"] for it, got in zip(items, ids, strict=True) if it["ids"] != got}
    assert different == set(DIFFERS_BY_DEFAULT)
    line_break = next(got for it, got in zip(items, ids, strict=True) if it["text"] == "Line one.\nLine two.")
    assert text_to_phones("Line one.\nLine two.")[8:10] == ["l", "aɪ"] and len(line_break) == 15


def test_batch_equals_one_by_one(reference):
    texts = [it["text"] for it in reference if "ids" in it][::10]
    assert texts_to_ids(texts) == [text_to_ids(text) for text in texts]


def test_reference_failures_are_read_or_rejected_clearly(reference):
    errors = {it["text"]: it["error"] for it in reference if "error" in it}
    assert set(errors) == {"2024", "123.", "...", ""}
    assert text_to_phones("2024") == "t w ɛ n t i _ t w ɛ n t ɪ f ɔːɹ".split()
    assert text_to_phones("123.") == "w ʌ n _ h ʌ n dɹ ɪ d _ t w ɛ n t ɪ θ ɹ iː .".split()
    for text in ("...", "", "   "):
        with pytest.raises(ValueError, match="nothing pronounceable"):
            text_to_ids(text)


def test_unknown_phones_are_reported_not_silently_dropped():
    with pytest.warns(UnknownPhoneWarning, match=r"'\\nl' x1"):
        text_to_ids("Line one.\nLine two.", strict_reference=True)
