"""Where a zero-shot clone loses its words and its voice: ``python -m maskgct.eval.diagnose``.

For the first clones of a meta list (``--count``, default 1; each entry with its ground-truth recording),
whisper transcribes six versions of the target sentence, from the most to the least of the pipeline:

* the clone (text → T2S → S2A → codec);
* the recording's own semantic tokens through S2A and the codec (the clone without its T2S stage);
* the recording's own first acoustic layer, S2A's finer layers on top (the full S2A model alone);
* the codec's round trip of the recording from its first acoustic layer only; where the codec's decoder
  reads semantic tokens, from the recording's tokens and the first layers it reads with them (what a
  perfect S2A gives);
* the acoustic codec's round trip of the recording (the ceiling any clone can reach);
* the recording itself (the ceiling of the recogniser on this voice).

The stage whose version first loses the words is the one that needs more training: T2S when only the
clone does; the 1-layer S2A model when S2A loses them but the full model on the recording's first layer
keeps them; the full model when that version loses them too. It prints the first
clone's transcripts, the word error rate of each version pooled over the clones, and the clones' speaker
similarity to their prompts against that to each training voice (a first utterance of each),
and the mean WER/SIM of the whole evaluation (``summary.json`` of ``python -m maskgct.eval``).

    python -m maskgct.eval.diagnose --checkpoint exp/maskgct --meta exp/decode/meta.lst \\
        --gen-dir exp/decode/wav --report exp/decode/report --train-dir data/train
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from maskgct.api import MaskGCT, frame_semantic
from maskgct.audio import load_audio
from maskgct.cli import DEVICE_HELP, pick_device, report_error
from maskgct.codecs.mel_codec import fit_frames
from maskgct.constants import SAMPLE_RATE, SEMANTIC_SAMPLE_RATE
from maskgct.data.datadir import read_datadir
from maskgct.eval.asr import load_asr
from maskgct.eval.audio import load_speech
from maskgct.eval.meta import read_meta
from maskgct.eval.speaker import cosine, load_speaker_encoder
from maskgct.eval.wer import error_counts
from maskgct.sampler import SamplingOptions


@torch.no_grad()
def stage_versions(
    model: MaskGCT, prompt_wav: str, prompt_text: str, recording: str, seed: int = 0
) -> list[np.ndarray]:
    """The recording re-made with stages skipped, each Float(L,) at 24 kHz (the module docstring's order):
    its semantic tokens through S2A (prompted like a clone) and the codec; its own first acoustic layer
    with the full S2A model's finer layers on top; the codec's round trip of its first layers (those the
    decoder reads with the recording's semantic tokens, else 1); the round trip of all its layers.
    The prompt, the tokens and the codes are computed once; each S2A run has its own seeded generator."""
    prompt = model.encode_prompt(prompt_wav, prompt_text)
    wav16 = torch.from_numpy(load_audio(recording, SEMANTIC_SAMPLE_RATE))
    semantic = model.tokenizer.tokenize(wav16.to(model.device)).to(model.device)
    wav24 = load_audio(recording, SAMPLE_RATE)
    wav24 = wav24[: len(wav24) // model.codec.hop_length * model.codec.hop_length]
    codes = model.codec.encode(torch.from_numpy(wav24).to(model.device)[None, None])[0]
    # S2A's condition of each generated frame (its alignment: from the acoustic prompt's length on).
    condition = frame_semantic(prompt, semantic)
    generated = model.semantic_to_acoustic(prompt, semantic, generator=seeded(model, seed))
    options = SamplingOptions().for_layers(model.s2a_full.config.num_quantizer)
    finer = model.s2a_full.generate(
        torch.cat([prompt.semantic, semantic])[None],
        prompt.acoustic[None],
        options.s2a_steps,
        options.s2a("reference", seeded(model, seed)),
        fit_frames(codes[:, :1], len(condition))[None],
    )[0]
    first = model.codec.config.semantic_quantizers if model.codec.reads_semantic else 1
    return [
        model.decode(generated, condition),
        model.decode(finer, condition),
        model.decode(codes[:, :first], semantic),
        model.decode(codes),
    ]


def seeded(model: MaskGCT, seed: int) -> torch.Generator:
    return torch.Generator(model.device).manual_seed(seed)


def diagnose(
    checkpoint: str,
    meta: str,
    gen_dir: str,
    train_dir: str,
    report: str | None = None,
    count: int = 1,
    device: str = "auto",
) -> list[str]:
    """The lines this module prints (see the module docstring): the first ``count`` clones of the list,
    each version's transcript for the first, and word error rates pooled over all ``count``."""
    entries = read_meta(meta)[:count]
    missing = [e.utt for e in entries if not e.gt_wav]
    if missing:
        raise ValueError(f"{meta}: entry {missing[0]} has no ground-truth recording to compare with")
    summary = read_summary(report) if report is not None else None
    model = MaskGCT.from_pretrained(checkpoint, pick_device(device))
    asr, speaker = load_asr(), load_speaker_encoder()
    data = read_datadir(train_dir)
    training_voices = [speaker.embed(load_speech(str(data.audio_path(u[0])))) for u in data.spk2utt.values()]
    names = (
        "clone",
        "from the recording's semantic tokens (S2A + codec)",
        "the recording's first acoustic layer + S2A's finer layers",
        "codec round trip, first layer(s) only (+ semantic tokens if the codec reads them)",
        "codec round trip of the recording",
        "the recording",
    )
    errors = dict.fromkeys(names, 0)
    words = 0
    to_prompt, to_voices, to_voices_max = [], [], []
    lines = []
    for index, entry in enumerate(entries):
        clone_path = Path(gen_dir) / f"{entry.utt}.wav"
        gt_wav = str(entry.gt_wav)
        remade = stage_versions(model, str(entry.prompt_wav), entry.prompt_text, gt_wav)
        wavs = (
            load_speech(str(clone_path)),
            *(load_speech(wav, SAMPLE_RATE) for wav in remade),
            load_speech(gt_wav),
        )
        versions = dict(zip(names, wavs, strict=True))
        if index == 0:
            lines += [
                f"held-out voice prompt: {entry.prompt_wav}  ({entry.prompt_text!r})",
                f"cloned speech:         {clone_path}  ({entry.target_text!r})",
                "whisper (tiny.en) hears:",
            ]
        for name, wav in versions.items():
            heard = asr.transcribe(wav)
            counts = error_counts(heard, entry.target_text)
            errors[name] += counts.errors
            if index == 0:
                lines.append(f"  WER {counts.rate:.3f}  {name}: {heard!r}")
        words += error_counts(entry.target_text, entry.target_text).reference_length
        clone = speaker.embed(versions["clone"])
        similarities = [cosine(clone, voice) for voice in training_voices]
        to_prompt.append(cosine(clone, speaker.embed(load_speech(str(entry.prompt_wav)))))
        to_voices.append(np.mean(similarities))
        to_voices_max.append(max(similarities))
    if len(entries) > 1:
        lines.append(f"whisper WER over the first {len(entries)} clones ({words} words):")
        lines += [f"  WER {errors[name] / words:.3f}  {name}" for name in names]
    lines.append(
        f"speaker similarity of the clone{'s' if len(entries) > 1 else ''}: to the prompt "
        f"{np.mean(to_prompt):.3f}, to the {len(training_voices)} training voices {np.mean(to_voices):.3f} "
        f"(max {np.mean(to_voices_max):.3f})"
    )
    if summary is not None:
        lines.append(f"all {summary['n']} clones: WER {summary['wer']:.3f}  SIM {summary['sim']:.3f}")
    return lines


def read_summary(report: str) -> dict:
    """``summary.json`` of ``python -m maskgct.eval`` in ``report``, checked before any model loads."""
    path = Path(report) / "summary.json"
    summary = json.loads(path.read_text())
    if not isinstance(summary, dict) or not {"n", "wer", "sim"} <= summary.keys():
        raise ValueError(f"{path}: not the summary of `python -m maskgct.eval` with wer and sim")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m maskgct.eval.diagnose", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--checkpoint", required=True, help="the MaskGCT folder that made the clones")
    parser.add_argument(
        "--meta", required=True, help="meta list of the clones (its first entry is diagnosed)"
    )
    parser.add_argument("--gen-dir", required=True, help="folder of the clones, <utt>.wav")
    parser.add_argument("--train-dir", required=True, help="the training data dir (its voices)")
    parser.add_argument("--report", help="the evaluation's output folder (summary.json), for the means")
    parser.add_argument(
        "--count", type=int, default=1, help="diagnose the first N clones, WER pooled over them (default 1)"
    )
    parser.add_argument("--device", default="auto", help=f"the MaskGCT model's: {DEVICE_HELP}")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    try:
        lines = diagnose(
            args.checkpoint, args.meta, args.gen_dir, args.train_dir, args.report, args.count, args.device
        )
    except (OSError, ValueError) as err:
        return report_error(err)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
