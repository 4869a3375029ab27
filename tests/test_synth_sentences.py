"""The large sentence list: shipped, reproducible from its generator, readable by the G2P; dealing it out."""

import re
import warnings

from maskgct.data import sentences as generator
from maskgct.data import synth


def test_large_list_is_the_generators_output():
    shipped = synth.load_sentences("large")
    assert shipped == generator.generate()
    assert generator.generate(50, seed=1) == generator.generate(50, seed=1) != generator.generate(50, seed=2)


def test_cli_writes_a_longer_list_without_a_corpus_sentences(tmp_path, capsys):
    """A second corpus reads only new sentences: a longer list begins with the shorter, less excluded ones."""
    text = tmp_path / "text"
    first = generator.generate(30)
    text.write_text(f"spk-0001 {first[3]}\nspk-0007 {first[29]}\n", encoding="utf-8")
    out = tmp_path / "more.txt"
    assert generator.main([str(out), "--count", "60", "--exclude", str(text)]) == 0
    written = out.read_text(encoding="utf-8").splitlines()
    assert written == [s for s in generator.generate(60) if s not in (first[3], first[29])]
    assert written[:3] == first[:3] and len(written) == 58
    assert generator.main([str(tmp_path / "x.txt"), "--exclude", str(tmp_path / "missing")]) == 2
    assert "error:" in capsys.readouterr().err and not (tmp_path / "x.txt").exists()


def test_large_list_is_large_distinct_and_plain():
    sentences = synth.load_sentences("large")
    assert len(sentences) == len(set(sentences)) == generator.LARGE_COUNT >= 5000
    assert all(4 <= len(s.split()) <= 20 for s in sentences)
    assert all(re.fullmatch(r"[A-Z][A-Za-z ,;]*[.?!]", s) for s in sentences)
    ends = {mark: sum(s.endswith(mark) for s in sentences) for mark in ".?!"}
    assert min(ends.values()) > 200 and sum("," in s for s in sentences) > 1000


def test_every_sentence_passes_the_g2p():
    from maskgct.text import UnknownPhoneWarning, ids_to_symbols, texts_to_ids

    sentences = synth.load_sentences("large")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownPhoneWarning)
        ids = texts_to_ids(sentences, "en")
    assert all(len(seq) > 10 for seq in ids)
    phones = {symbol for seq in ids for symbol in ids_to_symbols(seq)}
    assert {"ʒ", "θ", "ð", "ɔɪ", "aʊ", "ʊ", "ŋ", "tʃ", "dʒ", "ɜː", "ʊɹ", "ɛɹ", "ɪɹ"} <= phones


def test_distinct_sentences_deals_different_sentences_to_each_voice():
    sentences = [f"Sentence number {k}." for k in range(100)]
    voices = [synth.Voice(f"v{k}", "espeak", "en") for k in range(4)]
    counts = {"v0": 30, "v1": 30, "v2": 30, "v3": 10}
    dealt = synth.distinct_sentences(voices, sentences, counts)
    assert {name: len(chosen) for name, chosen in dealt.items()} == counts
    numbers = [n for chosen in dealt.values() for n, _ in chosen]
    assert len(set(numbers)) == 100 and all(sentences[n] == text for c in dealt.values() for n, text in c)
    # The voices' order does not matter; too many asked for wraps around with the fewest repeats.
    assert synth.distinct_sentences(voices[::-1], sentences, counts) == dealt
    wrapped = synth.distinct_sentences(voices, sentences, {"v0": 60, "v1": 60, "v2": 60, "v3": 60})
    assert len({n for chosen in wrapped.values() for n, _ in chosen}) == 100
