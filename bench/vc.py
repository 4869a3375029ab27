"""Voice conversion quality on held-out voices: whose voice the output has, and whether its words survive.

``--count`` pairs of held-out utterances of ``--data-dir``: the sources taken in turn from each speaker, each
with a reference utterance of a DIFFERENT speaker (the next speaker in order, a different utterance for each
pair). ``maskgct.vc.convert_voice`` says the source in the reference's voice. Per pair and on average it
reports

* SIM→ref and SIM→src: speaker similarity (resemblyzer, as ``maskgct.eval``) of the output to the reference
  and to the source recording (a conversion moves the first up and the second down; ref−src > 0: the
  output is nearer the reference's voice); anchor: the source's similarity to the reference (the two
  voices before any conversion),
* WER: whisper tiny.en on the output against the source transcript; anchor: the source itself,

for ``--checkpoint`` and, with ``--checkpoint-b``, a second model on the same pairs and seeds (e.g. one
fine-tuned with timbre perturbation). The converted wavs, ``results.json`` and ``report.md`` go to ``--out``.

    OMP_NUM_THREADS=1 .venv/bin/python bench/vc.py [--checkpoint checkpoints/default] [--checkpoint-b DIR] \
        [--data-dir egs/synth/tts1/data/test] [--count 6] [--out /tmp/bench_vc]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from maskgct.api import MaskGCT
from maskgct.constants import SAMPLE_RATE
from maskgct.data.datadir import read_datadir
from maskgct.eval.asr import load_asr
from maskgct.eval.audio import load_speech
from maskgct.eval.speaker import cosine, load_speaker_encoder
from maskgct.eval.wer import error_counts
from maskgct.request import InputError
from maskgct.vc import convert_voice


def make_pairs(data, count: int) -> list[tuple[str, str]]:
    """``count`` (source, reference) utterance pairs: sources one from each speaker in turn, each reference
    from the next speaker (cyclically), taken from the end of its list so no utterance is both."""
    speakers = list(data.spk2utt)
    if len(speakers) < 2:
        raise SystemExit(f"error: {len(speakers)} speaker(s) in the data dir; pairs need two")
    pairs, used = [], {s: 0 for s in speakers}
    for index in range(count):
        source_speaker = speakers[index % len(speakers)]
        reference_speaker = speakers[(index + 1) % len(speakers)]
        round_ = index // len(speakers)
        sources, references = data.spk2utt[source_speaker], data.spk2utt[reference_speaker]
        if round_ >= len(sources) or used[reference_speaker] >= len(references):
            break
        pairs.append((sources[round_], references[-1 - used[reference_speaker]]))
        used[reference_speaker] += 1
    return pairs


def mean(values) -> float:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default="checkpoints/default")
    parser.add_argument("--checkpoint-b", default=None, help="a second model to compare on the same pairs")
    parser.add_argument("--data-dir", default="egs/synth/tts1/data/test")
    parser.add_argument("--count", type=int, default=6, help="source/reference pairs")
    parser.add_argument("--out", default="/tmp/bench_vc")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", default="reference", choices=["reference", "fast"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be >= 1")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    data = read_datadir(args.data_dir)
    pairs = make_pairs(data, args.count)
    asr, encoder = load_asr(), load_speaker_encoder()
    audio = {utt: load_speech(data.audio_path(utt)) for pair in pairs for utt in pair}
    embedding = {utt: encoder.embed(wav) for utt, wav in audio.items()}

    rows = []
    for source, reference in pairs:
        hypothesis = asr.transcribe(audio[source])
        rows.append(
            {
                "source": source,
                "reference": reference,
                "text": data.text[source],
                "source_hyp": hypothesis,
                "source_wer": error_counts(hypothesis, data.text[source]).rate,
                "source_sim_ref": cosine(embedding[source], embedding[reference]),
                "models": {},
            }
        )

    checkpoints = {"A": args.checkpoint} | ({"B": args.checkpoint_b} if args.checkpoint_b else {})
    for name, checkpoint in checkpoints.items():
        started = time.perf_counter()
        model = MaskGCT.from_pretrained(checkpoint, args.device)
        print(f"{name}: {checkpoint} loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        for index, row in enumerate(rows):
            source, reference = row["source"], row["reference"]
            started = time.perf_counter()
            try:
                result = convert_voice(
                    model,
                    str(data.audio_path(source)),
                    str(data.audio_path(reference)),
                    seed=args.seed + index,
                    mode=args.mode,
                )
            except InputError as error:
                row["models"][name] = {"error": str(error)}
                print(f"{name} {source} -> {reference}: not converted: {error}", file=sys.stderr)
                continue
            seconds = time.perf_counter() - started
            sf.write(out / f"{name}.{source}.to.{reference}.wav", result.audio, SAMPLE_RATE)
            wav = load_speech(result.audio, SAMPLE_RATE)
            hypothesis = asr.transcribe(wav)
            converted = encoder.embed(wav)
            scores = {
                "sim_ref": cosine(converted, embedding[reference]),
                "sim_src": cosine(converted, embedding[source]),
                "hyp": hypothesis,
                "wer": error_counts(hypothesis, row["text"]).rate,
                "convert_seconds": seconds,
            }
            row["models"][name] = scores
            print(
                f"{name} {source} -> {reference}: SIM ref {scores['sim_ref']:.3f} src {scores['sim_src']:.3f}"
                f", WER {scores['wer']:.2f} ({seconds:.1f} s)",
                file=sys.stderr,
            )
        del model
        gc.collect()

    report = render(rows, checkpoints, args)
    print(report)
    (out / "report.md").write_text(report + "\n")
    payload = {"args": vars(args), "checkpoints": checkpoints, "rows": rows}
    (out / "results.json").write_text(json.dumps(payload, indent=1) + "\n")
    converted = [r for r in rows for m in r["models"].values() if "error" not in m]
    return 0 if converted else 1


def render(rows: list[dict], checkpoints: dict[str, str], args) -> str:
    names = list(checkpoints)
    header = ["source", "reference", "source WER (anchor)", "SIM src↔ref (anchor)"]
    for name in names:
        header += [f"{name} SIM→ref", f"{name} SIM→src", f"{name} ref−src", f"{name} WER"]
    lines = [
        f"# Voice conversion on {args.data_dir} ({len(rows)} pairs, different speakers)",
        "",
        *[f"- {name}: {checkpoint}" for name, checkpoint in checkpoints.items()],
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]

    def cells(row_models) -> list[str]:
        out = []
        for name in names:
            scores = row_models.get(name, {"error": "not run"})
            if "error" in scores:
                out += ["error", "", "", ""]
            else:
                margin = scores["sim_ref"] - scores["sim_src"]
                out += [f"{scores['sim_ref']:.3f}", f"{scores['sim_src']:.3f}", f"{margin:+.3f}"]
                out.append(f"{scores['wer']:.2f}")
        return out

    for r in rows:
        first = [r["source"], r["reference"], f"{r['source_wer']:.2f}", f"{r['source_sim_ref']:.3f}"]
        lines.append("| " + " | ".join(first + cells(r["models"])) + " |")
    means = ["**mean**", "", f"{mean(r['source_wer'] for r in rows):.2f}"]
    means.append(f"{mean(r['source_sim_ref'] for r in rows):.3f}")
    for name in names:
        scored = [r["models"][name] for r in rows if "error" not in r["models"].get(name, {"error": 1})]
        means += [f"{mean(s['sim_ref'] for s in scored):.3f}", f"{mean(s['sim_src'] for s in scored):.3f}"]
        means.append(f"{mean(s['sim_ref'] - s['sim_src'] for s in scored):+.3f}")
        means.append(f"{mean(s['wer'] for s in scored):.2f}")
    lines.append("| " + " | ".join(means) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
