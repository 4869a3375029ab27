"""Semantic tokenizer speed and memory on CPU, tiny and official size (random weights).

    .venv/bin/python bench/semantic_codec.py [--size tiny|official|both] [--threads N] [--workdir DIR]

For each size a random w2v-BERT is written in HF format (official size: 24 layers, 2.3 GB), then fresh
processes measure, for the model truncated to the semantic layer and for the full model (what the reference
runs, with all hidden states kept), the peak memory after loading and after tokenising, and the throughput
in tokens per second of wall time at batch 1 and batched. Ratios are printed at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SIZES = {
    # name: (w2v-BERT config, semantic layer, codec config)
    "tiny": (
        dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128,
             output_hidden_size=64, conv_depthwise_kernel_size=7),
        3,
        dict(codebook_size=512, hidden_size=64, codebook_dim=8, vocos_dim=32, vocos_intermediate_dim=64,
             vocos_num_layers=2, with_decoder=False),
    ),
    "official": (
        dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
             output_hidden_size=1024, conv_depthwise_kernel_size=31),
        17,
        dict(with_decoder=False),
    ),
}  # fmt: skip
UTTERANCE_SECONDS = (2.0, 3.1, 4.3, 5.2)


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss it is not inherited across exec).

    Weights read from safetensors stay file-backed until touched, so this counts only the layers used.
    """
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def write_random_w2v_bert(folder: Path, config_kwargs: dict) -> None:
    """Write a random w2v-BERT in HF format: config, safetensors weights, preprocessor config."""
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertConfig, Wav2Vec2BertModel

    from maskgct.codecs.w2v_bert import W2V_BERT_PREPROCESSOR

    if (folder / "model.safetensors").is_file():
        return
    config = Wav2Vec2BertConfig(**config_kwargs)
    with torch.device("meta"):
        model = Wav2Vec2BertModel(config)
    model = model.to_empty(device="cpu")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                param.fill_(1.0)
            else:
                param.normal_(0.0, 0.02, generator=gen)
    model.save_pretrained(folder)
    SeamlessM4TFeatureExtractor(**W2V_BERT_PREPROCESSOR).save_pretrained(folder)


def measure(folder: Path, size: str, truncate: bool, batch: int, repeats: int, seconds: tuple) -> dict:
    """Run in a fresh process: load, tokenise the utterances at batch 1 and ``batch``, report peaks."""
    from maskgct.codecs.semantic import SemanticTokenizer
    from maskgct.codecs.semantic_codec import SemanticCodec, SemanticCodecConfig
    from maskgct.codecs.w2v_bert import W2vBertFeatures

    _, layer, codec_kwargs = SIZES[size]
    start = time.perf_counter()
    features = W2vBertFeatures.from_folder(folder, layer if truncate else SIZES[size][0]["num_hidden_layers"])
    hidden = features.hidden_size
    features.register_buffer("mean", torch.zeros(hidden), persistent=False)
    features.register_buffer("std", torch.ones(hidden), persistent=False)
    codec = SemanticCodec(SemanticCodecConfig(**codec_kwargs)).eval()
    tokenizer = SemanticTokenizer(features, codec, str(folder))
    load_s, load_peak = time.perf_counter() - start, peak_rss_mib()
    if not truncate:
        # The reference: all layers, every hidden state kept, the semantic layer picked out afterwards.
        run_model = features.model

        def hidden_states(input_features, attention_mask):
            with torch.no_grad():
                out = run_model(input_features, attention_mask=attention_mask, output_hidden_states=True)
            return out.hidden_states[layer]

        features.hidden_states = hidden_states
    rng = np.random.default_rng(0)
    wavs = [0.1 * rng.standard_normal(int(s * 16000)).astype(np.float32) for s in seconds]
    tokenizer.tokenize_batch(wavs[:1])  # warm-up
    n_tokens = sum(len(tokenizer.tokenize(w)) for w in wavs)
    # Best of `repeats`: the CPU is shared, and the minimum is the least disturbed measurement.
    single_s = batched_s = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for wav in wavs:
            tokenizer.tokenize(wav)
        single_s = min(single_s, time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(0, len(wavs), batch):
            tokenizer.tokenize_batch(wavs[i : i + batch])
        batched_s = min(batched_s, time.perf_counter() - start)
    return {
        "load_s": load_s,
        "load_peak_mib": load_peak,
        "run_peak_mib": peak_rss_mib(),
        "tokens": n_tokens,
        "tokens_per_s_b1": n_tokens / single_s,
        "tokens_per_s_batched": n_tokens / batched_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=["tiny", "official", "both"], default="both")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--utterances", type=int, default=len(UTTERANCE_SECONDS), help="use only the first N")
    parser.add_argument(
        "--workdir", default=None, help="where the random w2v-BERT folders go (kept for reuse)"
    )
    parser.add_argument("--child", nargs=3, metavar=("FOLDER", "SIZE", "TRUNCATE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seconds = UTTERANCE_SECONDS[: args.utterances]
    if args.child:
        folder, size, truncate = args.child
        print(json.dumps(measure(Path(folder), size, truncate == "1", args.batch, args.repeats, seconds)))
        return
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="semantic_bench_"))
    sizes = ["tiny", "official"] if args.size == "both" else [args.size]
    audio_s = sum(seconds)
    print(f"{len(seconds)} utterances ({audio_s:.1f} s), {args.threads} threads, batch {args.batch}")
    for size in sizes:
        folder = workdir / f"w2v_bert_{size}"
        write_random_w2v_bert(folder, SIZES[size][0])
        results = {}
        for truncate in (True, False):
            command = [sys.executable, __file__, "--threads", str(args.threads), "--batch", str(args.batch),
                       "--repeats", str(args.repeats), "--utterances", str(args.utterances)]  # fmt: skip
            out = subprocess.run(
                [*command, "--child", str(folder), size, "1" if truncate else "0"],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            results[truncate] = json.loads(out.stdout.strip().splitlines()[-1])
        for truncate, r in results.items():
            name = "truncated" if truncate else "full     "
            print(
                f"{size:8s} {name} load {r['load_s']:6.2f} s  peak after load {r['load_peak_mib']:7.0f} MiB  "
                f"peak after run {r['run_peak_mib']:7.0f} MiB  tokens/s b1 {r['tokens_per_s_b1']:8.1f}  "
                f"batched {r['tokens_per_s_batched']:8.1f}  (x real time b1 "
                f"{r['tokens_per_s_b1'] / 50:.2f})"
            )
        t, f = results[True], results[False]
        print(
            f"{size:8s} ratios: truncated/full speed b1 {t['tokens_per_s_b1'] / f['tokens_per_s_b1']:.2f}, "
            f"batched/b1 {t['tokens_per_s_batched'] / t['tokens_per_s_b1']:.2f}, "
            f"full/truncated peak memory {f['run_peak_mib'] / t['run_peak_mib']:.2f}"
        )


if __name__ == "__main__":
    main()
