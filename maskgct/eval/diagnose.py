"""Where a zero-shot clone loses its words and its voice: ``python -m maskgct.eval.diagnose``.

For one clone (the first line of a meta list, whose entry has the ground-truth recording), whisper
transcribes four versions of the target sentence, from the most to the least of the pipeline:

* the clone (text → T2S → S2A → codec);
* the recording's own semantic tokens through S2A and the codec (the clone without its T2S stage);
* the acoustic codec's round trip of the recording (the ceiling any clone can reach);
* the recording itself (the ceiling of the recogniser on this voice).

The stage whose version first loses the words is the one that needs more training. It also prints the
clone's speaker similarity to its prompt against that to each training voice (a first utterance of each),
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

from maskgct.api import MaskGCT
from maskgct.audio import load_audio
from maskgct.data.datadir import read_datadir
from maskgct.eval.asr import error_counts, load_asr
from maskgct.eval.audio import load_speech
from maskgct.eval.meta import read_meta
from maskgct.eval.speaker import cosine, load_speaker_encoder


def resynthesise(
    model: MaskGCT, prompt_wav: str, prompt_text: str, recording: str, seed: int = 0
) -> np.ndarray:
    """The recording's semantic tokens → S2A (prompted like a clone) → codec: Float(L,) at 24 kHz."""
    with torch.no_grad():
        prompt = model.encode_prompt(prompt_wav, prompt_text)
        semantic = model.tokenizer.tokenize(torch.from_numpy(load_audio(recording, 16000)).to(model.device))
        generator = torch.Generator(model.device).manual_seed(seed)
        codes = model.semantic_to_acoustic(prompt, semantic, generator=generator)
        return model.codec.decode(codes[None])[0, 0].float().cpu().numpy()


def round_trip(model: MaskGCT, recording: str) -> np.ndarray:
    """The recording through the acoustic codec (all its stages): Float(L,) at 24 kHz."""
    wav = load_audio(recording, 24000)
    wav = wav[: len(wav) // model.codec.hop_length * model.codec.hop_length]
    with torch.no_grad():
        codes = model.codec.encode(torch.from_numpy(wav).to(model.device)[None, None])
        return model.codec.decode(codes)[0, 0].float().cpu().numpy()


def diagnose(
    checkpoint: str, meta: str, gen_dir: str, train_dir: str, report: str | None = None
) -> list[str]:
    """The lines this module prints (see the module docstring)."""
    entry = read_meta(meta)[0]
    if not entry.gt_wav:
        raise ValueError(f"{meta}: its first entry has no ground-truth recording to compare with")
    clone_path = Path(gen_dir) / f"{entry.utt}.wav"
    model = MaskGCT.from_pretrained(checkpoint)
    versions = {
        "clone": load_speech(str(clone_path)),
        "from the recording's semantic tokens (S2A + codec)": load_speech(
            resynthesise(model, str(entry.prompt_wav), entry.prompt_text, str(entry.gt_wav)), 24000
        ),
        "codec round trip of the recording": load_speech(round_trip(model, str(entry.gt_wav)), 24000),
        "the recording": load_speech(str(entry.gt_wav)),
    }
    asr = load_asr()
    lines = [
        f"held-out voice prompt: {entry.prompt_wav}  ({entry.prompt_text!r})",
        f"cloned speech:         {clone_path}  ({entry.target_text!r})",
        "whisper (tiny.en) hears:",
    ]
    for name, wav in versions.items():
        heard = asr.transcribe(wav)
        lines.append(f"  WER {error_counts(heard, entry.target_text).rate:.3f}  {name}: {heard!r}")

    speaker = load_speaker_encoder()
    clone = speaker.embed(versions["clone"])
    data = read_datadir(train_dir)
    voices = [
        cosine(clone, speaker.embed(load_speech(str(data.audio_path(utts[0])))))
        for utts in data.spk2utt.values()
    ]
    to_prompt = cosine(clone, speaker.embed(load_speech(str(entry.prompt_wav))))
    lines.append(
        f"speaker similarity of the clone: to its prompt {to_prompt:.3f}, "
        f"to the {len(voices)} training voices {np.mean(voices):.3f} (max {max(voices):.3f})"
    )
    if report is not None:
        summary = json.loads((Path(report) / "summary.json").read_text())
        lines.append(f"all {summary['n']} clones: WER {summary['wer']:.3f}  SIM {summary['sim']:.3f}")
    return lines


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
    args = parser.parse_args(argv)
    try:
        lines = diagnose(args.checkpoint, args.meta, args.gen_dir, args.train_dir, args.report)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
