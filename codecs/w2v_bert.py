"""w2v-BERT 2.0 features: 16 kHz audio → the output of one conformer layer, normalised, at 50 Hz.

The official front end, step for step (MASKGCT_FACTS §3 "Semantic tokens"):

1. 16 kHz mono audio → ``SeamlessM4TFeatureExtractor`` (Kaldi fbank 80 bins, per-utterance normalisation,
   two frames stacked → ``(B, T, 160)`` at 50 Hz, plus an attention mask).
2. ``Wav2Vec2BertModel`` built with only ``output_layer`` conformer layers (17 of 24): its last hidden state
   *is* ``hidden_states[output_layer]`` of the full model (there is no final norm), with 30 % less work.
3. ``(feat - mean) / sqrt(var)`` with the statistics file (``mean``, ``var``: ``(C,)``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from maskgct.audio import AudioError
from maskgct.checkpoint import CheckpointError, read_safetensors, resolve_hub
from maskgct.codecs.feature_stats import load_stats
from maskgct.constants import SEMANTIC_SAMPLE_RATE

if TYPE_CHECKING:  # transformers takes seconds to import: only the w2v-BERT front end needs it
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertModel

# The feature extractor normalises each mel bin with an unbiased variance, which needs two fbank frames
# (25 ms window, 10 ms hop): 400 + 160 samples. Two frames are also exactly one (stacked) token.
MIN_SAMPLES = 400 + 160
W2V_BERT_LAYER = 17  # the official semantic layer: hidden_states[17] of w2v-bert-2.0's 24
# w2v-bert-2.0's preprocessor_config.json, used when a w2v-BERT folder does not ship one.
W2V_BERT_PREPROCESSOR = dict(
    feature_size=80, num_mel_bins=80, sampling_rate=SEMANTIC_SAMPLE_RATE, padding_value=1.0, stride=2,
    padding_side="right", return_attention_mask=True,
)  # fmt: skip


def num_tokens(num_samples: int) -> int:
    """Tokens for ``num_samples`` of 16 kHz audio: ``ceil(N / 2)``, ``N = 1 + (L - 400) // 160`` frames."""
    return math.ceil((1 + (num_samples - 400) // 160) / 2) if num_samples >= 400 else 0


def resolve_w2v_bert(name: str | Path) -> Path:
    """A local w2v-BERT folder, or a hub id (e.g. ``facebook/w2v-bert-2.0``) downloaded when online."""
    patterns = ["config.json", "preprocessor_config.json", "*.safetensors", "*.safetensors.index.json"]
    return resolve_hub(name, "w2v-BERT", patterns)


class W2vBertFeatures(nn.Module):
    """Audio → normalised w2v-BERT features of one layer, running only the layers up to it.

    ``forward(wavs: list of (L_i,) float arrays at 16 kHz)`` → ``(features (B, T, C), mask (B, T) bool)``;
    ``mask`` marks the ``num_tokens(L_i)`` frames of each utterance (including an odd last frame, which
    the official pipeline also quantises). Without statistics the features are returned unnormalised.
    """

    frontend = "w2v-bert"
    max_samples = None  # no length limit beyond memory

    def __init__(
        self,
        model: Wav2Vec2BertModel,
        extractor: SeamlessM4TFeatureExtractor,
        num_layers_total: int,
        mean: torch.Tensor | None = None,
        var: torch.Tensor | None = None,
    ):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.extractor = extractor
        self.num_layers_total = num_layers_total
        self.output_layer = model.config.num_hidden_layers
        self.hidden_size = model.config.hidden_size
        self.register_buffer("mean", mean, persistent=False)
        # The official code takes sqrt(var) first and then divides; keep that order for bit parity.
        self.register_buffer("std", None if var is None else torch.sqrt(var), persistent=False)
        if mean is not None and mean.shape != (self.hidden_size,):
            raise CheckpointError(
                f"statistics have {mean.shape[0]} channels, w2v-BERT has {self.hidden_size}"
            )

    @classmethod
    def from_folder(
        cls, w2v_bert: str | Path, output_layer: int, stats_file: str | Path | None = None
    ) -> W2vBertFeatures:
        """Build from a HF-format folder (``config.json``, ``model.safetensors``) or hub id.

        Only layers ``1..output_layer`` are built, and only their tensors are read from disk.
        """
        from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

        folder = resolve_w2v_bert(w2v_bert)
        try:
            config = Wav2Vec2BertConfig.from_pretrained(folder)
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{folder}: not a w2v-BERT folder ({err})") from None
        total = config.num_hidden_layers
        if not 1 <= output_layer <= total:
            raise CheckpointError(f"output layer {output_layer} outside 1..{total} of {folder}")
        config.num_hidden_layers = output_layer
        # hidden_states[k] is the raw output of conformer layer k: no adapter or extra FFN after it.
        config.add_adapter = False
        config.use_intermediate_ffn_before_adapter = False
        # Eager attention reproduces the reference bit for bit; SDPA differs by ~4e-6 and can flip codes.
        config._attn_implementation = "eager"
        with torch.device("meta"):
            model = Wav2Vec2BertModel(config)
        wanted = set(model.state_dict())
        state = {}
        for file in _weight_files(folder):
            state.update(read_safetensors(file, keep=lambda k: _strip_prefix(k) in wanted))
        state = {_strip_prefix(k): v for k, v in state.items()}
        missing = sorted(wanted - set(state))
        if missing:
            raise CheckpointError(f"{folder}: missing tensor {missing[0]!r} ({len(missing)} missing in all)")
        model.load_state_dict(state, strict=True, assign=True)
        if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
            raise CheckpointError(f"{folder}: unsupported w2v-BERT configuration (tensors left unloaded)")
        mean, var = load_stats(stats_file) if stats_file is not None else (None, None)
        return cls(model, feature_extractor(folder), total, mean, var)

    def input_features(self, wavs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Feature extractor: ``(input_features (B, T, 160), attention_mask (B, T) int32)``, right-padded."""
        for i, wav in enumerate(wavs):
            if len(wav) < MIN_SAMPLES:
                raise AudioError(
                    f"utterance {i}: audio too short ({len(wav)} samples at 16 kHz; "
                    f"at least {MIN_SAMPLES} = one token are needed)"
                )
        out = self.extractor(
            [np.asarray(w, dtype=np.float32) for w in wavs],
            sampling_rate=SEMANTIC_SAMPLE_RATE,
            padding=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        return out["input_features"], out["attention_mask"]

    @torch.no_grad()
    def hidden_states(self, input_features: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``(B, T, 160)`` → ``(B, T, C)``: the output of conformer layer ``output_layer``."""
        device = self.model.feature_projection.projection.weight.device
        out = self.model(input_features.to(device), attention_mask=attention_mask.to(device))
        return out.last_hidden_state

    def normalise(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            raise RuntimeError("no normalisation statistics loaded")
        return (hidden - self.mean) / self.std

    def forward(self, wavs: list[np.ndarray], normalise: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        input_features, attention_mask = self.input_features(wavs)
        hidden = self.hidden_states(input_features, attention_mask)
        lengths = torch.tensor([num_tokens(len(w)) for w in wavs], device=hidden.device)
        mask = torch.arange(hidden.shape[1], device=hidden.device)[None] < lengths[:, None]
        return (self.normalise(hidden) if normalise else hidden), mask


def feature_extractor(folder: Path) -> SeamlessM4TFeatureExtractor:
    """The w2v-BERT folder's log-mel front end (w2v-bert-2.0's settings when it has no preprocessor file)."""
    from transformers import SeamlessM4TFeatureExtractor

    if (folder / "preprocessor_config.json").is_file():
        return SeamlessM4TFeatureExtractor.from_pretrained(folder)
    return SeamlessM4TFeatureExtractor(**W2V_BERT_PREPROCESSOR)


def _weight_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return [folder / f for f in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
    if not (folder / "model.safetensors").is_file():
        raise CheckpointError(f"{folder}: no model.safetensors")
    return [folder / "model.safetensors"]


def _strip_prefix(key: str) -> str:
    # Checkpoints saved from a task model (e.g. Wav2Vec2BertForCTC) nest the encoder under this name.
    return key.removeprefix("wav2vec2_bert.")
