"""Speaker similarity: cosine of speaker embeddings of two recordings.

The default encoder is resemblyzer's GE2E model (its weights ship in the wheel, so SIM works offline). Papers
report SIM with WavLM-large + ECAPA-TDNN (seed-tts-eval's ``wavlm_large_finetune.pth``); its numbers are not
comparable with resemblyzer's (GE2E cosines of same-speaker pairs sit around 0.8-0.95, WavLM-ECAPA around
0.6-0.8). A user who has a WavLM-ECAPA verifier can pass it as a TorchScript file (see
:class:`TorchScriptSpeakerEncoder`) or as any :class:`SpeakerEncoder` object.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np

from maskgct.eval.audio import SAMPLE_RATE, load_speech

DEFAULT_SPEAKER_MODEL = "resemblyzer"


class SpeakerEncoder(Protocol):
    """Anything that maps 16 kHz speech Float(L,) to a speaker embedding Float(D,)."""

    name: str

    def embed(self, wav16k: np.ndarray) -> np.ndarray: ...


class ResemblyzerSpeakerEncoder:
    """resemblyzer's GE2E encoder (256-dim, unit norm), on speech trimmed of silences by its VAD."""

    name = "resemblyzer"

    def __init__(self, device: str = "cpu"):
        with warnings.catch_warnings():
            # webrtcvad (resemblyzer's VAD) imports the deprecated pkg_resources; the warning is noise here.
            warnings.simplefilter("ignore", UserWarning)
            from resemblyzer import VoiceEncoder

        self.encoder = VoiceEncoder(device, verbose=False)

    def embed(self, wav16k: np.ndarray) -> np.ndarray:
        import torch
        from resemblyzer import preprocess_wav

        trimmed = preprocess_wav(wav16k, source_sr=SAMPLE_RATE)
        # The VAD can reject all of a very short or odd clip; the untrimmed clip still has a voice in it.
        speech = trimmed if trimmed.size >= SAMPLE_RATE // 4 else wav16k
        # The 3-layer LSTM is too small to gain from threads, and on a busy CPU two spinning threads made it
        # 40x slower (8 s instead of 0.2 s a clip), so it runs on one.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self.encoder.embed_utterance(speech)
        finally:
            torch.set_num_threads(threads)


class TorchScriptSpeakerEncoder:
    """A TorchScript module mapping a 16 kHz waveform Float(1, L) to an embedding Float(1, D).

    This is how a WavLM-large + ECAPA-TDNN verifier plugs in: build seed-tts-eval's model with its checkpoint,
    ``torch.jit.trace(model.eval(), torch.randn(1, 48000)).save("wavlm_ecapa.pt")``, then evaluate with
    ``--sim-model wavlm_ecapa.pt``.
    """

    def __init__(self, path: str | Path, device: str = "cpu"):
        import torch

        self.name = Path(path).name
        self.device = device
        try:
            self.module = torch.jit.load(str(path), map_location=device).eval()
        except Exception as error:  # torch raises RuntimeError/ValueError variants for non-TorchScript files
            raise ValueError(f"cannot load TorchScript speaker encoder {path}: {error}") from error

    def embed(self, wav16k: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            embedding = self.module(torch.from_numpy(wav16k).to(self.device)[None])
        return embedding.float().cpu().numpy().reshape(-1)


@functools.lru_cache(maxsize=2)
def load_speaker_encoder(model: str = DEFAULT_SPEAKER_MODEL, device: str = "cpu") -> SpeakerEncoder:
    """``"resemblyzer"`` or the path of a TorchScript speaker encoder file (cached per process)."""
    if model == DEFAULT_SPEAKER_MODEL:
        return ResemblyzerSpeakerEncoder(device)
    if Path(model).is_file():
        return TorchScriptSpeakerEncoder(model, device)
    raise ValueError(
        f"speaker model must be 'resemblyzer' or a TorchScript file, got {model!r} (file not found)"
    )


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def speaker_similarity(
    wav_a: str | Path | np.ndarray, wav_b: str | Path | np.ndarray, encoder: SpeakerEncoder | None = None
) -> float:
    """Cosine similarity of the speaker embeddings of two recordings (paths, or Float(L,) audio at 16 kHz)."""
    encoder = encoder or load_speaker_encoder()
    return cosine(encoder.embed(load_speech(wav_a)), encoder.embed(load_speech(wav_b)))
