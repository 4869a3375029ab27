"""Checking request bodies: JSON for speech, multipart form data for a new voice.

Every problem is a ``RequestError`` that names the field and becomes a 4xx JSON answer; nothing a client
sends reaches the model unchecked. The speech fields follow OpenAI's ``/v1/audio/speech`` (``model`` is
accepted and ignored: one model is served), with MaskGCT's own options beside them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP

from maskgct.constants import MAX_OUTPUT_SECONDS, MAX_TEXT_CHARS

AUDIO_FORMATS = {"wav": "audio/wav", "flac": "audio/flac", "pcm": "audio/L16"}
SPEED_RANGE = (0.25, 4.0)  # OpenAI's range
MAX_STEPS = 200
MODES = ("reference", "fast")


class RequestError(ValueError):
    """A bad request: ``status`` is the HTTP status, ``param`` the offending field (or None)."""

    def __init__(self, message: str, param: str | None = None, status: int = 400):
        super().__init__(message)
        self.param, self.status = param, status


@dataclass(frozen=True)
class SpeechRequest:
    text: str
    voice: str
    response_format: str = "wav"
    speed: float = 1.0
    duration: str | float = "rule"
    seed: int | None = None
    steps: int | None = None
    mode: str = "reference"

    def clone_kwargs(self) -> dict:
        return {"duration": self.duration, "speed": self.speed, "seed": self.seed, "steps": self.steps,
                "mode": self.mode}  # fmt: skip


def reject_constant(name: str):
    # json.loads accepts NaN and Infinity, which are not JSON and would reach the model as numbers.
    raise RequestError(f"{name} is not a JSON number")


def parse_json(body: bytes) -> dict:
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=reject_constant)
    except UnicodeDecodeError:
        raise RequestError("the body is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise RequestError(f"malformed JSON: {err}") from None
    if not isinstance(data, dict):
        raise RequestError("the body must be a JSON object")
    return data


def json_type(value) -> str:
    """How a JSON value's type reads in an error message."""
    names = {bool: "true/false", int: "a number", float: "a number", str: "a string", list: "an array"}
    return names.get(type(value), "an object")


def number(data: dict, key: str, lo: float, hi: float, default):
    value = data.get(key, default)
    if value is default:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"{key} must be a number, not {json_type(value)}", key)
    if not math.isfinite(value) or not lo <= value <= hi:
        raise RequestError(f"{key} must be between {lo:g} and {hi:g}, not {value!r}", key)
    return value


def integer(data: dict, key: str, lo: int, hi: int) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{key} must be an integer, not {json_type(value)}", key)
    if not lo <= value <= hi:
        raise RequestError(f"{key} must be between {lo} and {hi}, not {value}", key)
    return value


def text_field(data: dict, key: str, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise RequestError(
            f"{key} must be a string, not {'missing' if value is None else json_type(value)}", key
        )
    return value


def speech_request(body: bytes) -> SpeechRequest:
    """The body of ``POST /v1/audio/speech`` → a checked ``SpeechRequest``."""
    data = parse_json(body)
    text = text_field(data, "input")
    if not text.strip():
        raise RequestError("input: the text to speak is empty", "input")
    if len(text) > MAX_TEXT_CHARS:
        raise RequestError(f"input is {len(text)} characters; at most {MAX_TEXT_CHARS}", "input")
    voice = text_field(data, "voice")
    fmt = text_field(data, "response_format", required=False) or "wav"
    if fmt not in AUDIO_FORMATS:
        raise RequestError(
            f"response_format must be one of {', '.join(AUDIO_FORMATS)}, not {fmt!r}", "response_format"
        )
    duration = data.get("duration", "rule")
    if duration is None or duration in ("rule", "auto"):
        duration = duration or "rule"
    else:
        duration = number(data, "duration", 1e-3, MAX_OUTPUT_SECONDS, None)
    mode = text_field(data, "mode", required=False) or "reference"
    if mode not in MODES:
        raise RequestError(f"mode must be one of {', '.join(MODES)}, not {mode!r}", "mode")
    return SpeechRequest(
        text=text,
        voice=voice,
        response_format=fmt,
        speed=float(number(data, "speed", *SPEED_RANGE, 1.0)),
        duration=float(duration) if not isinstance(duration, str) else duration,
        seed=integer(data, "seed", 0, 2**63 - 1),
        steps=integer(data, "steps", 1, MAX_STEPS),
        mode=mode,
    )


def form_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    """A ``multipart/form-data`` body → ``{field name: bytes}`` (files and plain fields alike)."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise RequestError(
            f"expected multipart/form-data, not {content_type or 'no content type'!r}", status=415
        )
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    if not message.is_multipart():
        raise RequestError("malformed multipart/form-data body")
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = part.get_payload(decode=True) or b""
    return fields


def voice_form(content_type: str, body: bytes) -> tuple[bytes, str | None, str | None]:
    """``POST /v1/voices`` form → (audio file bytes, transcript or None, name or None)."""
    fields = form_fields(content_type, body)
    audio = fields.get("file")
    if not audio:
        raise RequestError("file: the prompt recording is missing (a form field named 'file')", "file")
    try:
        transcript, name = (
            fields[k].decode("utf-8") if k in fields else None for k in ("transcript", "name")
        )
    except UnicodeDecodeError:
        raise RequestError("transcript and name must be UTF-8 text") from None
    return audio, transcript or None, name or None
