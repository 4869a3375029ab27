"""The page's spectrogram: audio → a log-magnitude STFT picture as PNG bytes, drawn with numpy alone.

Drawn on the server so the page needs no plotting library and the picture is the same in every browser;
the PNG is written by hand (one IDAT chunk of zlib-compressed RGB rows) to keep matplotlib optional.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

N_FFT, HOP = 1024, 256
DYNAMIC_RANGE_DB = 80.0
# Colour stops (dark blue → purple → orange → pale yellow): loud is bright.
STOPS = np.array(
    [[0, 0, 4], [40, 11, 84], [120, 28, 109], [190, 55, 82], [238, 105, 37], [252, 255, 164]], float
)


def magnitudes_db(audio: np.ndarray) -> np.ndarray:
    """Float audio (L,) → dB (F, frames), 0 dB at the loudest bin, floored at ``-DYNAMIC_RANGE_DB``."""
    audio = np.pad(audio.astype(np.float32), (N_FFT // 2, N_FFT // 2))
    frames = max(1, (len(audio) - N_FFT) // HOP + 1)
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    spectrum = np.abs(np.fft.rfft(audio[index] * np.hanning(N_FFT), axis=1)).T
    db = 20 * np.log10(np.maximum(spectrum, 1e-10))
    return np.maximum(db - db.max(), -DYNAMIC_RANGE_DB)


def colour(db: np.ndarray) -> np.ndarray:
    """dB (H, W) in [-range, 0] → uint8 RGB (H, W, 3) along ``STOPS``."""
    position = (db / DYNAMIC_RANGE_DB + 1) * (len(STOPS) - 1)
    low = np.clip(np.floor(position).astype(int), 0, len(STOPS) - 2)
    frac = (position - low)[..., None]
    return np.round(STOPS[low] * (1 - frac) + STOPS[low + 1] * frac).astype(np.uint8)


def png(rgb: np.ndarray) -> bytes:
    """uint8 RGB (H, W, 3) → PNG file bytes."""
    height, width, _ = rgb.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), rgb.reshape(height, -1)], axis=1)  # filter 0

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes()))
        + chunk(b"IEND", b"")
    )


def spectrogram_png(audio: np.ndarray, height: int = 256) -> bytes:
    """Audio (L,) → PNG of ``height`` rows (low frequencies at the bottom), one column per STFT frame."""
    db = magnitudes_db(audio)[::-1]
    rows = np.linspace(0, len(db) - 1, height).round().astype(int)
    return png(colour(db[rows]))
