"""The shipped default model (``checkpoints/default``): small float16 files, the offline front ends, and a
clone of a voice it never trained on through the command line's default."""

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from maskgct.api import MaskGCT
from maskgct.checkpoint import DEFAULT_CHECKPOINT_DIR
from maskgct.codecs.mel_codec import MelCodec
from maskgct.codecs.whisper_features import WhisperFeatures
from maskgct.data.synth import ESPEAK_VOICES, EspeakSynth
from maskgct.infer import main as infer_main

PROMPT_TEXT = "It was a late day, and the sea was long."


@pytest.fixture(scope="module")
def prompt_wav(tmp_path_factory):
    """A voice held out of the default model's training (espeak's Caribbean English)."""
    voice = next(v for v in ESPEAK_VOICES if v.speaker == "espeak_carib_m6")
    wav, rate = EspeakSynth()(voice, PROMPT_TEXT)
    path = tmp_path_factory.mktemp("prompt") / "prompt.wav"
    sf.write(path, wav, rate)
    return path


def test_the_default_model_is_small_and_offline():
    folder = DEFAULT_CHECKPOINT_DIR
    size = sum(f.stat().st_size for f in folder.iterdir())
    assert size < 100e6, f"checkpoints/default is {size / 1e6:.0f} MB"
    for name in ("t2s", "s2a_1layer", "s2a_full", "mel_codec", "semantic_codec"):
        state = load_file(str(folder / f"{name}.safetensors"))
        assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}, name
    tts = MaskGCT.from_pretrained(folder)
    assert isinstance(tts.codec, MelCodec) and isinstance(tts.tokenizer.features, WhisperFeatures)
    assert tts.codec.reads_semantic  # its decoder takes the words from S2A's semantic condition


def test_infer_without_checkpoint_clones_with_the_default(prompt_wav, tmp_path, capsys, one_thread):
    out = tmp_path / "out.wav"
    args = ["--prompt", str(prompt_wav), "--prompt-text", PROMPT_TEXT, "--text", "The rain was early."]
    assert infer_main([*args, "--out", str(out), "--seed", "0", "--steps", "4", "--quiet"]) == 0
    audio, rate = sf.read(out)
    assert rate == 24000 and 0.5 < len(audio) / rate < 4 and np.isfinite(audio).all()
    assert np.abs(audio).max() > 0.01  # speech-like energy, not silence
