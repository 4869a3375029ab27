"""Training-step speed of T2S and S2A in float32 vs bfloat16 autocast (``trainer.precision=bf16-mixed``).

Lightning's ``bf16-mixed`` runs forward and loss under ``torch.autocast(dtype=bfloat16)``: weights, gradients
and optimiser state stay float32. On a CPU with native bfloat16 (AMX / AVX512-BF16) the matrix products run
about twice as fast; elsewhere they are emulated and slower, so CPU training keeps float32 by default
(``conf/trainer/cpu.yaml``) and ``trainer=cpu_bf16`` is the opt-in overlay. For each task this times,
interleaved in one run, full steps (forward, backward, AdamW) on the same random batch, from the same weights:

    python bench/train_step.py --size default --frames 1500 --threads 1
    python bench/train_step.py --size tiny --tasks t2s --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from maskgct.precision import native_bfloat16
from maskgct.train.__main__ import model_config
from maskgct.train.s2a import S2ATask
from maskgct.train.t2s import T2STask

TASKS = {"t2s": T2STask, "s2a_1layer": S2ATask}


def random_batch(net, frames: int, utts: int, generator: torch.Generator) -> dict:
    """A token batch of ``utts`` rows, ``frames`` frames in all, 1 phone per 4 frames (speech's rate)."""
    t = frames // utts
    cfg = net.config
    batch = {
        "phone_ids": torch.randint(0, 300, (utts, t // 4), generator=generator),
        "phone_mask": torch.ones(utts, t // 4, dtype=torch.long),
        "semantic": torch.randint(0, cfg.cond_codebook_size, (utts, t), generator=generator),
        "semantic_mask": torch.ones(utts, t, dtype=torch.long),
    }
    if hasattr(cfg, "num_quantizer"):  # S2A: the acoustic codes it learns
        batch["acoustic"] = torch.randint(
            0, cfg.codebook_size, (utts, t, cfg.num_quantizer), generator=generator
        )
        batch["acoustic_mask"] = batch["semantic_mask"]
    return batch


def step_time(task, batch: dict, bf16: bool, repeats: int) -> float:
    """Median wall time of ``repeats`` steps (one warm-up step first)."""
    optimiser = torch.optim.AdamW(task.parameters(), 1e-4)
    times = []
    for k in range(repeats + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = task.losses(batch)["loss"]
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        if k:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument(
        "--size", default="default", help="conf/model/<task>_<size>.yaml (tiny, default, official)"
    )
    p.add_argument("--frames", type=int, default=1500, help="semantic frames in the batch")
    p.add_argument("--utts", type=int, default=6)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"native bfloat16 on this CPU: {native_bfloat16('cpu')}; {args.threads} thread(s)")
    for name in args.tasks:
        torch.manual_seed(0)
        task = TASKS[name](model_config(f"{name}_{args.size}"))
        batch = random_batch(task.net, args.frames, args.utts, torch.Generator().manual_seed(0))
        fp32, bf16 = [], []
        for _ in range(2):  # interleaved, so drift in the machine's load hits both alike
            fp32.append(step_time(copy.deepcopy(task), batch, False, args.repeats))
            bf16.append(step_time(copy.deepcopy(task), batch, True, args.repeats))
        a, b = min(fp32), min(bf16)
        print(
            f"{name} ({args.size}, {args.frames} frames): float32 {a:.3f} s/step, bf16-mixed {b:.3f} s/step, "
            f"{a / b:.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
