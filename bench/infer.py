"""End-to-end voice-cloning speed and memory: reference vs fast mode, tiny and official size, CPU and GPU.

    .venv/bin/python bench/infer.py                                   # tiny, CPU
    .venv/bin/python bench/infer.py --sizes tiny official --devices cpu cuda --steps 25

Networks get random weights (same cost as the real ones), built from their configs; the official size uses
the released hyper-parameters and a w2v-BERT 2.0-sized encoder (17 of its 24 layers are run). Each
(size, device, mode) runs in a fresh process, so its peak RSS is its own. One warm-up call, then the timed
one: prompt ``--prompt-seconds`` of noise, target fixed at ``--seconds``. RTF = wall time / audio seconds.
``--steps`` sets the T2S steps and the S2A layer-0/layer-1 steps (official pipeline: 25, i.e. 25 and
[25, 10, 1, ...]); fewer steps keep the reference/fast ratio meaningful on a slow CPU.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

MODES = ("reference", "fast")
SENTENCE = "The quick brown fox jumps over the lazy dog, and then it runs far away into the woods."
PROMPT_TEXT = "A short sentence said by the speaker whose voice is cloned."


def build(size: str, device: str):
    """A MaskGCT with random weights: the tiny fixture sizes or the official ones."""
    import torch
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertConfig, Wav2Vec2BertModel

    from maskgct.api import MaskGCT
    from maskgct.codecs.acoustic_codec import AcousticCodec, AcousticCodecConfig
    from maskgct.codecs.acoustic_decoder import AcousticDecoderConfig
    from maskgct.codecs.acoustic_encoder import AcousticEncoderConfig
    from maskgct.codecs.semantic import SemanticTokenizer
    from maskgct.codecs.semantic_codec import SemanticCodec, SemanticCodecConfig
    from maskgct.codecs.w2v_bert import W2V_BERT_PREPROCESSOR, W2vBertFeatures
    from maskgct.s2a import S2A, S2AConfig
    from maskgct.t2s import T2S, T2SConfig

    torch.manual_seed(0)
    if size == "official":
        w2v = Wav2Vec2BertConfig(num_hidden_layers=17)  # 24 in the model; only layers 1-17 are run
        total_layers, semantic, t2s = 24, SemanticCodecConfig(with_decoder=False), T2SConfig()
        s2a = dict(hidden_size=1024, num_layers=16, num_heads=16, codebook_size=1024, cond_codebook_size=8192)
        codec = AcousticCodecConfig()
    else:
        w2v = Wav2Vec2BertConfig(
            hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128,
            output_hidden_size=64, conv_depthwise_kernel_size=7,
        )  # fmt: skip
        total_layers = 4
        semantic = SemanticCodecConfig(512, 64, 8, 32, 64, 2, with_decoder=False)
        t2s = T2SConfig(hidden_size=64, num_layers=2, num_heads=4, cond_codebook_size=512)
        s2a = dict(hidden_size=64, num_layers=2, num_heads=4, codebook_size=64, cond_codebook_size=512)
        codec = AcousticCodecConfig(
            AcousticEncoderConfig(d_model=8, out_channels=16),
            AcousticDecoderConfig(in_channels=16, codebook_size=64, vocos_dim=32, vocos_intermediate_dim=64,
                                  vocos_num_layers=2),
        )  # fmt: skip
    w2v._attn_implementation = "eager"
    dim = w2v.hidden_size
    features = W2vBertFeatures(
        Wav2Vec2BertModel(w2v), SeamlessM4TFeatureExtractor(**W2V_BERT_PREPROCESSOR), total_layers,
        torch.zeros(dim), torch.ones(dim),
    )  # fmt: skip
    tokenizer = SemanticTokenizer(features, SemanticCodec(semantic), "random")
    tts = MaskGCT(
        tokenizer, AcousticCodec(codec), T2S(t2s),
        S2A(S2AConfig(num_quantizer=1, predict_layer_1=True, **s2a)), S2A(S2AConfig(num_quantizer=12, **s2a)),
    )  # fmt: skip
    return tts.to(device)


def worker(args) -> dict:
    """One (size, device, mode) measurement, printed as JSON."""
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    tts = build(args.size, args.device)
    rng = np.random.default_rng(0)
    prompt = (0.1 * rng.standard_normal(int(args.prompt_seconds * 24000))).astype(np.float32)
    steps = args.steps
    kwargs = dict(
        prompt_text=PROMPT_TEXT, text=SENTENCE, sample_rate=24000, duration=args.seconds, seed=0,
        mode=args.mode, steps=steps, s2a_steps=[steps, max(1, round(steps * 0.4))] + [1] * 10,
    )  # fmt: skip
    if args.warmup:
        tts.clone(prompt, **kwargs)  # allocator, kernels, librosa's first resampling

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    sync()
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    audio = tts.clone(prompt, **kwargs)
    sync()
    wall = time.perf_counter() - started
    result = {
        "wall_s": wall,
        "audio_s": len(audio) / 24000,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    if args.device.startswith("cuda"):
        result["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=["tiny"], choices=("tiny", "official"))
    parser.add_argument("--devices", nargs="+", default=["cpu"])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=4.0, help="target length")
    parser.add_argument("--prompt-seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--warmup", action=argparse.BooleanOptionalAction, default=True,
                        help="one untimed call first (default on)")  # fmt: skip
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--device", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    common = ["--steps", str(args.steps), "--seconds", str(args.seconds),
              "--prompt-seconds", str(args.prompt_seconds), "--threads", str(args.threads),
              "--warmup" if args.warmup else "--no-warmup"]  # fmt: skip
    print(f"target {args.seconds:g} s, prompt {args.prompt_seconds:g} s, {args.steps} steps, "
          f"{args.threads} CPU thread(s)")  # fmt: skip
    print(f"{'size':9}{'device':8}{'mode':11}{'wall s':>9}{'RTF':>8}{'peak RSS GiB':>14}{'GPU GiB':>9}"
          f"{'speed-up':>10}")  # fmt: skip
    for size in args.sizes:
        for device in args.devices:
            rows = {}
            for mode in MODES:
                cmd = [
                    sys.executable,
                    __file__,
                    "--worker",
                    "--size",
                    size,
                    "--device",
                    device,
                    "--mode",
                    mode,
                ]
                done = subprocess.run(cmd + common, capture_output=True, text=True)
                if done.returncode != 0:
                    print(f"{size:9}{device:8}{mode:11} failed: {done.stderr.strip().splitlines()[-1]}")
                    continue
                rows[mode] = row = json.loads(done.stdout.strip().splitlines()[-1])
                ratio = rows["reference"]["wall_s"] / row["wall_s"] if "reference" in rows else float("nan")
                gpu = f"{row['peak_gpu_gib']:9.2f}" if "peak_gpu_gib" in row else f"{'-':>9}"
                print(f"{size:9}{device:8}{mode:11}{row['wall_s']:9.2f}{row['wall_s'] / row['audio_s']:8.2f}"
                      f"{row['peak_rss_gib']:14.2f}{gpu}{ratio:9.2f}x", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
