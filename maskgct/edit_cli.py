"""Speech editing from the command line (``python -m maskgct.edit``): change the words of a recording.

    python -m maskgct.edit --audio in.wav --text "what the recording says" \\
        --new-text "what it should say" --out out.wav [--checkpoint DIR|HUB_ID] [--seed N] \\
        [--mode reference|fast] [--steps 25] [--s2a-steps 25,10,1,...] [--duration SECONDS]

Replacements, insertions and deletions of whole words, several in one call; the plan (which words, the
original time span, the new length) is printed. Without ``--checkpoint`` the default model is used. Bad
input gives one ``error: ...`` line and exit code 2, and no output file.
"""

from __future__ import annotations

import argparse
import sys
import time

from maskgct.cli import DEVICE_HELP, MODE_HELP, finite_float, parse_steps, run_audio_command, stderr_log
from maskgct.constants import MAX_SECONDS
from maskgct.infer import check_output, load_model, write_wav


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m maskgct.edit",
        description="Change the words of a recording, in its speaker's voice; the rest stays as it was.",
    )
    parser.add_argument("--audio", required=True, help=f"the recording (at most {MAX_SECONDS:g} s)")
    parser.add_argument("--text", required=True, help="what the recording says (its transcript)")
    parser.add_argument("--new-text", required=True, help="what it should say instead")
    parser.add_argument("--out", required=True, help="output wav (24 kHz)")
    parser.add_argument("--checkpoint", help="checkpoint folder or hub id (default: the embedded model)")
    parser.add_argument("--seed", type=int, help="random seed (reproducible output)")
    parser.add_argument("--mode", choices=("reference", "fast"), default="reference", help=MODE_HELP)
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument(
        "--duration",
        type=finite_float,
        help="seconds of the new words (one span; default: the recording's pace)",
    )
    parser.add_argument("--steps", type=int, help="T2S decoding steps (default 25)")
    parser.add_argument(
        "--s2a-steps", type=parse_steps, help="S2A steps per acoustic layer (default 25,10,1,...)"
    )
    parser.add_argument("--language", default="en", help="language of the texts (the aligner: en)")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")
    return parser


def describe(span) -> str:
    """One line of the plan: ``0.84-1.20 s "small" -> "very small" (0.36 s -> 0.52 s)``."""
    old, new = " ".join(span.old_words), " ".join(span.new_words)
    return (
        f"{span.start_s:.2f}-{span.end_s:.2f} s {old!r} -> {new!r} "
        f"({span.end_s - span.start_s:.2f} s -> {span.new_seconds:.2f} s)"
    )


def run(args: argparse.Namespace, log) -> int:
    from maskgct.edit import edit_speech
    from maskgct.edit_plan import prepare_edit
    from maskgct.request import sampling_options

    # Check the request (audio, texts, alignment, the 30 s budget) before spending seconds on the model.
    check_output(args.out)
    sampling_options(args.steps, args.s2a_steps, None, None, None, None)
    prepare_edit(args.audio, args.text, args.new_text, None, args.duration, args.language)
    model = load_model(args, log)
    started = time.perf_counter()
    result = edit_speech(
        model,
        args.audio,
        args.text,
        args.new_text,
        duration=args.duration,
        seed=args.seed,
        mode=args.mode,
        language=args.language,
        steps=args.steps,
        s2a_steps=args.s2a_steps,
    )
    elapsed = time.perf_counter() - started
    write_wav(args.out, result.audio, result.sample_rate)
    for span in result.spans:
        log(f"edited {describe(span)}")
    log(f"wrote {args.out}: {len(result.audio) / result.sample_rate:.2f} s of audio in {elapsed:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    log = stderr_log(args.quiet)
    return run_audio_command(lambda: run(args, log))


if __name__ == "__main__":
    sys.exit(main())
