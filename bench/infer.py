"""End-to-end voice-cloning speed and memory: reference vs fast mode, tiny and official size, CPU and GPU.

    .venv/bin/python bench/infer.py                                          # tiny, CPU, official steps
    .venv/bin/python bench/infer.py --sizes official --steps 10 --threads 2  # full size, a few minutes
    .venv/bin/python bench/infer.py --sizes official --devices cuda          # GPU: RTF, VRAM, TFLOP/s

Networks get random weights (same cost as the real ones). They are saved once as a checkpoint folder under
``--cache`` (the official size with the released hyper-parameters and a w2v-BERT 2.0-sized encoder of the
17 layers that are run: ~8 GB of float32), and every measurement loads that folder the way a user does
(``MaskGCT.from_pretrained``; fast mode with the command line's precision, ``maskgct.precision``), in a
fresh process, so its peak RSS is its own and includes loading. The modes alternate ``--repeats`` times;
the table shows each one's median. Per run: load time, prompt encoding, T2S, S2A (both models) and vocoder
time, RTF (synthesis / audio seconds, prompt encoding excluded), peak RSS (and peak VRAM), and the T2S
stack's achieved FLOP/s as a fraction of a plain ``(L, h) @ (h, 4h)`` matmul in the same dtype, measured
in the same process (L = the conditional input length), and on CUDA of the card's attainable peak (an
8192^3 matmul in that dtype).

``--steps N`` sets the T2S steps and the S2A schedule ``[N, round(0.4 N), 1, ...]`` (N = 25 is the official
pipeline: 25 and 25, 10, 1, ...); fewer steps keep the ratios and fit a slow CPU.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODES = ("reference", "fast")
SENTENCE = "The quick brown fox jumps over the lazy dog, and then it runs far away into the woods."
PROMPT_TEXT = "A short sentence said by the speaker whose voice is cloned."
STAGES = ("t2s", "s2a", "vocoder")
BATCH_TEXTS = ("Hello there.", "The quick brown fox jumps over the lazy dog.", "Yes, of course.",
               "It rained all night, and in the morning the river was high.")  # fmt: skip


def build(size: str):
    """A MaskGCT with random weights: the tiny fixture sizes or the official ones, and its w2v-BERT model."""
    import torch
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertConfig, Wav2Vec2BertModel

    from maskgct.api import MaskGCT
    from maskgct.codecs.acoustic_codec import AcousticCodec, AcousticCodecConfig
    from maskgct.codecs.acoustic_decoder import AcousticDecoderConfig
    from maskgct.codecs.acoustic_encoder import AcousticEncoderConfig
    from maskgct.codecs.semantic import SemanticTokenizer
    from maskgct.codecs.semantic_codec import SemanticCodec, SemanticCodecConfig
    from maskgct.codecs.w2v_bert import W2V_BERT_PREPROCESSOR, W2vBertFeatures
    from maskgct.s2a import ONE_LAYER, S2A, S2AConfig
    from maskgct.t2s import T2S, T2SConfig

    torch.manual_seed(0)
    if size == "official":
        w2v = Wav2Vec2BertConfig(num_hidden_layers=17)  # 24 in the model; only layers 1-17 are run
        semantic, t2s, s2a, codec = (
            SemanticCodecConfig(with_decoder=False),
            T2SConfig(),
            {},
            AcousticCodecConfig(),
        )
    else:
        w2v = Wav2Vec2BertConfig(
            hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128,
            output_hidden_size=64, conv_depthwise_kernel_size=7,
        )  # fmt: skip
        semantic = SemanticCodecConfig(512, 64, 8, 32, 64, 2, with_decoder=False)
        t2s = T2SConfig(hidden_size=64, num_layers=2, num_heads=4, cond_codebook_size=512)
        s2a = dict(hidden_size=64, num_layers=2, num_heads=4, codebook_size=64, cond_codebook_size=512)
        codec = AcousticCodecConfig(
            AcousticEncoderConfig(d_model=8, out_channels=16),
            AcousticDecoderConfig(in_channels=16, codebook_size=64, vocos_dim=32, vocos_intermediate_dim=64,
                                  vocos_num_layers=2),
        )  # fmt: skip
    w2v._attn_implementation = "eager"
    model, dim = Wav2Vec2BertModel(w2v), w2v.hidden_size
    features = W2vBertFeatures(
        model, SeamlessM4TFeatureExtractor(**W2V_BERT_PREPROCESSOR), w2v.num_hidden_layers,
        torch.zeros(dim), torch.ones(dim),
    )  # fmt: skip
    tts = MaskGCT(
        SemanticTokenizer(features, SemanticCodec(semantic), "w2v_bert"), AcousticCodec(codec), T2S(t2s),
        S2A(S2AConfig(**{**ONE_LAYER, **s2a})), S2A(S2AConfig(**s2a)),
    )  # fmt: skip
    return tts, model


def checkpoint(size: str, cache: Path) -> Path:
    """The random-weight checkpoint folder of ``size``, written once under ``cache``."""
    folder = cache / size
    if not (folder / "config.json").is_file():
        print(f"writing a random {size} checkpoint to {folder} (once)", flush=True)
        tts, w2v = build(size)
        w2v.save_pretrained(folder / "w2v_bert")
        tts.save_pretrained(folder, w2v_bert="w2v_bert")
    return folder


def worker(args) -> dict:
    """One (size, device, mode) measurement, printed as JSON."""
    import numpy as np
    import torch

    from maskgct.api import MaskGCT
    from maskgct.precision import computing_in, fast_dtype, load_precision

    torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")

    def sync():
        if cuda:
            torch.cuda.synchronize()

    precision = "float32" if args.mode == "reference" else load_precision("fast", args.device)
    started = time.perf_counter()
    tts = MaskGCT.from_pretrained(args.folder, args.device, precision)
    load_s = time.perf_counter() - started
    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal(int(args.prompt_seconds * 24000))).astype(np.float32)
    steps = args.steps
    kwargs = dict(
        text=SENTENCE, duration=args.seconds, seed=0, mode=args.mode, steps=steps,
        s2a_steps=[steps, max(1, round(steps * 0.4))] + [1] * (tts.s2a_full.config.num_quantizer - 2),
    )  # fmt: skip
    if args.warmup:
        tts.clone(wav, PROMPT_TEXT, sample_rate=24000, **kwargs)  # allocator, kernels, first resampling
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    sync()
    started = time.perf_counter()
    prompt = tts.encode_prompt(wav, PROMPT_TEXT, sample_rate=24000)
    sync()
    marks = [time.perf_counter()]

    def progress(stage, done, total):
        sync()
        marks.append(time.perf_counter())

    result = tts.clone_with_details(prompt, progress=progress, **kwargs)
    stages = dict(zip(STAGES, np.diff(marks).tolist(), strict=True))
    # The T2S stack's FLOPs: per step a conditional pass over phones + prompt + target and an
    # unconditional one over the target (cfg > 0), each 32 L h^2 + 4 L^2 h per layer.
    config, target = tts.t2s.config, len(result.chunks[0].semantic)
    cond_len = len(prompt.phone_ids) + len(result.chunks[0].phone_ids) + len(prompt.semantic) + target
    flops = steps * sum(
        config.num_layers * (32 * n * config.hidden_size**2 + 4 * n**2 * config.hidden_size)
        for n in (cond_len, target)
    )
    dtype = fast_dtype(args.device, precision) if args.mode == "fast" else torch.float32
    a = torch.randn(cond_len, config.hidden_size, device=args.device)
    b = torch.randn(config.hidden_size, 4 * config.hidden_size, device=args.device)
    with torch.no_grad(), computing_in(dtype, args.device):
        a @ b
        sync()
        begun, repeats = time.perf_counter(), 5
        for _ in range(repeats):
            a @ b
        sync()
        matmul = (
            2
            * cond_len
            * config.hidden_size
            * 4
            * config.hidden_size
            * repeats
            / (time.perf_counter() - begun)
        )
    row = {
        "precision": precision,
        "load_s": load_s,
        "prompt_s": marks[0] - started,
        **stages,
        "synth_s": marks[-1] - marks[0],
        "audio_s": len(result.audio) / 24000,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "t2s_gflops": flops / stages["t2s"] / 1e9,
        "matmul_gflops": matmul / 1e9,
    }
    if cuda:
        row["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
        # The card's attainable peak in this dtype: a large square matmul, the best of 10.
        big = torch.randn(8192, 8192, device=args.device)
        with torch.no_grad(), computing_in(dtype, args.device):
            big @ big
            best = float("inf")
            for _ in range(10):
                sync()
                begun = time.perf_counter()
                big @ big
                sync()
                best = min(best, time.perf_counter() - begun)
        row["card_peak_gflops"] = 2 * 8192**3 / best / 1e9
    if args.batch > 1:
        # Throughput: --batch requests of different texts and lengths, one at a time vs one clone_batch.
        requests = [
            dict(text=BATCH_TEXTS[i % 4], duration=args.seconds * (0.6 + 0.1 * (i % 5)), seed=i)
            for i in range(args.batch)
        ]
        common = {k: v for k, v in kwargs.items() if k not in ("text", "duration", "seed")}
        sync()
        begun = time.perf_counter()
        for r in requests:
            tts.clone(prompt, **common, **r)
        sync()
        one_by_one = time.perf_counter() - begun
        tts.clone_batch([dict(prompt=prompt, **r) for r in requests], batch_size=args.batch, **common)
        sync()
        row["clones_per_min"] = 60 * args.batch / one_by_one
        row["batched_clones_per_min"] = 60 * args.batch / (time.perf_counter() - begun - one_by_one)
    return row


def median_row(rows: list[dict]) -> dict:
    """Each number's median over the runs (text fields from the first)."""
    first = rows[0]
    return {k: v if isinstance(v, str) else statistics.median(r[k] for r in rows) for k, v in first.items()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=["tiny"], choices=("tiny", "official"))
    parser.add_argument("--checkpoint", type=Path, help="a real checkpoint folder instead of --sizes")
    parser.add_argument("--devices", nargs="+", default=["cpu"])
    parser.add_argument(
        "--steps", type=int, default=25, help="T2S steps; S2A [N, 0.4 N, 1, ...] (default 25)"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="target length (default 3)")
    parser.add_argument("--prompt-seconds", type=float, default=2.0, help="(default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per mode, interleaved (default 1)")
    parser.add_argument("--warmup", action=argparse.BooleanOptionalAction, default=True,
                        help="one untimed clone first in each process (default on)")  # fmt: skip
    parser.add_argument("--batch", type=int, default=0,
                        help="also clones per minute: this many requests one at a time vs one "
                        "clone_batch")  # fmt: skip
    parser.add_argument("--cache", type=Path, default=Path("/tmp/maskgct-bench"), help="checkpoint folders")
    for hidden in ("--worker", "--folder", "--device", "--mode"):
        parser.add_argument(
            hidden, **({"action": "store_true"} if hidden == "--worker" else {}), help=argparse.SUPPRESS
        )
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    common = ["--steps", str(args.steps), "--seconds", str(args.seconds), "--prompt-seconds",
              str(args.prompt_seconds), "--threads", str(args.threads),
              "--warmup" if args.warmup else "--no-warmup", "--batch", str(args.batch)]  # fmt: skip
    print(f"target {args.seconds:g} s, prompt {args.prompt_seconds:g} s, {args.steps} T2S steps, "
          f"{args.threads} CPU thread(s), median of {args.repeats}")  # fmt: skip
    header = ("size", "device", "mode", "weights", "load s", "prompt s", "T2S s", "S2A s", "voc s", "synth s",
              "RTF", "RSS GiB", "GPU GiB", "T2S GFLOP/s", "of matmul", "x synth", "x T2S")  # fmt: skip
    print(" | ".join(header))
    for size in [args.checkpoint.name] if args.checkpoint else args.sizes:
        folder = args.checkpoint or checkpoint(size, args.cache)
        for device in args.devices:
            runs = {mode: [] for mode in MODES}
            for _ in range(args.repeats):
                for mode in MODES:
                    cmd = [sys.executable, __file__, "--worker", "--folder", str(folder), "--device", device,
                           "--mode", mode, *common]  # fmt: skip
                    done = subprocess.run(cmd, capture_output=True, text=True)
                    if done.returncode != 0:
                        print(f"{size} {device} {mode} failed: {done.stderr.strip().splitlines()[-1]}")
                        return 1
                    runs[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
            ref = median_row(runs["reference"])
            for mode in MODES:
                r = median_row(runs[mode])
                gpu = f"{r['peak_gpu_gib']:.2f}" if "peak_gpu_gib" in r else "-"
                cells = (size, device, mode, r["precision"], f"{r['load_s']:.1f}", f"{r['prompt_s']:.2f}",
                         f"{r['t2s']:.2f}", f"{r['s2a']:.2f}", f"{r['vocoder']:.2f}", f"{r['synth_s']:.2f}",
                         f"{r['synth_s'] / r['audio_s']:.2f}", f"{r['peak_rss_gib']:.2f}", gpu,
                         f"{r['t2s_gflops']:.0f}", f"{r['t2s_gflops'] / r['matmul_gflops']:.2f}",
                         f"{ref['synth_s'] / r['synth_s']:.2f}", f"{ref['t2s'] / r['t2s']:.2f}")  # fmt: skip
                print(" | ".join(cells), flush=True)
                if "card_peak_gflops" in r:
                    peak = r["card_peak_gflops"]
                    print(f"{size} {device} {mode}: T2S at {r['t2s_gflops'] / peak:.2f} of the card's "
                          f"attainable peak ({peak / 1000:.0f} TFLOP/s, an 8192^3 matmul)",
                          flush=True)  # fmt: skip
            if args.batch > 1:
                for mode in MODES:
                    r = median_row(runs[mode])
                    print(f"{size} {device} {mode}: {args.batch} requests, {r['clones_per_min']:.1f} "
                          f"clones/min one at a time, {r['batched_clones_per_min']:.1f} batched",
                          flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
