"""Registered voices: a prompt recording encoded once and kept on disk, so it survives restarts.

Layout of the voices folder, one sub-folder per voice id::

    <id>/prompt.wav          the recording (16-bit, its own rate; the kept part of a trimmed one), to
                             encode again for another model
    <id>/tokens.safetensors  semantic Long(Tp,) and acoustic Long(Ta, Q) tokens of the prompt
    <id>/voice.json          id, transcript (whisper's when none was given), notes, phone ids, sample
                             count, the fingerprint of their model

A voice folder is written under a temporary name and renamed, so a crash never leaves half a voice.
The tokens are only valid for the model that made them: each carries the model's fingerprint, and a voice
made by another model is encoded again from its recording on first use.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from maskgct.constants import FRAME_RATE, SEMANTIC_SAMPLE_RATE

VOICE_FILE, TOKENS_FILE, AUDIO_FILE = "voice.json", "tokens.safetensors", "prompt.wav"
# A name chosen by the client becomes a folder name: keep it to a safe alphabet.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class VoiceError(ValueError):
    """A voice that cannot be registered or is not known."""


class UnknownVoice(VoiceError):
    pass


def model_fingerprint(tts) -> str:
    """A hash of every network's weight names and shapes and a sample of its values: two models that
    would give different prompt tokens get different fingerprints."""
    digest = hashlib.sha256()
    for net in (tts.tokenizer, tts.codec):
        for name, tensor in sorted(net.state_dict().items()):
            flat = tensor.detach().reshape(-1)[:16].float().cpu().numpy()
            digest.update(f"{name}{tuple(tensor.shape)}".encode() + flat.tobytes())
    return digest.hexdigest()[:16]


def read_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """Audio file bytes (wav, flac, ogg: what libsndfile reads) → float32 (L,) or (L, C), sample rate."""
    import soundfile as sf

    try:
        audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    except Exception as err:  # libsndfile's errors are plain RuntimeErrors with a message
        raise VoiceError(f"the prompt is not a readable audio file ({err})") from None
    return audio, rate


class VoiceStore:
    """Voices in ``folder``, encoded with ``tts``. Not thread-safe for encoding: call ``register`` and
    ``prompt`` from the model's worker thread; ``list`` may be called from any thread."""

    def __init__(self, folder: str | Path, tts):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.tts = tts
        self.fingerprint = model_fingerprint(tts)
        self.cache: dict[str, object] = {}
        self.lock = threading.Lock()

    def register(self, data: bytes, transcript: str | None, name: str | None = None) -> dict:
        """Encode a prompt recording and store it; returns its description (``id``, ``transcript``, ...).
        Without ``name`` the id hashes the recording and transcript: registering twice gives one voice."""
        if name is not None and not NAME_PATTERN.fullmatch(name):
            raise VoiceError(f"voice name {name!r}: use 1-64 letters, digits, '_', '.' or '-'")
        transcript = transcript.strip() if transcript else None
        audio, rate = read_wav_bytes(data)
        voice_id = name or "v" + hashlib.sha256(data + (transcript or "").encode()).hexdigest()[:15]
        known = self.folder / voice_id / VOICE_FILE
        if name is None and known.is_file():  # the same recording again: it is encoded already
            meta = json.loads(known.read_text())
            if meta.get("model") == self.fingerprint:
                return describe(meta)
        # Without a transcript whisper makes one; a recording too long to keep whole is trimmed.
        prompt = self.tts.encode_prompt(audio, transcript, sample_rate=rate)
        kept = round(prompt.num_samples * rate / SEMANTIC_SAMPLE_RATE)
        if kept < len(audio) - rate // FRAME_RATE:  # trimmed: keep what was encoded, as its transcript says
            audio = audio[:kept]
        meta = {
            "id": voice_id,
            "transcript": prompt.transcript,
            "notes": prompt.notes,
            "created": int(time.time()),
        }
        self._write(voice_id, audio, rate, prompt, meta)
        with self.lock:
            self.cache[voice_id] = prompt
        return describe(meta, prompt)

    def prompt(self, voice_id: str):
        """The encoded ``Prompt`` of a voice (from memory, disk, or encoded again for another model)."""
        with self.lock:
            if voice_id in self.cache:
                return self.cache[voice_id]
        folder = self._folder(voice_id)
        meta = json.loads((folder / VOICE_FILE).read_text())
        if meta.get("model") == self.fingerprint:
            from safetensors.torch import load_file

            from maskgct.api import Prompt

            tokens = load_file(folder / TOKENS_FILE, device=str(self.tts.device))
            prompt = Prompt(tokens["semantic"], tokens["acoustic"], meta["phone_ids"], meta["num_samples"])
        else:
            audio, rate = read_wav_bytes((folder / AUDIO_FILE).read_bytes())
            prompt = self.tts.encode_prompt(audio, meta["transcript"], sample_rate=rate)
            self._write(voice_id, audio, rate, prompt, meta)
        with self.lock:
            self.cache[voice_id] = prompt
        return prompt

    def recording(self, voice_id: str) -> tuple[np.ndarray, int]:
        """The stored recording of a voice: float32 audio and its sample rate."""
        return read_wav_bytes((self._folder(voice_id) / AUDIO_FILE).read_bytes())

    def list(self) -> list[dict]:
        voices = []
        for path in sorted(self.folder.glob(f"*/{VOICE_FILE}")):
            try:
                voices.append(describe(json.loads(path.read_text())))
            except (OSError, ValueError):  # a voice being replaced right now
                continue
        return voices

    def _folder(self, voice_id: str) -> Path:
        folder = self.folder / voice_id
        if not NAME_PATTERN.fullmatch(voice_id) or not (folder / VOICE_FILE).is_file():
            raise UnknownVoice(f"unknown voice {voice_id!r}: register it with POST /v1/voices first")
        return folder

    def _write(self, voice_id: str, audio: np.ndarray, rate: int, prompt, meta: dict) -> None:
        import soundfile as sf
        from safetensors.torch import save_file

        meta = {
            **meta,
            "model": self.fingerprint,
            "phone_ids": list(prompt.phone_ids),
            "num_samples": prompt.num_samples,
            "seconds": round(prompt.seconds, 3),
        }
        partial = self.folder / f".{voice_id}.{uuid.uuid4().hex}.partial"
        partial.mkdir()
        try:
            sf.write(partial / AUDIO_FILE, audio, rate, subtype="PCM_16")
            tokens = {
                "semantic": prompt.semantic.cpu().contiguous(),
                "acoustic": prompt.acoustic.cpu().contiguous(),
            }
            save_file(tokens, partial / TOKENS_FILE)
            (partial / VOICE_FILE).write_text(json.dumps(meta, indent=2) + "\n")
            target = self.folder / voice_id
            old = self.folder / f".{voice_id}.{uuid.uuid4().hex}.old"
            if target.exists():  # replaced by a voice of the same name: swap, then drop the old one
                os.replace(target, old)
            os.replace(partial, target)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(partial, ignore_errors=True)


def describe(meta: dict, prompt=None) -> dict:
    """What the API tells about a voice."""
    seconds = round(prompt.seconds, 3) if prompt is not None else meta.get("seconds")
    return {"id": meta["id"], "object": "voice", "transcript": meta.get("transcript"), "seconds": seconds,
            "notes": meta.get("notes", []), "created": meta.get("created")}  # fmt: skip
