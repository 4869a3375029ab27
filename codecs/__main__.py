"""``python -m maskgct.codecs encode|decode``: audio files ⇄ acoustic codes with a saved acoustic codec.

    python -m maskgct.codecs encode speech.flac speech.codes.safetensors --model DIR
    python -m maskgct.codecs decode speech.codes.safetensors speech.wav --model DIR

``DIR`` is a folder written by ``AcousticCodec.save_pretrained`` or ``MelCodec.save_pretrained``
(``load_acoustic_codec`` tells them apart). Any input rate and channel count is read as 24 kHz mono. A codes
file holds ``codes`` int64 ``(T, N)`` and, as metadata, the sample rate, the hop and the input's length in
samples; the decoded file is 24 kHz mono float WAV of ``T · 480`` samples (the codec's native length, which
may differ from the input's by less than one frame).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import soundfile as sf
import torch
from safetensors.torch import save_file

from maskgct.audio import load_audio
from maskgct.checkpoint import read_safetensors
from maskgct.cli import DEVICE_HELP, pick_device, report_error
from maskgct.codecs.acoustic_codec import load_acoustic_codec
from maskgct.constants import SAMPLE_RATE

# What each command writes, by file name ending: checked before the codec loads.
OUTPUT_SUFFIXES = {"encode": (".safetensors",), "decode": (".wav", ".flac")}


def check_output(command: str, path: Path) -> None:
    if path.is_dir():
        raise ValueError(f"output {path} is a directory: name a file")
    if path.suffix.lower() not in OUTPUT_SUFFIXES[command]:
        raise ValueError(f"output {path}: give a file name ending in {' or '.join(OUTPUT_SUFFIXES[command])}")


def write_atomic(path: Path, write) -> None:
    """``write(temporary_path)`` beside ``path``, then rename: an interrupted run leaves no partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def encode(args: argparse.Namespace) -> None:
    codec = load_acoustic_codec(args.model, args.device)
    with warnings.catch_warnings():
        # librosa warns before its fallback reader fails; the error that follows says it all.
        warnings.simplefilter("ignore", (UserWarning, FutureWarning))
        wav = torch.from_numpy(load_audio(args.input, SAMPLE_RATE)).to(args.device)
    codes = codec.encode(wav[None, None])[0]
    if args.n_quantizers is not None:
        if not 1 <= args.n_quantizers <= codes.shape[1]:
            raise ValueError(f"--n-quantizers must lie in 1..{codes.shape[1]}")
        codes = codes[:, : args.n_quantizers]
    metadata = {
        "sample_rate": str(SAMPLE_RATE),
        "hop_length": str(codec.hop_length),
        "num_samples": str(wav.shape[0]),
    }
    codes = codes.cpu().contiguous()
    write_atomic(args.output, lambda path: save_file({"codes": codes}, str(path), metadata=metadata))
    print(f"{args.output}: {codes.shape[0]} frames x {codes.shape[1]} codes", file=sys.stderr)


def decode(args: argparse.Namespace) -> None:
    codec = load_acoustic_codec(args.model, args.device)
    if not Path(args.input).is_file():
        raise ValueError(f"codes file not found: {args.input}")
    codes = read_safetensors(args.input).get("codes")
    if codes is None:
        raise ValueError(f"{args.input} is not a codes file (no 'codes' tensor)")
    if codes.ndim != 2:
        raise ValueError(f"{args.input}: codes must have shape (T, N), got {tuple(codes.shape)}")
    wav = codec.decode(codes[None].to(args.device))[0, 0]
    audio, kind = wav.cpu().numpy(), args.output.suffix[1:].upper()
    write_atomic(
        args.output, lambda path: sf.write(str(path), audio, SAMPLE_RATE, subtype="FLOAT", format=kind)
    )
    print(f"{args.output}: {wav.shape[0] / SAMPLE_RATE:.2f} s", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m maskgct.codecs", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, run, help_text in (
        ("encode", encode, "audio file -> codes file (.safetensors)"),
        ("decode", decode, "codes file -> 24 kHz WAV"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("input", type=Path)
        command.add_argument("output", type=Path)
        command.add_argument(
            "--model", required=True, type=Path, help="acoustic or mel codec folder (save_pretrained)"
        )
        command.add_argument("--device", default="auto", help=DEVICE_HELP)
        if name == "encode":
            command.add_argument("--n-quantizers", type=int, help="keep only the first N code layers")
        command.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_output(args.command, args.output)
        args.device = pick_device(args.device)
        with torch.inference_mode():
            args.run(args)
    except (ValueError, OSError, RuntimeError) as err:  # AudioError and CheckpointError are ValueErrors
        return report_error(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
