"""Speed of the official-size T2S and S2A (random weights): reference vs fast mode, as ratios.

For each target length (seconds of speech at 50 tokens/s) it measures, in one run:

* one conditional forward (eager, as the reference) and its FLOP/s, against a plain fp32 matmul of the
  model's main GEMM shape ``(L, h) @ (h, 4h)`` timed in the same run;
* one guidance step (conditional + unconditional pass): reference = two eager float32 passes, fast = the
  pipeline's fast path (``maskgct.sampler.guided_passes``: SDPA, unpadded passes on CPU and one batched
  pass on GPU, under autocast in ``maskgct.precision.fast_dtype``: bfloat16 where native);
* optionally (``--decode``) a whole ``generate`` call in both modes with the given step counts.

It also prints the full-decode time extrapolated to the official step counts (T2S 25 steps; S2A 25 steps
for layer 0 + 10 + 10x1 for the full model) from the measured step time. Official-size forwards are slow
on a small CPU (about 5 s for 100 T2S tokens on 2 cores): start with ``--targets 5 --prompt-seconds 1``.

    python bench/t2s_s2a.py --targets 5 10 20 --device cuda --decode
    python bench/t2s_s2a.py --targets 5 --prompt-seconds 1 --threads 2 --decode --t2s-steps 2 --s2a-steps 2
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from maskgct.constants import FRAME_RATE
from maskgct.precision import computing_in, fast_dtype
from maskgct.s2a import ONE_LAYER, S2A, S2AConfig, s2a_generate
from maskgct.sampler import Decoding, SamplingOptions, guided_passes
from maskgct.t2s import T2S, T2SConfig

OFFICIAL = SamplingOptions()
OFFICIAL_T2S_STEPS = OFFICIAL.t2s_steps
OFFICIAL_S2A_STEPS = list(OFFICIAL.s2a_steps)


def build(model_class, config, device):
    """An official-size network with random N(0, 0.02) weights, built without a CPU-side init pass."""
    with torch.device("meta"):
        model = model_class(config)
    model = model.to_empty(device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.02, generator=generator)
    return model.eval()


def timed(fn, device, repeats: int) -> float:
    """Best wall time of ``repeats`` calls (after one warm-up call when repeats > 1)."""
    if repeats > 1:
        fn()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def stack_flops(length: int, hidden: int, layers: int) -> float:
    """FLOPs of one pass of the transformer stack: projections + SwiGLU (32 L h^2) and attention (4 L^2 h)."""
    return layers * (32 * length * hidden**2 + 4 * length**2 * hidden)


def matmul_flops_per_s(length: int, hidden: int, device, repeats: int) -> float:
    a = torch.randn(length, hidden, device=device)
    b = torch.randn(hidden, 4 * hidden, device=device)
    seconds = timed(lambda: a @ b, device, max(repeats, 3))
    return 2 * length * hidden * 4 * hidden / seconds


def report_forward(name, est, cond_input, uncond_input, cond_flops, device, repeats):
    """Time one conditional forward and one guidance step in both modes; returns a dict of timings."""
    t = torch.ones(cond_input.shape[0], device=device) * 0.5
    time_emb = est.time_embedding(t)
    with torch.no_grad():
        cond_s = timed(lambda: est(cond_input, t, time_emb=time_emb), device, repeats)
        uncond_s = timed(lambda: est(uncond_input, t, time_emb=time_emb), device, repeats)
        fast = Decoding(2.5, 0.75, 1.0, 0.98, "fast")
        every = slice(None)
        with computing_in(fast_dtype(device), device):
            fast_s = timed(
                lambda: guided_passes(est, cond_input, uncond_input, t, every, every, fast), device, repeats
            )
    hidden = est.config.hidden_size
    achieved = cond_flops / cond_s
    baseline = matmul_flops_per_s(cond_input.shape[1], hidden, device, repeats)
    print(
        f"  {name} cond forward L={cond_input.shape[1]}: {cond_s:.3f} s, {cond_flops / 1e9:.0f} GFLOP, "
        f"{achieved / 1e9:.1f} GFLOP/s = {achieved / baseline:.2f}x the ({cond_input.shape[1]},{hidden})@"
        f"({hidden},{4 * hidden}) matmul ({baseline / 1e9:.1f} GFLOP/s)"
    )
    reference_step = cond_s + uncond_s
    print(
        f"  {name} guidance step: reference {reference_step:.3f} s "
        f"(cond + uncond L={uncond_input.shape[1]}), "
        f"fast {fast_s:.3f} s ({fast_dtype(device)}): fast/reference = {fast_s / reference_step:.2f}"
    )
    return {"reference_step": reference_step, "fast_step": fast_s}


def bench_t2s(args, models, device, seconds):
    model = models["t2s"]
    c = model.config.hidden_size
    frames, prompt_frames = int(seconds * FRAME_RATE), int(args.prompt_seconds * FRAME_RATE)
    phones = int(args.phones_per_second * (seconds + args.prompt_seconds))
    cond_input = torch.randn(1, phones + prompt_frames + frames, c, device=device)
    uncond_input = torch.randn(1, frames, c, device=device)
    flops = stack_flops(cond_input.shape[1], c, model.config.num_layers)
    steps = report_forward("T2S", model.diff_estimator, cond_input, uncond_input, flops, device, args.repeats)
    print(
        f"  T2S decode at {OFFICIAL_T2S_STEPS} steps (from the step time): reference "
        f"{OFFICIAL_T2S_STEPS * steps['reference_step']:.1f} s, "
        f"fast {OFFICIAL_T2S_STEPS * steps['fast_step']:.1f} s"
    )
    if args.decode:
        phone_ids = torch.randint(0, 363, (1, phones), device=device)
        prompt = torch.randint(0, model.config.cond_codebook_size, (1, prompt_frames), device=device)
        took = {}
        for mode in ("reference", "fast"):
            generator = torch.Generator(device=device).manual_seed(0)
            dtype = fast_dtype(device) if mode == "fast" else torch.float32
            with computing_in(dtype, device):
                took[mode] = timed(
                    lambda mode=mode, generator=generator: model.generate(
                        phone_ids, prompt, frames, args.t2s_steps, OFFICIAL.t2s(mode, generator)
                    ),
                    device,
                    1,
                )
        print(
            f"  T2S generate ({args.t2s_steps} steps): reference {took['reference']:.2f} s, fast "
            f"{took['fast']:.2f} s: fast/reference = {took['fast'] / took['reference']:.2f}"
        )


def bench_s2a(args, models, device, seconds):
    one, full = models["s2a_1layer"], models["s2a_full"]
    c = full.config.hidden_size
    frames, prompt_frames = int(seconds * FRAME_RATE), int(args.prompt_seconds * FRAME_RATE)
    cond_input = torch.randn(1, prompt_frames + frames, c, device=device)
    uncond_input = torch.randn(1, frames, c, device=device)
    flops = stack_flops(cond_input.shape[1], c, full.config.num_layers)
    steps = report_forward("S2A", full.diff_estimator, cond_input, uncond_input, flops, device, args.repeats)
    total = sum(OFFICIAL_S2A_STEPS)
    print(
        f"  S2A decode at {OFFICIAL_S2A_STEPS[0]}+{sum(OFFICIAL_S2A_STEPS[1:])} steps (from the step time): "
        f"reference {total * steps['reference_step']:.1f} s, fast {total * steps['fast_step']:.1f} s"
    )
    if args.decode:
        semantic = torch.randint(
            0, full.config.cond_codebook_size, (1, prompt_frames + frames), device=device
        )
        prompt = torch.randint(0, full.config.codebook_size, (1, prompt_frames, 12), device=device)
        steps_list = [args.s2a_steps] + [1] * 11
        took = {}
        for mode in ("reference", "fast"):
            generator = torch.Generator(device=device).manual_seed(0)
            dtype = fast_dtype(device) if mode == "fast" else torch.float32
            with computing_in(dtype, device):
                took[mode] = timed(
                    lambda mode=mode, generator=generator: s2a_generate(
                        one, full, semantic, prompt, steps_list, OFFICIAL.s2a(mode, generator)
                    ),
                    device,
                    1,
                )
        print(
            f"  S2A generate ({steps_list[0]}+{sum(steps_list[1:])} steps): "
            f"reference {took['reference']:.2f} s, "
            f"fast {took['fast']:.2f} s: fast/reference = {took['fast'] / took['reference']:.2f}"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--targets", type=float, nargs="+", default=[5.0, 10.0, 20.0], help="seconds to generate"
    )
    parser.add_argument("--prompt-seconds", type=float, default=3.0)
    parser.add_argument(
        "--phones-per-second", type=float, default=12.0, help="phone ids per second of speech"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--repeats", type=int, default=2, help="timed repeats (best of), after a warm-up if > 1 (default 2)"
    )
    parser.add_argument("--models", nargs="+", default=["t2s", "s2a"], choices=["t2s", "s2a"])
    parser.add_argument("--decode", action="store_true", help="also time whole generate calls in both modes")
    parser.add_argument("--t2s-steps", type=int, default=OFFICIAL_T2S_STEPS)
    parser.add_argument("--s2a-steps", type=int, default=OFFICIAL_S2A_STEPS[0], help="steps of layer 0")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads, fp32")
    models = {}
    if "t2s" in args.models:
        models["t2s"] = build(T2S, T2SConfig(), device)
    if "s2a" in args.models:
        models["s2a_1layer"] = build(S2A, S2AConfig(**ONE_LAYER), device)
        models["s2a_full"] = build(S2A, S2AConfig(), device)
    for seconds in args.targets:
        print(f"target {seconds:g} s (prompt {args.prompt_seconds:g} s):")
        if "t2s" in models:
            bench_t2s(args, models, device, seconds)
        if "s2a_full" in models:
            bench_s2a(args, models, device, seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
