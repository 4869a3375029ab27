"""Voice conversion from the command line (``python -m maskgct.vc``): a recording said in another voice.

    python -m maskgct.vc --source src.wav --reference ref.wav --out out.wav [--checkpoint DIR|HUB_ID] \\
        [--seed N] [--mode reference|fast] [--steps 25,10,1,...] [--cfg 2.5] [--temperature 1.5]
    python -m maskgct.vc --batch pairs.tsv --out-dir DIR                  # many conversions

A batch list has one ``utt<TAB>source_wav<TAB>reference_wav`` line per conversion (relative paths are read
relative to the list's folder) and gives ``DIR/<utt>.wav``. The reference needs no transcript. Without
``--checkpoint`` the default model is used. Bad input gives one ``error: ...`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from maskgct.cli import (
    DEVICE_HELP,
    MODE_HELP,
    finite_float,
    parse_steps,
    report_error,
    run_audio_command,
    stderr_log,
)
from maskgct.constants import MAX_OUTPUT_SECONDS, MAX_SECONDS
from maskgct.infer import check_output, load_model, write_wav


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m maskgct.vc",
        description="Say what a source recording says in the voice of a reference.",
    )
    parser.add_argument("--source", help=f"what to say: a recording of up to {MAX_OUTPUT_SECONDS:g} s")
    parser.add_argument("--reference", help="the voice: a few seconds (3-15 s) of the target speaker")
    parser.add_argument("--out", help="output wav (24 kHz, the source's length)")
    parser.add_argument("--batch", metavar="PAIRS_TSV", help="utt<TAB>source<TAB>reference lines")
    parser.add_argument("--out-dir", help="output folder for --batch (one <utt>.wav per line)")
    parser.add_argument("--checkpoint", help="checkpoint folder or hub id (default: the embedded model)")
    parser.add_argument("--seed", type=int, help="random seed (reproducible output)")
    parser.add_argument("--mode", choices=("reference", "fast"), default="reference", help=MODE_HELP)
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument(
        "--steps", type=parse_steps, help="S2A steps per acoustic layer (default 25,10,1,...)"
    )
    parser.add_argument("--cfg", type=finite_float, help="S2A guidance weight (default 2.5)")
    parser.add_argument("--temperature", type=finite_float, help="S2A sampling temperature (default 1.5)")
    parser.add_argument("--window", type=finite_float, default=MAX_SECONDS,
                        help="reference plus one chunk of the source at most, in seconds (default "
                        f"{MAX_SECONDS:g}, what the models were trained on)")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors (exit 2 through argparse, one line)."""
    if args.batch:
        single = [f"--{name}" for name in ("source", "reference", "out") if getattr(args, name) is not None]
        if single:
            parser.error(f"--batch reads sources and references from the list; drop {' '.join(single)}")
        if not args.out_dir:
            parser.error("--batch needs --out-dir")
        return
    if args.out_dir:
        parser.error("--out-dir goes with --batch; for one conversion use --out")
    for flag, value in (("--source", args.source), ("--reference", args.reference), ("--out", args.out)):
        if not value:
            parser.error(f"{flag} is required (or use --batch)")


def read_pairs(path: str | Path) -> list[tuple[str, Path, Path]]:
    """``[(utt, source, reference)]`` of a batch list; blank lines skipped, relative paths resolved against
    the list's folder. Raises ``ValueError`` naming the line of a malformed or repeated entry."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"batch list not found: {path}")
    base = path.resolve().parent
    pairs, seen = [], {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split("\t")]
        if len(fields) != 3 or not all(fields):
            raise ValueError(f"{path}:{line_no}: expected utt<TAB>source_wav<TAB>reference_wav")
        utt, source, reference = fields
        if "/" in utt or utt in (".", ".."):
            raise ValueError(f"{path}:{line_no}: utterance id {utt!r} must be a plain file name stem")
        if utt in seen:
            raise ValueError(f"{path}:{line_no}: utterance id {utt!r} repeats line {seen[utt]}")
        seen[utt] = line_no
        pairs.append((utt, base / Path(source).expanduser(), base / Path(reference).expanduser()))
    if not pairs:
        raise ValueError(f"batch list is empty: {path}")
    return pairs


def conversion_kwargs(args: argparse.Namespace) -> dict:
    return {
        "seed": args.seed,
        "mode": args.mode,
        "steps": args.steps,
        "cfg": args.cfg,
        "temperature": args.temperature,
        "window_seconds": args.window,
        "max_source_seconds": MAX_OUTPUT_SECONDS,
    }


def run_single(args: argparse.Namespace, log) -> int:
    from maskgct.request import MIN_PROMPT_SECONDS
    from maskgct.vc import MIN_CHUNK_SECONDS, MIN_SOURCE_SECONDS, check_window, convert_voice, load_clip

    # Check the request before spending seconds on loading the model.
    check_output(args.out)
    check_window(args.window)
    load_clip(args.source, None, "source", MIN_SOURCE_SECONDS, MAX_OUTPUT_SECONDS)
    load_clip(args.reference, None, "reference", MIN_PROMPT_SECONDS, args.window - MIN_CHUNK_SECONDS)
    model = load_model(args, log)
    started = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        if total > 1:
            log(f"{stage}: chunk {done}/{total}")

    result = convert_voice(model, args.source, args.reference, progress=progress, **conversion_kwargs(args))
    elapsed = time.perf_counter() - started
    write_wav(args.out, result.audio, result.sample_rate)
    seconds = len(result.audio) / result.sample_rate
    chunks = f" in {len(result.chunks)} chunks" if len(result.chunks) > 1 else ""
    log(
        f"wrote {args.out}: {seconds:.2f} s of audio{chunks} in {elapsed:.1f} s (RTF {elapsed / seconds:.2f})"
    )
    return 0


def run_batch(args: argparse.Namespace, log) -> int:
    from tqdm import tqdm

    from maskgct.vc import check_window, convert_voice, encode_reference

    check_window(args.window)
    pairs = read_pairs(args.batch)
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out-dir {out_dir} is a file: name a folder")
    model = load_model(args, log)
    kwargs = conversion_kwargs(args)
    references = {}  # a reference used by several lines is encoded once
    failed = []
    for utt, source, reference in tqdm(pairs, disable=args.quiet, unit="utt", file=sys.stderr):
        try:
            if reference not in references:
                references[reference] = encode_reference(model, reference, window_seconds=args.window)
            result = convert_voice(model, source, references[reference], **kwargs)
        except ValueError as err:
            failed.append(utt)
            log(f"{utt}: skipped: {err}")
            continue
        write_wav(out_dir / f"{utt}.wav", result.audio, result.sample_rate)
    log(f"wrote {len(pairs) - len(failed)} of {len(pairs)} conversions to {out_dir}")
    if failed:
        return report_error(f"{len(failed)} of {len(pairs)} conversions failed (first: {failed[0]})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)

    log = stderr_log(args.quiet)
    return run_audio_command(lambda: run_batch(args, log) if args.batch else run_single(args, log))


if __name__ == "__main__":
    sys.exit(main())
