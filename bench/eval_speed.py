"""Time per utterance of each evaluation metric on CPU, on synthetic speech (piper joe), and load times.

    .venv/bin/python bench/eval_speed.py [--utts 8] [--threads 2]

Prints seconds per utterance and per second of audio for whisper tiny.en (two compute types), resemblyzer
and DNSMOS. On a shared machine, run it twice and read the second run.
"""

from __future__ import annotations

import argparse
import time

import librosa
import numpy as np
import torch

from maskgct.data.synth import PiperSynth, Voice
from maskgct.eval.asr import WhisperASR
from maskgct.eval.mos import dnsmos
from maskgct.eval.speaker import ResemblyzerSpeakerEncoder

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "My grandmother planted seven apple trees behind our house.",
    "Heavy rain delayed every train leaving Boston yesterday evening.",
    "Children laughed while chasing bright yellow kites across the park.",
    "We need a small plastic snake and a big toy frog for the kids.",
    "The museum opens at nine and closes at five on weekdays.",
    "Scientists measured the temperature of the lake every morning.",
]


def timed(function, clips: list[np.ndarray]) -> float:
    """Seconds per clip of ``function`` over ``clips``, after one warm-up call (first calls allocate)."""
    function(clips[0])
    started = time.perf_counter()
    for clip in clips:
        function(clip)
    return (time.perf_counter() - started) / len(clips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utts", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    piper, joe = PiperSynth(), Voice("joe", "piper", "en_US-joe-medium")
    clips = []
    for text in (SENTENCES * 4)[: args.utts]:
        wav, rate = piper(joe, text)
        clips.append(librosa.resample(wav, orig_sr=rate, target_sr=16000))
    audio_seconds = np.mean([len(clip) / 16000 for clip in clips])
    print(f"{len(clips)} utterances, mean {audio_seconds:.2f} s of audio, {args.threads} torch threads")
    print(f"{'metric':<34s} {'load s':>7s} {'s/utt':>7s} {'s per audio s':>14s}")

    def report(name: str, load_seconds: float, per_utt: float) -> None:
        print(f"{name:<34s} {load_seconds:7.2f} {per_utt:7.3f} {per_utt / audio_seconds:14.3f}")

    for compute_type in ("float32", "auto"):
        started = time.perf_counter()
        asr = WhisperASR("tiny.en", "cpu", compute_type)
        load_seconds = time.perf_counter() - started
        report(f"WER whisper tiny.en ({compute_type})", load_seconds, timed(asr.transcribe, clips))
    started = time.perf_counter()
    encoder = ResemblyzerSpeakerEncoder("cpu")
    report("SIM resemblyzer (one embedding)", time.perf_counter() - started, timed(encoder.embed, clips))
    report("DNSMOS (speechmos, P.835 + P.808)", 0.0, timed(dnsmos, clips))


if __name__ == "__main__":
    main()
