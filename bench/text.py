"""Text frontend speed: sentences per second after start-up, batched and one by one.

    python bench/text.py [--sentences 2000]

English uses the 152 reference sentences of the fixtures (../shared/fixtures/amphion/g2p_en.json, or
MASKGCT_FIXTURES) when present. Mandarin and mixed use a small built-in set, repeated: jieba and pypinyin
results are cached per word, which a real corpus with its common words also benefits from.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from maskgct.text import text_to_ids, texts_to_ids

ENGLISH = [
    "The birch canoe slid on the smooth planks.",
    "It costs $5.99 at the store, about 50% less than in 1999.",
    "Dr. Smith will see you now; bring the 3rd report.",
    "In this paper, we introduce MaskGCT, a fully non-autoregressive TTS model.",
]
MANDARIN = [
    "我们一起去银行，看一看这个长城。",
    "今天天气很好，我们去公园散步吧。",
    "这个问题不太容易回答，需要仔细想一想。",
    "二零二四年三月五日，温度是零下三度。",
    "他说他明天不来了，因为要加班。",
    "人工智能正在改变我们的生活方式。",
]
MIXED = [
    "我爱Python编程, it's fun.",
    "这个model的performance非常好。",
    "Please打开window，谢谢。",
    "我们用GPU训练了三天。",
]


def english_sentences() -> list[str]:
    default = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "amphion"
    path = Path(os.environ.get("MASKGCT_FIXTURES", default)) / "g2p_en.json"
    if path.is_file():
        return [it["text"] for it in json.loads(path.read_text(encoding="utf-8"))["items"] if "ids" in it]
    return ENGLISH


def rate(texts: list[str], language: str, batched: bool) -> float:
    start = time.perf_counter()
    if batched:
        texts_to_ids(texts, language)
    else:
        for text in texts:
            text_to_ids(text, language)
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=2000)
    args = parser.parse_args()
    start = time.perf_counter()
    for language, texts in (("en", ENGLISH), ("zh", MANDARIN), ("auto", MIXED)):
        texts_to_ids(texts, language)  # start-up: espeak, inflect, jieba dictionary, pypinyin
    print(f"start-up (first call of each language): {time.perf_counter() - start:.2f} s")
    for name, language, base in (
        ("English", "en", english_sentences()),
        ("Mandarin", "zh", MANDARIN),
        ("mixed zh/en", "auto", MIXED),
    ):
        texts = (base * (args.sentences // len(base) + 1))[: args.sentences]
        batched, single = rate(texts, language, True), rate(texts, language, False)
        print(
            f"{name:12s} {len(texts)} sentences: batched {batched:7.0f} sentences/s "
            f"({batched / 1000:.1f}x the 1000/s target), one by one {single:7.0f} sentences/s"
        )


if __name__ == "__main__":
    main()
