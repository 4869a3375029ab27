"""Shared by the pipeline, converter and CLI tests: the official snapshot layout built from the fixtures,
and test prompts."""

import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from maskgct.convert import AMPHION_FILES, convert_amphion

# Fixture file of each network in the official layout.
FIXTURE_FILES = {
    "semantic_codec": "semantic_codec.safetensors",
    "acoustic_encoder": "acoustic_encoder.safetensors",
    "acoustic_decoder": "acoustic_decoder.safetensors",
    "t2s": "t2s.safetensors",
    "s2a_1layer": "s2a_1layer.safetensors",
    "s2a_full": "s2a_full.safetensors",
}
PROMPT_TEXT = "The birch canoe slid on the smooth planks."
TARGET_TEXT = "Rice is often served in round bowls."


def build_snapshot(fixtures: Path, src: Path) -> Path:
    """Lay the tiny fixture weights out as the official Hugging Face snapshot."""
    for name, relative in AMPHION_FILES.items():
        (src / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fixtures / FIXTURE_FILES[name], src / relative)
    return src


def convert_tiny(fixtures: Path, root: Path) -> Path:
    """The tiny snapshot converted with its config, the tiny w2v-BERT (layer 3) and its statistics."""
    src = build_snapshot(fixtures, root / "snapshot")
    return convert_amphion(
        src,
        root / "checkpoint",
        str(fixtures / "w2v_bert_tiny"),
        fixtures / "w2v_stats_tiny.safetensors",
        fixtures / "tiny_config.json",
        semantic_layer=3,
        log=lambda message: None,
    )


def write_tone(path: Path, seconds: float, amplitude: float = 0.1, rate: int = 16000) -> Path:
    """Write a 220 Hz tone of ``seconds`` (amplitude 0: silence) to ``path``: a prompt of a chosen length."""
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    return path
