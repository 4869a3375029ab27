"""Acoustic codec speed and memory: encode and decode as × real time, and peak memory, per size and device.

    .venv/bin/python bench/acoustic_codec.py [--sizes tiny official] [--devices cpu cuda] [--seconds 4]

Random weights at the tiny (tests) and official (released) sizes; the input is 24 kHz noise, which costs
the same as speech. Each (size, device, operation) runs in a fresh child process, so the CPU peak is that
run's own peak resident memory (weights + activations + the torch runtime); on a GPU it is the peak of
``torch.cuda.max_memory_allocated``. "× real time" = audio seconds / wall seconds (above 1 is faster than
real time). Results are printed as a table and written to ``bench/results/acoustic_codec.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 24000


def build_codec(size: str, device: str):
    from maskgct.codecs.acoustic_codec import AcousticCodec, AcousticCodecConfig
    from maskgct.train.__main__ import model_config

    model = model_config(f"acoustic_codec_{size}")
    config = AcousticCodecConfig(encoder=model.get("encoder", {}), decoder=model.get("decoder", {}))
    return AcousticCodec(config).to(device).eval()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def child(size: str, device: str, operation: str, seconds: float, repeats: int) -> dict:
    """One measurement in this (fresh) process."""
    torch.manual_seed(0)
    codec = build_codec(size, device)
    wav = 0.1 * torch.randn(1, 1, int(seconds * SAMPLE_RATE), device=device)
    # Random codes for decoding, so that the encoder's memory never counts in the decoder's peak.
    shape = (1, wav.shape[-1] // codec.hop_length, codec.num_quantizers)
    codes = torch.randint(0, codec.decoder.config.codebook_size, shape, device=device)
    with torch.inference_mode():
        # Warm-up on half a second (first-call allocations, kernel selection).
        codec.encode(wav[..., : SAMPLE_RATE // 2]) if operation == "encode" else codec.decode(codes[:, :25])
        sync(device)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        run = (lambda: codec.encode(wav)) if operation == "encode" else (lambda: codec.decode(codes))
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            sync(device)
            times.append(time.perf_counter() - start)
    if device.startswith("cuda"):
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    best = min(times)
    return {
        "size": size,
        "device": device,
        "operation": operation,
        "audio_s": seconds,
        "wall_s": round(best, 4),
        "x_real_time": round(seconds / best, 2),
        "peak_mb": round(peak_mb, 1),
        "params_m": round(sum(p.numel() for p in codec.parameters()) / 1e6, 2),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "official"])
    default_devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    parser.add_argument("--devices", nargs="+", default=default_devices)
    parser.add_argument("--seconds", type=float, default=4.0, help="audio length per run")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs (the best is kept)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "acoustic_codec.json")
    parser.add_argument("--child", nargs=3, metavar=("SIZE", "DEVICE", "OP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(child(*args.child, args.seconds, args.repeats)))
        return

    rows = []
    for size in args.sizes:
        for device in args.devices:
            for operation in ("encode", "decode"):
                command = [sys.executable, __file__, "--child", size, device, operation]
                command += ["--seconds", str(args.seconds), "--repeats", str(args.repeats)]
                if args.threads:
                    command += ["--threads", str(args.threads)]
                out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO).stdout
                rows.append(json.loads(out.strip().splitlines()[-1]))
                row = rows[-1]
                print(
                    f"{size:8s} {device:5s} {operation:6s} {row['x_real_time']:8.2f} x real time "
                    f"({row['wall_s']:.3f} s for {row['audio_s']} s)  peak {row['peak_mb']:8.1f} MB  "
                    f"{row['params_m']} M params  {row['threads']} threads",
                    flush=True,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name() if "cuda" in args.devices else None,
    }
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
