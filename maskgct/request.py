"""Checks of a synthesis request, made before any network runs: each bad input is an ``InputError`` (or an
``AudioError`` for the prompt audio) whose message says what to change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from maskgct.audio import AudioError, check_audio, load_audio, to_mono
from maskgct.checkpoint import CheckpointError
from maskgct.constants import (
    MAX_SECONDS,
    MAX_TEXT_CHARS,
    PHONE_PAD_ID,
    SAMPLE_RATE,
    SEMANTIC_SAMPLE_RATE,
    SILENCE_PEAK,
)
from maskgct.sampler import SamplingOptions, check_mode
from maskgct.text import text_to_ids

MIN_PROMPT_SECONDS = 1.0


class InputError(ValueError):
    """A request that cannot be synthesised (bad prompt, text, duration or option); the message says why."""


def check_mode_arg(mode: str) -> None:
    try:
        check_mode(mode)
    except ValueError as err:
        raise InputError(str(err)) from None


def sampling_options(
    steps, s2a_steps, cfg, s2a_cfg, temperature, s2a_temperature, num_layers: int = 12
) -> SamplingOptions:
    """The official decoding settings for ``num_layers`` acoustic layers, with the given overrides (None:
    the default), checked."""
    overrides = {
        "t2s_steps": steps,
        "s2a_steps": None if s2a_steps is None else tuple(int(s) for s in s2a_steps),
        "t2s_cfg": cfg,
        "s2a_cfg": s2a_cfg,
        "t2s_temperature": temperature,
        "s2a_temperature": s2a_temperature,
    }
    defaults = SamplingOptions().for_layers(num_layers)
    options = replace(defaults, **{k: v for k, v in overrides.items() if v is not None})
    if options.t2s_steps < 1 or any(s < 1 for s in options.s2a_steps):
        raise InputError("the number of decoding steps must be at least 1")
    if options.t2s_cfg < 0 or options.s2a_cfg < 0:
        raise InputError("cfg must be >= 0")
    if options.t2s_temperature <= 0 or options.s2a_temperature <= 0:
        raise InputError("temperature must be > 0")
    return options


def phones_of(text: str | None, ids: Sequence[int] | None, language: str, what: str) -> list[int]:
    """Phone ids of ``text`` (G2P) or the ``ids`` given instead; clear errors for missing/empty input."""
    if ids is not None:
        if text is not None:
            raise InputError(f"give the {what} as text or as phone ids, not both")
        ids = [int(i) for i in ids]
        if not ids:
            raise InputError(f"the {what} phone ids are empty")
        if min(ids) < 0 or max(ids) >= PHONE_PAD_ID:
            raise InputError(f"{what} phone ids must lie in [0, {PHONE_PAD_ID})")
        return ids
    if text is None:
        raise InputError("the text to speak is missing" if what == "text" else f"the {what} text is missing")
    name = "text" if what == "text" else f"{what} text"
    if not text.strip():
        raise InputError("the text to speak is empty" if what == "text" else f"the {name} is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(
            f"the {name} is {len(text)} characters; at most {MAX_TEXT_CHARS} per request: split it into parts"
        )
    try:
        return text_to_ids(text, language)
    except ValueError as err:
        raise InputError(f"{name}: {err}") from None


def load_prompt(prompt, sample_rate: int | None) -> tuple[np.ndarray, np.ndarray]:
    """A file path or an array → mono float32 at 16 kHz and at 24 kHz, each resampled from the source (as
    the reference's two ``librosa.load`` calls). Rejects silent and too short prompts (a long one is
    trimmed by ``maskgct.prompt``)."""
    if isinstance(prompt, (str, Path)):
        if sample_rate is not None:
            raise InputError("sample_rate is only for a prompt given as an array")
        wav16, wav24 = load_audio(prompt, SEMANTIC_SAMPLE_RATE), load_audio(prompt, SAMPLE_RATE)
        name = f"prompt {prompt}"
    else:
        if sample_rate is None:
            raise InputError("a prompt given as an array needs its sample_rate")
        if isinstance(prompt, torch.Tensor):
            prompt = prompt.detach().cpu().numpy()
        prompt = check_audio(np.asarray(prompt, dtype=np.float32), "prompt")
        wav16 = to_mono(prompt, sample_rate, SEMANTIC_SAMPLE_RATE, "prompt")
        wav24 = to_mono(prompt, sample_rate, SAMPLE_RATE, "prompt")
        name = "prompt"
    seconds = len(wav16) / SEMANTIC_SAMPLE_RATE
    if seconds < MIN_PROMPT_SECONDS:
        raise AudioError(
            f"{name} is too short ({seconds:.2f} s); at least {MIN_PROMPT_SECONDS:g} s is needed"
        )
    if float(np.abs(wav16).max()) < SILENCE_PEAK:
        raise AudioError(f"{name} is silent")
    return wav16, wav24


def check_prompt_seconds(seconds: float) -> None:
    """A ``Prompt`` made elsewhere (``encode_prompt`` trims long recordings) must fit the 30 s window."""
    if seconds > MAX_SECONDS:
        raise AudioError(
            f"the prompt is too long ({seconds:.1f} s); at most {MAX_SECONDS:g} s (prompt plus output) "
            "fits the model: cut it to 3-15 s"
        )


def check_compatible(tokenizer, codec, t2s, s2a_1layer, s2a_full) -> None:
    """Raise ``CheckpointError`` unless the five networks fit together."""
    vocab = tokenizer.codec.config.codebook_size
    problems = []
    for name, net in (("t2s", t2s), ("s2a_1layer", s2a_1layer), ("s2a_full", s2a_full)):
        if net.config.cond_codebook_size != vocab:
            problems.append(
                f"{name} reads {net.config.cond_codebook_size} semantic codes, the tokenizer has {vocab}"
            )
    if codec.reads_semantic and codec.config.semantic_codebook_size != vocab:
        problems.append(
            f"the codec's decoder reads {codec.config.semantic_codebook_size} semantic codes, the tokenizer "
            f"has {vocab}"
        )
    if s2a_1layer.config.num_quantizer != 1:
        problems.append(f"s2a_1layer predicts {s2a_1layer.config.num_quantizer} layers, not 1")
    if s2a_full.config.num_quantizer != codec.num_quantizers:
        problems.append(
            f"s2a_full predicts {s2a_full.config.num_quantizer} layers, the codec has {codec.num_quantizers}"
        )
    for name, net in (("s2a_1layer", s2a_1layer), ("s2a_full", s2a_full)):
        if net.config.codebook_size != codec.codebook_size:
            problems.append(
                f"{name} has {net.config.codebook_size} acoustic codes, the codec has {codec.codebook_size}"
            )
    if problems:
        raise CheckpointError("incompatible networks: " + "; ".join(problems))
