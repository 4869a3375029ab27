"""``POST /v1/audio/convert``: voice conversion (``maskgct.vc``) over HTTP, when that module is installed.

A multipart form: ``file`` (the source recording: what is said), and the voice to say it in, either
``voice`` (a registered voice: its stored recording is the reference) or ``reference`` (a recording);
optional ``seed``, ``mode`` and ``response_format``. The answer has the source's length. No transcript is
needed: conversion runs S2A on the source's semantic tokens, without T2S.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from maskgct.serve.requests import AUDIO_FORMATS, MODES, RequestError, form_fields
from maskgct.serve.voices import read_wav_bytes


def available() -> bool:
    return importlib.util.find_spec("maskgct.vc") is not None


@dataclass(frozen=True)
class ConvertRequest:
    source: bytes
    reference: bytes | None
    voice: str | None
    seed: int | None
    mode: str
    response_format: str


def convert_request(content_type: str, body: bytes) -> ConvertRequest:
    """The multipart form → a checked ``ConvertRequest``."""
    fields = form_fields(content_type, body)
    try:
        text = {k: v.decode("utf-8").strip() for k, v in fields.items() if k not in ("file", "reference")}
    except UnicodeDecodeError:
        raise RequestError("the form's text fields must be UTF-8") from None
    if not fields.get("file"):
        raise RequestError("file: the source recording is missing (a form field named 'file')", "file")
    if bool(fields.get("reference")) == bool(text.get("voice")):
        raise RequestError("give either voice (a registered voice) or reference (a recording)", "voice")
    seed = text.get("seed") or None
    if seed is not None and not (seed.isdigit() and int(seed) < 2**63):
        raise RequestError(f"seed must be a non-negative integer, not {seed!r}", "seed")
    mode, fmt = text.get("mode") or "reference", text.get("response_format") or "wav"
    if mode not in MODES:
        raise RequestError(f"mode must be one of {', '.join(MODES)}, not {mode!r}", "mode")
    if fmt not in AUDIO_FORMATS:
        raise RequestError(
            f"response_format must be one of {', '.join(AUDIO_FORMATS)}, not {fmt!r}", "response_format"
        )
    return ConvertRequest(
        fields["file"],
        fields.get("reference") or None,
        text.get("voice") or None,
        seed and int(seed),
        mode,
        fmt,
    )


def convert(tts, voices, request: ConvertRequest):
    """Run on the worker thread: → ``maskgct.vc.ConversionResult`` (``audio``, ``sample_rate``)."""
    from maskgct.audio import to_mono
    from maskgct.vc import convert_voice

    source, rate = read_wav_bytes(request.source)
    if request.voice is not None:
        reference, reference_rate = voices.recording(request.voice)
    else:
        reference, reference_rate = read_wav_bytes(request.reference)
    # convert_voice takes both arrays at one rate: bring the reference to the source's.
    source, reference = (
        to_mono(source, rate, rate, "source"),
        to_mono(reference, reference_rate, rate, "reference"),
    )
    return convert_voice(tts, source, reference, sample_rate=rate, seed=request.seed, mode=request.mode)
