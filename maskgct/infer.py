"""Zero-shot voice cloning from the command line.

    python -m maskgct.infer --prompt ref.wav --prompt-text "What the prompt says." \\
        --text "What to say." --out out.wav [--checkpoint DIR|HUB_ID] [--duration rule|auto|SECONDS] \\
        [--speed 1.0] [--seed N] [--mode reference|fast] [--device auto|cpu|cuda] [--steps 25] \\
        [--s2a-steps 25,10,1,...]
    python -m maskgct.infer ... --text-file story.txt --out story.wav      # long text, split into chunks
    python -m maskgct.infer --batch meta.lst --out-dir DIR                 # seed-tts-eval meta list

Without ``--prompt-text`` the prompt is transcribed by whisper tiny.en (said on stderr; a transcript you give
is better); a prompt over 15 s is trimmed at a pause. A meta list has one
``utt|prompt_text|prompt_wav|target_text[|gt_wav]`` line per utterance and gives ``DIR/<utt>.wav`` and
``DIR/timings.txt`` (``<utt> <synthesis seconds>`` lines: the evaluation's RTF column). Without
``--checkpoint`` the default model is used (``$MASKGCT_DEFAULT_CHECKPOINT`` or ``checkpoints/default``).
Bad input gives one ``error: ...`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from maskgct.cli import (
    DEVICE_HELP,
    MODE_HELP,
    finite_float,
    parse_steps,
    pick_device,
    report_error,
    run_audio_command,
    stderr_log,
)
from maskgct.constants import MAX_OUTPUT_SECONDS


def parse_duration(value: str) -> str | float:
    if value in ("rule", "auto"):
        return value
    seconds = finite_float(value)
    if not 0 < seconds <= MAX_OUTPUT_SECONDS:
        raise argparse.ArgumentTypeError(
            f"the duration must be more than 0 and at most {MAX_OUTPUT_SECONDS:g} seconds, not {value}"
        )
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m maskgct.infer", description="Speak a text in the voice of a short prompt recording."
    )
    parser.add_argument("--prompt", help="prompt audio: 3-15 s of the voice to clone (longer: trimmed)")
    parser.add_argument(
        "--prompt-text", help="transcript of the prompt audio (default: whisper tiny.en's; yours is better)"
    )
    text = parser.add_mutually_exclusive_group()
    text.add_argument("--text", help="the text to speak")
    text.add_argument("--text-file", help="read the text to speak from this UTF-8 file")
    parser.add_argument("--out", help="output wav (24 kHz)")
    parser.add_argument(
        "--batch", metavar="META_LST", help="seed-tts-eval meta list (instead of --prompt...)"
    )
    parser.add_argument("--out-dir", help="output folder for --batch (one <utt>.wav per line)")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="--batch: lines decoded together in one padded batch (default 1; timings.txt "
                        "then gives each its share of the batch's time)")  # fmt: skip
    parser.add_argument("--checkpoint", help="checkpoint folder or hub id (default: the embedded model)")
    parser.add_argument("--duration", type=parse_duration, default="rule",
                        help="'rule' (the prompt's speaking rate; default), 'auto' or seconds")  # fmt: skip
    parser.add_argument("--speed", type=finite_float, default=1.0, help="> 1 speaks faster (default 1.0)")
    parser.add_argument("--seed", type=int, help="random seed (reproducible output)")
    parser.add_argument("--mode", choices=("reference", "fast"), default="reference", help=MODE_HELP)
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--language", default="en", help="language of the text (en, zh, ...; default en)")
    parser.add_argument("--prompt-language", help="language of the prompt text (default: --language)")
    parser.add_argument("--steps", type=int, help="T2S decoding steps (default 25)")
    parser.add_argument("--cfg", type=finite_float, help="T2S guidance weight (default 2.5)")
    parser.add_argument("--temperature", type=finite_float, help="T2S sampling temperature (default 0.9)")
    parser.add_argument(
        "--s2a-steps", type=parse_steps, help="S2A steps per acoustic layer (default 25,10,1,...)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors (exit 2 through argparse, one line)."""
    if args.batch:
        names = ("prompt", "prompt_text", "text", "text_file", "out")
        single = ["--" + n.replace("_", "-") for n in names if getattr(args, n) is not None]
        if single:
            parser.error(f"--batch reads prompts and texts from the meta list; drop {' '.join(single)}")
        if not args.out_dir:
            parser.error("--batch needs --out-dir")
        if args.batch_size < 1:
            parser.error(f"--batch-size must be at least 1, not {args.batch_size}")
        return
    if args.out_dir:
        parser.error("--out-dir goes with --batch; for one utterance use --out")
    for flag, value in (("--prompt", args.prompt), ("--out", args.out)):
        if not value:
            parser.error(f"{flag} is required (or use --batch)")
    if args.text is None and args.text_file is None:
        parser.error("--text or --text-file is required")


