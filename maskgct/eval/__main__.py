"""``python -m maskgct.eval``: score generated speech listed in a seed-tts-eval meta list, write a report."""

from __future__ import annotations

import argparse
import sys

from maskgct.cli import DEVICE_HELP, pick_device, report_error
from maskgct.eval.asr import DEFAULT_ASR_MODEL
from maskgct.eval.meta import FORMAT, meta_from_datadir, read_meta, write_meta
from maskgct.eval.runner import METRICS, evaluate
from maskgct.eval.speaker import DEFAULT_SPEAKER_MODEL
from maskgct.eval.wer import DEFAULT_NORMALISER, NORMALISERS


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m maskgct.eval",
        description="WER, speaker similarity, DNSMOS, duration ratio and RTF of generated speech, offline.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--meta", help=f"seed-tts-eval meta list: {FORMAT}")
    source.add_argument(
        "--data-dir", help="Kaldi data dir instead: each utterance prompted by the speaker's next one"
    )
    parser.add_argument(
        "--write-meta", help="only write the meta list (e.g. from --data-dir) here, then stop"
    )
    parser.add_argument(
        "--gen-dir",
        help="folder of generated <utt>.wav files; omitted: score the meta list's gt_wav recordings",
    )
    parser.add_argument("--out", help="report folder (results.csv, summary.md, summary.json, report.png)")
    parser.add_argument(
        "--metrics", default=",".join(METRICS), help=f"comma-separated subset of {','.join(METRICS)}"
    )
    parser.add_argument("--lang", default="en", help="text language: en (WER) or zh (CER); default en")
    parser.add_argument(
        "--normalise",
        choices=NORMALISERS,
        default=DEFAULT_NORMALISER,
        help="WER text normalisation: maskgct (default: every Unicode punctuation and symbol dropped, ’ read "
        "as ') or seed-tts (seed-tts-eval's, for figures comparable with the papers)",
    )
    parser.add_argument(
        "--asr-model",
        default=DEFAULT_ASR_MODEL,
        help="faster-whisper model name or CTranslate2 folder; default the bundled, offline tiny.en",
    )
    parser.add_argument(
        "--asr-compute-type",
        default="auto",
        help="CTranslate2 compute type: auto (int8 on CPU), float32, ...",
    )
    parser.add_argument(
        "--sim-model",
        default=DEFAULT_SPEAKER_MODEL,
        help="'resemblyzer' (default, offline) or a TorchScript speaker encoder file (e.g. WavLM-ECAPA)",
    )
    parser.add_argument(
        "--device", default="auto", help=f"for whisper and the speaker encoder: {DEVICE_HELP}"
    )
    parser.add_argument(
        "--timings",
        help="'<utt> <synthesis seconds>' lines for RTF; default <gen-dir>/timings.txt if present",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    metrics = tuple(name.strip() for name in args.metrics.split(",") if name.strip())
    try:
        entries = read_meta(args.meta) if args.meta else meta_from_datadir(args.data_dir)
        if args.write_meta:
            write_meta(args.write_meta, entries)
            print(f"wrote {len(entries)} lines to {args.write_meta}")
            return 0
        summary = evaluate(
            entries,
            args.gen_dir,
            args.out,
            metrics=metrics,
            language=args.lang,
            asr_model=args.asr_model,
            sim_model=args.sim_model,
            device=pick_device(args.device),
            asr_compute_type=args.asr_compute_type,
            timings=args.timings,
            progress=not args.no_progress,
            normaliser=args.normalise,
        )
    except ValueError as error:  # every bad-input error of maskgct.eval is a ValueError with a plain message
        return report_error(error)
    for utt, reason in summary.get("failed", {}).items():
        print(f"warning: not scored: {utt}: {reason}", file=sys.stderr)
    for key, value in summary.items():
        if isinstance(value, float):
            print(f"{key:>14s}  {value:.4f}")
        elif isinstance(value, int):
            print(f"{key:>14s}  {value}")
    for name, seconds in summary["seconds_per_utt"].items():
        print(f"{'s/utt ' + name:>14s}  {seconds:.3f}")
    if args.out:
        print(f"report written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
