"""The HTTP server: routes, limits and JSON errors, over the standard library's ``ThreadingHTTPServer``.

Why the standard library and not FastAPI or gradio: the model runs on one worker thread anyway (see
``worker``), so an async framework buys nothing; the stdlib server installs with Python, starts in
milliseconds and adds no dependency to pin. Each connection gets a thread that parses and checks its
request, then waits on the worker; a bad or failing request is answered and logged, never fatal.

Routes::

    GET  /health                  {"status": "ok", "queue": n, "voices": n, "features": [...]}
    GET  /v1/voices               {"object": "list", "data": [voice, ...]}
    POST /v1/voices               multipart form: file (audio), transcript, name → voice
    POST /v1/audio/speech         OpenAI-compatible JSON → audio (wav | flac | pcm)
    POST /v1/audio/convert        multipart form: file (source), voice or reference → audio (``convert``)
    POST /v1/audio/spectrogram    audio file → PNG (the page's picture)
    GET  /  and /static/...       the page, when started with --ui
"""

from __future__ import annotations

import io
import json
import sys
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

from maskgct.constants import SAMPLE_RATE
from maskgct.serve import convert
from maskgct.serve.requests import AUDIO_FORMATS, RequestError, speech_request, voice_form
from maskgct.serve.voices import UnknownVoice, VoiceStore, read_wav_bytes
from maskgct.serve.worker import QueueFull, Worker

STATIC = {"/": "index.html", "/static/app.js": "app.js"}
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


@dataclass
class ServeConfig:
    voices_dir: Path
    ui: bool = False
    max_queue: int = 16
    max_body_bytes: int = 20 * 2**20  # a 30 s prompt is 2.9 MB as 24 kHz float wav: room for 48 kHz stereo
    request_timeout: float = 600.0  # the longest wait for the worker before a 504
    max_batch: int = 1  # speech requests waiting together decoded as one padded batch (MaskGCT.clone_batch)


class MaskGCTServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], tts, config: ServeConfig):
        super().__init__(address, Handler)
        self.tts, self.config = tts, config
        self.voices = VoiceStore(config.voices_dir, tts)
        self.worker = Worker(config.max_queue, config.max_batch, self.speak)
        self.quiet = False  # no access log (tests, the load test)

    def run_job(self, fn):
        """Run ``fn`` on the model's thread and wait for its result (its exception is raised here)."""
        return self.wait(self.worker.submit(fn))

    def wait(self, future):
        """The result of a job submitted to the worker, or a 504 after ``request_timeout``."""
        try:
            return future.result(timeout=self.config.request_timeout)
        except FutureTimeout:
            future.cancel()
            raise RequestError(f"no result within {self.config.request_timeout:g} s", status=504) from None

    def speak(self, requests: list) -> list:
        """The worker's batch function: speech requests cloned together (``clone_batch``); when the batch
        fails, each request runs alone, so a bad one gets its own error and the others their audio."""
        try:
            batch = [
                dict(prompt=self.voices.prompt(r.voice), text=r.text, **r.clone_kwargs()) for r in requests
            ]
            return self.tts.clone_batch(batch, batch_size=len(batch))
        except Exception as err:
            if len(requests) == 1:
                return [err]
            return [self.speak([request])[0] for request in requests]

    def server_close(self) -> None:
        super().server_close()
        self.worker.close()