def read_text(args: argparse.Namespace) -> str:
    if args.text_file is None:
        return args.text
    try:
        return Path(args.text_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read --text-file {args.text_file}: {err}") from None


def load_model(args: argparse.Namespace, log):
    from maskgct.api import MaskGCT
    from maskgct.checkpoint import default_checkpoint
    from maskgct.precision import load_precision

    if args.checkpoint:
        checkpoint = args.checkpoint
    else:
        checkpoint = default_checkpoint()
        log(f"no --checkpoint given: using the default model at {checkpoint}")
    device = pick_device(args.device)
    started = time.perf_counter()
    # A command runs one mode: fast mode stores its weights in bfloat16 where that is native.
    precision = load_precision(args.mode, device)
    tts = MaskGCT.from_pretrained(checkpoint, device=device, precision=precision)
    log(f"loaded {checkpoint} on {device} ({precision}) in {time.perf_counter() - started:.1f} s")
    return tts


def sampling_kwargs(args: argparse.Namespace) -> dict:
    return {
        "duration": args.duration,
        "speed": args.speed,
        "seed": args.seed,
        "mode": args.mode,
        "language": args.language,
        "prompt_language": args.prompt_language,
        "steps": args.steps,
        "cfg": args.cfg,
        "temperature": args.temperature,
        "s2a_steps": args.s2a_steps,
    }


def check_output(path: str | Path) -> None:
    """Refuse an output path that cannot take a wav, before seconds of synthesis are spent on it."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--out {path} is a directory: name a .wav file")
    if path.suffix.lower() not in (".wav", ".flac"):
        raise ValueError(f"--out {path}: give a file name ending in .wav (or .flac)")


def write_wav(path: str | Path, audio, sample_rate: int) -> None:
    """Write the audio under a temporary name beside ``path`` and rename it: never a partial file."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        sf.write(str(partial), audio, sample_rate, subtype="PCM_16", format=path.suffix[1:].upper())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Write a small text file under a temporary name and rename it, as ``write_wav`` does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def run_single(args: argparse.Namespace, log) -> int:
    from tqdm import tqdm

    from maskgct.request import load_prompt, phones_of

    text = read_text(args)
    # Check the request before spending seconds on loading the model.
    check_output(args.out)
    language = args.language
    prompt_language = args.prompt_language or language
    if args.prompt_text is not None:
        phones_of(args.prompt_text, None, prompt_language, "prompt")
    phones_of(text, None, language, "text")
    load_prompt(args.prompt, None)
    tts = load_model(args, log)
    started = time.perf_counter()
    prompt = tts.encode_prompt(args.prompt, args.prompt_text, language=prompt_language)
    for note in prompt.notes:  # trimmed or transcribed: said even with --quiet, it changes the result
        print(f"note: {note}", file=sys.stderr)
    with tqdm(total=3, disable=args.quiet, unit="stage", file=sys.stderr, leave=False) as bar:

        def progress(stage: str, done: int, total: int) -> None:
            bar.total = total
            bar.set_description(stage)
            bar.update(done - bar.n)

        result = tts.clone_with_details(prompt, text=text, progress=progress, **sampling_kwargs(args))
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

    from maskgct.api import PromptCache
    from maskgct.constants import SAMPLE_RATE
    from maskgct.eval.meta import read_meta
    from maskgct.eval.runner import TIMINGS_FILE

    entries = read_meta(args.batch)
    tts = load_model(args, log)
    kwargs = sampling_kwargs(args)
    prompts = PromptCache(tts)
    failed, timings = [], []
    out_dir = Path(args.out_dir)
    language = args.prompt_language or args.language

    def clone_group(group):
        """Entries cloned together (one padded batch per --batch-size); their time is shared equally. An
        entry that fails alone is skipped; a failing group is retried one entry at a time to find it."""
        started = time.perf_counter()
        try:
            requests = [
                dict(prompt=prompts.get(e.prompt_wav, e.prompt_text, language=language), text=e.target_text)
                for e in group
            ]
            audios = tts.clone_batch(requests, batch_size=len(group), **kwargs)
        except ValueError as err:
            if len(group) > 1:
                for entry in group:
                    clone_group([entry])
                return
            failed.append(group[0].utt)
            log(f"{group[0].utt}: skipped: {err}")
            return
        share = (time.perf_counter() - started) / len(group)
        for entry, audio in zip(group, audios, strict=True):
            timings.append(f"{entry.utt} {share:.4f}\n")
            write_wav(out_dir / f"{entry.utt}.wav", audio, SAMPLE_RATE)

    with tqdm(total=len(entries), disable=args.quiet, unit="utt", file=sys.stderr) as bar:
        for start in range(0, len(entries), args.batch_size):
            # An utterance's time includes encoding its prompt when that prompt is first used.
            group = entries[start : start + args.batch_size]
            clone_group(group)
            bar.update(len(group))
    write_text(out_dir / TIMINGS_FILE, "".join(timings))
    log(f"wrote {len(entries) - len(failed)} of {len(entries)} utterances and {TIMINGS_FILE} to {out_dir}")
    if failed:
        return report_error(f"{len(failed)} of {len(entries)} utterances failed (first: {failed[0]})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)

    log = stderr_log(args.quiet)
    return run_audio_command(lambda: run_batch(args, log) if args.batch else run_single(args, log))


if __name__ == "__main__":
    sys.exit(main())
