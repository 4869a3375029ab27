#!/usr/bin/env python3
"""Zero-shot clones of real recorded voices, for the default model's card.

Real speech is scarce offline: Debian's ``codec2-examples`` holds a few short recordings (8 kHz raw, one at
16 kHz), each of a different speaker. They only ever prompt, never train.

    local/real_voices.py meta OUT_DIR TEXT [--per-voice 2]
        OUT_DIR/wav/<voice>.wav (16 kHz) and OUT_DIR/meta.lst: each recording, its transcript by whisper
        tiny.en as the prompt text, prompts ``--per-voice`` sentences of the Kaldi ``TEXT`` file (held-out
        sentences), voice i taking sentences i*per_voice onwards, so every clone says a different one.
    local/real_voices.py score OUT_DIR GEN_DIR
        Speaker similarity of each clone to its own prompt and, on average, to the other voices' prompts
        (resemblyzer): a clone carries the voice only where the first is higher. Prints one line of means.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from maskgct.eval.asr import load_asr
from maskgct.eval.audio import SAMPLE_RATE, load_speech
from maskgct.eval.meta import MetaEntry, generated_path, read_meta, write_meta
from maskgct.eval.speaker import cosine, load_speaker_encoder

CODEC2 = Path("/usr/share/codec2")
# Speech of different speakers, 1.5-11 s (the other files are modem frames, tones or long radio contacts).
RAW_8K = ("hts1a", "hts2a", "forig", "morig", "big_dog", "kristoff", "mmt1")
VOICES = {name: CODEC2 / "raw" / f"{name}.raw" for name in RAW_8K}
VOICES["speech_orig_16k"] = CODEC2 / "raw" / "speech_orig_16k.wav"


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def read_recording(path: Path) -> np.ndarray:
    """Float(L,) at 16 kHz: the ``.raw`` files are headerless 16-bit little-endian mono at 8 kHz."""
    if path.suffix == ".raw":
        return load_speech(np.fromfile(path, dtype="<i2").astype(np.float32) / 32768, 8000, str(path))
    return load_speech(path)


def make_meta(out_dir: Path, text: Path, per_voice: int) -> None:
    missing = [str(path) for path in VOICES.values() if not path.is_file()]
    if missing:
        fail(f"{missing[0]} not found: apt-get install codec2-examples")
    if not text.is_file() or per_voice < 1:
        fail(f"need a Kaldi text file and --per-voice >= 1 (got {text}, {per_voice})")
    sentences = [line.split(maxsplit=1)[1] for line in text.read_text().splitlines() if " " in line.strip()]
    if len(sentences) < per_voice * len(VOICES):
        fail(f"{text} has {len(sentences)} sentences, {per_voice * len(VOICES)} needed")
    asr = load_asr()
    (out_dir / "wav").mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (voice, path) in enumerate(VOICES.items()):
        wav = read_recording(path)
        prompt = out_dir / "wav" / f"{voice}.wav"
        sf.write(prompt, wav, SAMPLE_RATE)
        prompt_text = asr.transcribe(wav)
        for j in range(per_voice):
            target = sentences[i * per_voice + j]
            entries.append(MetaEntry(f"{voice}_{j}", prompt_text, prompt, target))
    write_meta(out_dir / "meta.lst", entries)
    print(f"{len(entries)} clones of {len(VOICES)} real voices: {out_dir / 'meta.lst'}")


def score(out_dir: Path, gen_dir: Path) -> None:
    entries = read_meta(out_dir / "meta.lst")
    encoder = load_speaker_encoder()
    prompts = {entry.prompt_wav: encoder.embed(load_speech(entry.prompt_wav)) for entry in entries}
    rows = []
    for entry in entries:
        clone = encoder.embed(load_speech(generated_path(entry, gen_dir)))
        own = cosine(clone, prompts[entry.prompt_wav])
        others = [cosine(clone, emb) for wav, emb in prompts.items() if wav != entry.prompt_wav]
        other = float(np.mean(others))
        rows.append({"utt": entry.utt, "sim_own": own, "sim_other": other})
    summary = {
        "n": len(rows),
        "sim_own": float(np.mean([row["sim_own"] for row in rows])),
        "sim_other": float(np.mean([row["sim_other"] for row in rows])),
        "own_higher": sum(row["sim_own"] > row["sim_other"] for row in rows),
        "rows": rows,
    }
    (gen_dir / "real_similarity.json").write_text(json.dumps(summary, indent=1))
    print(
        f"real voices: similarity to own prompt {summary['sim_own']:.3f}, to the others' "
        f"{summary['sim_other']:.3f}, own higher for {summary['own_higher']} of {len(rows)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    meta = commands.add_parser("meta")
    meta.add_argument("out_dir", type=Path)
    meta.add_argument("text", type=Path)
    meta.add_argument("--per-voice", type=int, default=2)
    scored = commands.add_parser("score")
    scored.add_argument("out_dir", type=Path)
    scored.add_argument("gen_dir", type=Path)
    args = parser.parse_args()
    if args.command == "meta":
        make_meta(args.out_dir, args.text, args.per_voice)
    else:
        score(args.out_dir, args.gen_dir)


if __name__ == "__main__":
    main()
