"""Voice conversion: say what a source recording says in the voice of a reference recording.

MaskGCT's S2A turns semantic tokens (what is said, and its pacing) into acoustic codes in the voice of its
acoustic prompt, so the TTS networks convert voices without T2S and without any transcript::

    source ─16 kHz─▶ semantic tokenizer ─▶ source semantic (T) ────────────┐
    reference ─▶ semantic tokens (Tr) + acoustic codes (Tr, Q) ─ prompt ───┴▶ S2A ▶ codes (T, Q) ▶ codec
                                                                             ▶ 24 kHz audio, source length

The reference's semantic and acoustic frames are cut to their common length, as S2A was trained on them
(the TTS pipeline keeps the official one-frame offset instead), so S2A gives exactly one frame per source
token. The source is tokenised with a short silence appended, so that its tokens cover every 480-sample
output frame; the decoded audio is then cut to the source's length.

Long sources: prompt and source together must fit the 30 s the models were trained on. A longer source is
cut at pauses (the quietest frames in the second half of the room left) into chunks, each converted with
the same reference; each chunk after the first starts one crossfade (50 ms) early, and the chunks are
joined with the long-text crossfade, so the joins fall in pauses and the output keeps the source's length.

``python -m maskgct.vc`` is the command line (``maskgct.vc_cli``); ``MaskGCT.convert_voice`` the API.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from maskgct.api import MaskGCT, ProgressFn, Prompt, frame_semantic, sampling_options
from maskgct.audio import AudioError, check_audio, load_audio, to_mono
from maskgct.constants import (
    ACOUSTIC_HOP,
    FRAME_RATE,
    MAX_SECONDS,
    SAMPLE_RATE,
    SEMANTIC_SAMPLE_RATE,
    SILENCE_PEAK,
)
from maskgct.longtext import CROSSFADE_SECONDS, crossfade_join
from maskgct.request import MIN_PROMPT_SECONDS, InputError, check_mode_arg

OVERLAP = round(CROSSFADE_SECONDS * SAMPLE_RATE)  # samples each chunk after the first starts early
# Every chunk gets at least this much source; the reference may take the rest of the 30 s window.
MIN_CHUNK_SECONDS = 5.0
# The front ends give one token per 320 samples less their analysis window (~25 ms); this much silence
# appended to a segment makes its tokens cover all of its output frames (the surplus is dropped).
TOKEN_PAD_SECONDS = 0.1
# Shorter than this is not speech (the front ends need two 25 ms analysis windows).
MIN_SOURCE_SECONDS = 0.1
# Pauses are scored by the mean energy of this many frames around a cut: the crossfade before it and a
# little after.
PAUSE_FRAMES = 5


@dataclass
class ConvertedChunk:
    """One converted piece: the source samples [start, end) at 24 kHz (the crossfade before a cut
    included), its semantic tokens Long(T,), acoustic codes Long(T, Q) and audio float32 (end - start,)."""

    start: int
    end: int
    semantic: torch.Tensor
    codes: torch.Tensor
    audio: np.ndarray


@dataclass
class ConversionResult:
    audio: np.ndarray  # float32 (L,) at ``sample_rate``, L = the source's length at that rate
    sample_rate: int
    reference: Prompt
    chunks: list[ConvertedChunk] = field(default_factory=list)


def load_clip(audio, sample_rate: int | None, name: str, min_seconds: float, max_seconds: float):
    """A file, or an array at ``sample_rate`` (unused for a file) → mono float32 at 16 kHz and at 24 kHz,
    each resampled from the original. Rejects silent clips and clips outside [min_seconds, max_seconds]."""
    if isinstance(audio, (str, Path)):
        wav16, wav24 = load_audio(audio, SEMANTIC_SAMPLE_RATE), load_audio(audio, SAMPLE_RATE)
        name = f"{name} {audio}"
    else:
        if sample_rate is None:
            raise InputError(f"a {name} given as an array needs its sample_rate")
        if isinstance(audio, torch.Tensor):
            audio = audio.detach().cpu().numpy()
        audio = check_audio(np.asarray(audio, dtype=np.float32), name)
        wav16 = to_mono(audio, sample_rate, SEMANTIC_SAMPLE_RATE, name)
        wav24 = to_mono(audio, sample_rate, SAMPLE_RATE, name)
    seconds = len(wav24) / SAMPLE_RATE
    if seconds < min_seconds:
        raise AudioError(f"{name} is too short ({seconds:.2f} s); at least {min_seconds:g} s is needed")
    if seconds > max_seconds:
        raise AudioError(f"{name} is too long ({seconds:.1f} s); at most {max_seconds:g} s")
    if float(np.abs(wav16).max()) < SILENCE_PEAK:
        raise AudioError(f"{name} is silent")
    return wav16, wav24


def check_window(window_seconds: float) -> None:
    """The window (reference plus one chunk) must hold the shortest reference and chunk, and at most the
    30 s the models were trained on."""
    shortest = MIN_PROMPT_SECONDS + MIN_CHUNK_SECONDS
    if not shortest <= window_seconds <= MAX_SECONDS:  # also refuses nan
        raise InputError(f"the window must lie in [{shortest:g}, {MAX_SECONDS:g}] s, not {window_seconds!r}")


def encode_reference(
    model: MaskGCT, reference, sample_rate: int | None = None, window_seconds: float = MAX_SECONDS
) -> Prompt:
    """The reference voice as an S2A prompt (no transcript): semantic and acoustic codes of equal length."""
    check_window(window_seconds)
    longest = window_seconds - MIN_CHUNK_SECONDS
    wav16, wav24 = load_clip(reference, sample_rate, "reference", MIN_PROMPT_SECONDS, longest)
    semantic = model.tokenizer.tokenize(wav16).to(model.device)
    acoustic = model.codec.encode(torch.from_numpy(wav24).to(model.device)[None, None])[0]
    frames = min(len(semantic), len(acoustic))
    return Prompt(semantic[:frames], acoustic[:frames], [], len(wav16))


def plan_chunks(wav24: np.ndarray, max_frames: int) -> list[tuple[int, int]]:
    """Source samples ``[(start, end)]`` of each chunk: one chunk if it fits ``max_frames``, else cuts at
    frame boundaries in pauses, each chunk after the first starting one crossfade before its cut."""
    total = -(-len(wav24) // ACOUSTIC_HOP)
    if total <= max_frames:
        return [(0, len(wav24))]
    # The frames a chunk may have after its cut: the room less the crossfade before the cut.
    longest = max_frames - math.ceil(OVERLAP / ACOUSTIC_HOP)
    padded = np.zeros(total * ACOUSTIC_HOP, np.float64)
    padded[: len(wav24)] = wav24
    energy = np.square(padded).reshape(total, ACOUSTIC_HOP).mean(axis=1)
    # score[i]: energy of frames [i - 3, i + 2) (PAUSE_FRAMES = 5), the region a cut at boundary i blends.
    before = PAUSE_FRAMES - PAUSE_FRAMES // 2
    sums = np.concatenate([[0.0], np.cumsum(np.pad(energy, (before, PAUSE_FRAMES)))])
    score = (sums[PAUSE_FRAMES:] - sums[:-PAUSE_FRAMES])[: total + 1]
    cuts = [0]
    while total - cuts[-1] > longest:
        lo, hi = cuts[-1] + longest // 2, cuts[-1] + longest
        window = score[lo : hi + 1]
        cuts.append(hi - int(np.argmin(window[::-1])))  # the latest of the quietest: fewest chunks
    bounds = [c * ACOUSTIC_HOP for c in cuts] + [len(wav24)]
    return [(max(start - OVERLAP, 0), end) for start, end in zip(bounds[:-1], bounds[1:], strict=True)]


@torch.no_grad()
def convert_voice(
    model: MaskGCT,
    source,
    reference,
    *,
    sample_rate: int | None = None,
    seed: int | None = None,
    mode: str = "reference",
    steps=None,
    cfg: float | None = None,
    temperature: float | None = None,
    window_seconds: float = MAX_SECONDS,
    max_source_seconds: float = math.inf,
    progress: ProgressFn | None = None,
) -> ConversionResult:
    """Say what ``source`` says in the voice of ``reference``; the audio has the source's length.

    source / reference: files, or arrays at ``sample_rate``; reference may be a ``Prompt`` from
    ``encode_reference``. seed: seeds a private generator (None: the global one); mode: "reference" |
    "fast"; steps (one entry per acoustic layer) / cfg / temperature: S2A overrides; window_seconds: the
    reference plus one chunk at most (the models' 30 s).
    """
    check_mode_arg(mode)
    for name, value in (("cfg", cfg), ("temperature", temperature)):
        if value is not None and not math.isfinite(value):
            raise InputError(f"{name} must be a finite number, not {value!r}")
    layers = model.s2a_full.config.num_quantizer
    options = sampling_options(None, steps, None, cfg, None, temperature, layers)
    if len(options.s2a_steps) != layers:
        raise InputError(
            f"steps needs {layers} entries (one per acoustic layer), got {len(options.s2a_steps)}"
        )
    check_window(window_seconds)
    wav16, wav24 = load_clip(source, sample_rate, "source", MIN_SOURCE_SECONDS, max_source_seconds)
    if not isinstance(reference, Prompt):
        reference = encode_reference(model, reference, sample_rate, window_seconds)
    room = int(window_seconds * FRAME_RATE) - len(reference.semantic)
    if room < MIN_CHUNK_SECONDS * FRAME_RATE:
        raise InputError(
            f"the reference leaves {max(room, 0) / FRAME_RATE:.1f} s of the {window_seconds:g} s window; "
            f"at least {MIN_CHUNK_SECONDS:g} s is needed: use a shorter reference"
        )
    pieces = plan_chunks(wav24, room)
    generator = None if seed is None else torch.Generator(model.device).manual_seed(int(seed))
    chunks = []
    for index, (start, end) in enumerate(pieces):
        last = index == len(pieces) - 1
        # Cuts are whole frames (480 samples at 24 kHz = 320 at 16 kHz) and the crossfade 1200 = 800
        # samples, so both rates cut at the same instant.
        stop = None if last else end * SEMANTIC_SAMPLE_RATE // SAMPLE_RATE
        segment = wav16[start * SEMANTIC_SAMPLE_RATE // SAMPLE_RATE : stop]
        semantic, codes, audio = convert_segment(
            model, reference, segment, end - start, options, mode, generator
        )
        chunks.append(ConvertedChunk(start, end, semantic, codes, audio))
        if progress:
            progress("voice conversion", index + 1, len(pieces))
    audio = crossfade_join([c.audio for c in chunks], OVERLAP)
    return ConversionResult(audio, SAMPLE_RATE, reference, chunks)


def convert_segment(
    model: MaskGCT, reference: Prompt, wav16: np.ndarray, num_samples: int, options, mode, generator
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """16 kHz source audio → (semantic Long(T,), codes Long(T, Q), audio (num_samples,)), T = ⌈N / 480⌉."""
    frames = -(-num_samples // ACOUSTIC_HOP)
    silence = np.zeros(round(TOKEN_PAD_SECONDS * SEMANTIC_SAMPLE_RATE), np.float32)
    tokens = model.tokenizer.tokenize(np.concatenate([wav16, silence]))
    if len(tokens) < frames:
        raise RuntimeError(f"the semantic tokenizer gave {len(tokens)} tokens for {frames} frames")
    semantic = tokens[:frames].to(model.device)
    with model._precision(mode):
        codes = model.semantic_to_acoustic(reference, semantic, options, mode, generator)
    audio = model.decode(codes, frame_semantic(reference, semantic))
    return semantic, codes, audio[:num_samples]


if __name__ == "__main__":
    import sys

    from maskgct.vc_cli import main

    sys.exit(main())
