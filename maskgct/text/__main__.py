"""python -m maskgct.text "some text" [...]: print the MaskGCT phones and ids of each text."""

from __future__ import annotations

import argparse
import sys
import warnings

from maskgct.cli import report_error
from maskgct.text.frontend import texts_to_phones
from maskgct.text.inventory import symbols_to_ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maskgct.text", description=__doc__)
    parser.add_argument("texts", nargs="+", help='texts to convert ("-" reads one text per line from stdin)')
    parser.add_argument(
        "-l", "--language", default="en", help="en, zh, auto, fr, de, phones, ... (default: en)"
    )
    parser.add_argument("--strict-reference", action="store_true", help="reproduce the official ids exactly")
    parser.add_argument("--ids-only", action="store_true", help="print only the ids, one text per line")
    args = parser.parse_args(argv)
    texts = [line.rstrip("\n") for line in sys.stdin] if args.texts == ["-"] else args.texts
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            results = texts_to_phones(texts, args.language, args.strict_reference)
        except ValueError as error:
            return report_error(error)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    for text, phones in zip(texts, results, strict=True):
        ids = " ".join(str(i) for i in symbols_to_ids(phones))
        if args.ids_only:
            print(ids)
        else:
            print(f"text:   {text}\nphones: {' '.join(phones)}\nids:    {ids}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