class Handler(BaseHTTPRequestHandler):
    server: MaskGCTServer
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds a client may stall mid-request (or idle between kept-alive requests)

    # path → handler method, per HTTP method; voice conversion only where maskgct.vc is installed.
    ROUTES = {
        "GET": {"/health": "health", "/v1/voices": "list_voices"},
        "POST": {
            "/v1/audio/speech": "speech",
            "/v1/voices": "add_voice",
            "/v1/audio/spectrogram": "spectrogram",
        }
        | ({"/v1/audio/convert": "convert_voice"} if convert.available() else {}),
    }

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if method == "GET" and path in STATIC and self.server.config.ui:
                return self.static(STATIC[path])
            if path not in self.ROUTES[method]:
                if any(path in routes for routes in self.ROUTES.values()):
                    raise RequestError(f"{method} is not allowed on {path}", status=405)
                raise RequestError(f"no such endpoint: {method} {path}", status=404)
            getattr(self, self.ROUTES[method][path])()
        except RequestError as err:
            self.send_error_json(err.status, str(err), err.param)
        except UnknownVoice as err:
            self.send_error_json(404, str(err), "voice")
        except QueueFull as err:
            self.send_error_json(503, str(err))
        except ValueError as err:  # InputError, AudioError, VoiceError: the request cannot be synthesised
            self.send_error_json(400, str(err))
        except Exception as err:  # a bug or a resource problem: answer 500, keep serving
            self.log_message("internal error on %s: %r", path, err)
            self.send_error_json(500, f"internal error: {type(err).__name__}: {err}", kind="server_error")

    # ------------------------------------------------------------------------------------------ routes
    def health(self) -> None:
        server = self.server
        features = ["speech", "voices"] + (["convert"] if convert.available() else [])
        health = {"status": "ok", "queue": server.worker.waiting, "voices": len(server.voices.list())}
        self.send_json(200, {**health, "features": features})

    def list_voices(self) -> None:
        self.send_json(200, {"object": "list", "data": self.server.voices.list()})

    def add_voice(self) -> None:
        audio, transcript, name = voice_form(self.headers.get("Content-Type", ""), self.body())
        voice = self.server.run_job(lambda: self.server.voices.register(audio, transcript, name))
        self.send_json(201, voice)

    def speech(self) -> None:
        request = speech_request(self.body())
        audio = self.server.wait(self.server.worker.submit_batchable(request))
        data = encode_audio(audio, SAMPLE_RATE, request.response_format)
        self.send_bytes(200, data, AUDIO_FORMATS[request.response_format])

    def convert_voice(self) -> None:
        request = convert.convert_request(self.headers.get("Content-Type", ""), self.body())
        result = self.server.run_job(lambda: convert.convert(self.server.tts, self.server.voices, request))
        data = encode_audio(result.audio, result.sample_rate, request.response_format)
        self.send_bytes(200, data, AUDIO_FORMATS[request.response_format])

    def spectrogram(self) -> None:
        from maskgct.serve.spectrogram import spectrogram_png

        audio, _ = read_wav_bytes(self.body())
        self.send_bytes(200, spectrogram_png(audio if audio.ndim == 1 else audio.mean(axis=1)), "image/png")

    def static(self, name: str) -> None:
        data = resources.files("maskgct.serve").joinpath("static", name).read_bytes()
        self.send_bytes(200, data, CONTENT_TYPES[Path(name).suffix])

    # ----------------------------------------------------------------------------------------- helpers
    def body(self) -> bytes:
        """The request body, refused before reading when it is larger than the server takes."""
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestError("a Content-Length header is required", status=411)
        if not length.isdigit():
            raise RequestError(f"bad Content-Length {length!r}")
        limit = self.server.config.max_body_bytes
        if int(length) > limit:
            raise RequestError(
                f"the body is {int(length)} bytes; this server takes at most {limit}", status=413
            )
        return self.rfile.read(int(length))

    def send_error_json(
        self, status: int, message: str, param: str | None = None, kind: str | None = None
    ) -> None:
        kind = kind or "invalid_request_error"
        # The body may be unread (refused before reading): never parse its rest as the next request.
        self.close_connection = True
        self.send_json(status, {"error": {"message": message, "type": kind, "param": param, "code": status}})

    def send_json(self, status: int, data: dict) -> None:
        self.send_bytes(status, json.dumps(data).encode(), "application/json")

    def send_bytes(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")


def encode_audio(audio, sample_rate: int, response_format: str) -> bytes:
    """Float audio (L,) → file bytes: 16-bit wav or flac, or raw little-endian 16-bit PCM (OpenAI's pcm)."""
    import numpy as np
    import soundfile as sf

    if response_format == "pcm":
        return (np.clip(audio, -1, 1) * 32767).round().astype("<i2").tobytes()
    out = io.BytesIO()
    sf.write(out, audio, sample_rate, subtype="PCM_16", format=response_format.upper())
    return out.getvalue()
