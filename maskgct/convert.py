"""Convert the official MaskGCT release into a maskgct checkpoint folder (see ``maskgct.checkpoint``).

    python -m maskgct.convert amphion SRC OUT --w2v-bert DIR --w2v-stats FILE \\
        [--config CONFIG.json] [--semantic-layer N] [--copy-w2v-bert | --no-copy-w2v-bert]

SRC is the Hugging Face snapshot of ``amphion/MaskGCT``::

    semantic_codec/model.safetensors            acoustic_codec/model.safetensors (encoder)
    acoustic_codec/model_1.safetensors (decoder) t2s_model/model.safetensors
    s2a_model/s2a_model_1layer/model.safetensors s2a_model/s2a_model_full/model.safetensors

``--config`` is a JSON file in the schema of Amphion's ``maskgct.json`` (a top-level ``model`` block); the
released hyper-parameters are the default. ``--w2v-stats`` is the feature statistics file, as safetensors
(``mean``, ``var``) or Amphion's ``wav2vec2bert_stats.pt`` (read with ``weights_only=True``).
``--semantic-layer`` is the w2v-BERT layer the semantic codec reads (17 in the release). The w2v-BERT folder
is copied into OUT when it is small (under 64 MiB) or with ``--copy-w2v-bert``, else referenced by path.

Loading is strict: a missing, unexpected or mis-shaped tensor is an error naming it. Weight-norm pairs are
folded (``torch._weight_norm``, bit-identical to the reference's run-time weights); the zero-size
``diff_estimator.embed_tokens.weight`` of the S2A files and the decoder's ISTFT window are checked, then
dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn

from maskgct.checkpoint import (
    S2A_1LAYER_NAME,
    S2A_FULL_NAME,
    T2S_NAME,
    CheckpointError,
    check_state_dict,
    copy_w2v_bert,
    load_strict,
    read_safetensors,
    save_network,
    write_config,
)
from maskgct.cli import report_error
from maskgct.codecs.acoustic_codec import AcousticCodec, codec_networks
from maskgct.codecs.acoustic_decoder import AcousticDecoder, AcousticDecoderConfig, amphion_state_dict
from maskgct.codecs.acoustic_encoder import AcousticEncoder, AcousticEncoderConfig
from maskgct.codecs.feature_stats import save_stats
from maskgct.codecs.modules import fold_weight_norm
from maskgct.codecs.semantic import STATS_FILE, SemanticTokenizer
from maskgct.codecs.semantic_codec import SemanticCodec, SemanticCodecConfig
from maskgct.codecs.w2v_bert import W2vBertFeatures
from maskgct.s2a import ONE_LAYER, S2A, S2AConfig
from maskgct.t2s import T2S, T2SConfig

# File of each network in the official snapshot.
AMPHION_FILES = {
    "semantic_codec": "semantic_codec/model.safetensors",
    "acoustic_encoder": "acoustic_codec/model.safetensors",
    "acoustic_decoder": "acoustic_codec/model_1.safetensors",
    "t2s": "t2s_model/model.safetensors",
    "s2a_1layer": "s2a_model/s2a_model_1layer/model.safetensors",
    "s2a_full": "s2a_model/s2a_model_full/model.safetensors",
}
DEFAULT_SEMANTIC_LAYER = 17
# w2v-BERT folders smaller than this are copied into the checkpoint by default.
COPY_W2V_BERT_BELOW = 64 * 2**20


# The released ``maskgct.json`` hyper-parameters (its ``model`` block) in Amphion's schema: the network
# configs' defaults, which are the release's (keys the networks ignore, such as ``cond_dim``, are left out).
OFFICIAL_CONFIG = {
    "t2s_model": asdict(T2SConfig()),
    "s2a_model": {"s2a_1layer": asdict(S2AConfig(**ONE_LAYER)), "s2a_full": asdict(S2AConfig())},
    "semantic_codec": asdict(SemanticCodecConfig()),
    "acoustic_codec": {
        "encoder": asdict(AcousticEncoderConfig()),
        "decoder": asdict(AcousticDecoderConfig()),
    },
}


def model_block(config: dict, name: str) -> dict:
    """The config block of one network of the official layout."""
    try:
        if name in ("s2a_1layer", "s2a_full"):
            return config["s2a_model"][name]
        if name in ("acoustic_encoder", "acoustic_decoder"):
            return config["acoustic_codec"][name.removeprefix("acoustic_")]
        return config[{"t2s": "t2s_model"}.get(name, name)]
    except (KeyError, TypeError):
        raise CheckpointError(f"config has no block for {name}") from None


def convert_network(name: str, block: dict, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Build network ``name`` (a key of ``AMPHION_FILES``) from its config block and load an official
    state dict into it strictly. Built on the device of the tensors, so meta tensors check a layout with
    no memory."""
    device = torch.device("meta") if any(v.is_meta for v in state.values()) else torch.device("cpu")
    try:
        if name == "semantic_codec":
            full = SemanticCodecConfig.from_amphion(block, with_decoder=True)
            folded = fold_weight_norm(state)
            # Check the whole file (decoder included), then keep only what tokenising needs.
            with torch.device("meta"):
                check_state_dict(SemanticCodec(full), folded, source)
            with torch.device(device):
                codec = SemanticCodec(replace(full, with_decoder=False))
            kept = {k: v for k, v in folded.items() if not k.startswith("decoder.")}
            return load_strict(codec, kept, source).eval()
        if name == "acoustic_encoder":
            folded = fold_weight_norm(state)
            with torch.device(device):
                encoder = AcousticEncoder(AcousticEncoderConfig.from_amphion(block))
            return load_strict(encoder, folded, source).eval()
        if name == "acoustic_decoder":
            config = AcousticDecoderConfig.from_amphion(block)
            folded = amphion_state_dict(state, config.n_fft, source)
            with torch.device(device):
                decoder = AcousticDecoder(config)
            return load_strict(decoder, folded, source).eval()
        with torch.device(device):
            if name == "t2s":
                return T2S.from_amphion(block, state, source)
            if name in ("s2a_1layer", "s2a_full"):
                return S2A.from_amphion(block, state, source)
    except KeyError as err:  # an unpaired weight-norm tensor
        raise CheckpointError(f"{source}: {err.args[0]}") from None
    except RuntimeError as err:  # mis-shaped weight-norm pair
        raise CheckpointError(f"{source}: {err}") from None
    raise ValueError(f"unknown network {name!r}")


def read_amphion_file(src: Path, name: str) -> dict[str, torch.Tensor]:
    path = src / AMPHION_FILES[name]
    if not path.is_file():
        raise CheckpointError(f"{src}: missing {AMPHION_FILES[name]} (expected the official snapshot layout)")
    return read_safetensors(path)


def read_stats(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean`` and ``var`` (C,) from a safetensors file or Amphion's ``.pt`` (a dict of two tensors)."""
    if not path.is_file():
        raise CheckpointError(f"statistics file not found: {path}")
    if path.suffix == ".safetensors":
        stats = read_safetensors(path)
    else:
        try:
            stats = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as err:
            raise CheckpointError(
                f"{path}: unreadable statistics file ({type(err).__name__}: {err})"
            ) from None
    if not isinstance(stats, dict) or not all(
        isinstance(stats.get(k), torch.Tensor) for k in ("mean", "var")
    ):
        raise CheckpointError(f"{path}: expected tensors 'mean' and 'var'")
    return stats["mean"].float(), stats["var"].float()


def read_amphion_config(path: Path | None) -> dict:
    if path is None:
        return OFFICIAL_CONFIG
    try:
        config = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"config file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: invalid JSON ({err})") from None
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise CheckpointError(f"{path}: expected Amphion's schema, a top-level 'model' block")
    return config["model"]


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def place_w2v_bert(w2v_bert: str, out: Path, copy: bool | None) -> str:
    """Copy the w2v-BERT folder into ``out`` or return the pointer to store (absolute path or hub id)."""
    folder = Path(w2v_bert).expanduser()
    if not folder.is_dir():
        if copy:
            raise CheckpointError(f"--copy-w2v-bert needs a local folder, not {w2v_bert!r}")
        return w2v_bert  # a hub id
    if copy is None:
        copy = folder_bytes(folder) < COPY_W2V_BERT_BELOW
    if not copy:
        return str(folder.resolve())
    return copy_w2v_bert(folder, out)


def convert_amphion(
    src: str | Path,
    out: str | Path,
    w2v_bert: str,
    w2v_stats: str | Path,
    config_file: str | Path | None = None,
    semantic_layer: int = DEFAULT_SEMANTIC_LAYER,
    copy_w2v_bert: bool | None = None,
    log=print,
) -> Path:
    """Convert the official snapshot ``src`` into the checkpoint folder ``out``; returns ``out``.

    Networks are converted and written one at a time, so memory holds one of them at most.
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise CheckpointError(f"source folder not found: {src}")
    config = read_amphion_config(Path(config_file) if config_file else None)
    missing = [f for f in AMPHION_FILES.values() if not (src / f).is_file()]
    if missing:
        raise CheckpointError(f"{src}: missing {missing[0]} (expected the official snapshot layout)")
    mean, var = read_stats(Path(w2v_stats))
    with staged(out) as stage:
        convert_into(stage, src, config, mean, var, w2v_bert, semantic_layer, copy_w2v_bert, log)
    log(f"wrote {out}")
    return out


def convert_into(out: Path, src: Path, config: dict, mean, var, w2v_bert, semantic_layer, copy_w2v_bert, log):
    """Write every converted network, the statistics and the tokenizer into ``out`` (a scratch folder)."""
    for name, save_name in (("t2s", T2S_NAME), ("s2a_1layer", S2A_1LAYER_NAME), ("s2a_full", S2A_FULL_NAME)):
        net = convert_network(
            name, model_block(config, name), read_amphion_file(src, name), str(src / AMPHION_FILES[name])
        )
        save_network(net, out, save_name)
        log(f"{AMPHION_FILES[name]} -> {save_name}.safetensors")
        del net
    encoder = convert_network(
        "acoustic_encoder", model_block(config, "acoustic_encoder"),
        read_amphion_file(src, "acoustic_encoder"), str(src / AMPHION_FILES["acoustic_encoder"]),
    )  # fmt: skip
    decoder = convert_network(
        "acoustic_decoder", model_block(config, "acoustic_decoder"),
        read_amphion_file(src, "acoustic_decoder"), str(src / AMPHION_FILES["acoustic_decoder"]),
    )  # fmt: skip
    AcousticCodec(encoder, decoder).save_pretrained(out)
    log("acoustic_codec/model.safetensors, model_1.safetensors -> acoustic_encoder/_decoder.safetensors")
    del encoder, decoder
    codec = convert_network(
        "semantic_codec", model_block(config, "semantic_codec"),
        read_amphion_file(src, "semantic_codec"), str(src / AMPHION_FILES["semantic_codec"]),
    )  # fmt: skip
    # Building the tokenizer checks the w2v-BERT folder, its layer count and width against the codec/stats.
    stats_file = out / STATS_FILE
    save_stats(stats_file, mean, var)
    pointer = place_w2v_bert(w2v_bert, out, copy_w2v_bert)
    features = W2vBertFeatures.from_folder(out / pointer if (out / pointer).is_dir() else pointer,
                                           semantic_layer, stats_file)  # fmt: skip
    SemanticTokenizer(features, codec, pointer).save_pretrained(out)
    # The tokenizer keeps sqrt(var) and writes its square back; keep the release's exact values instead.
    save_stats(stats_file, mean, var)
    log(f"semantic_codec/model.safetensors -> semantic_codec.safetensors (w2v-BERT layer {semantic_layer})")
    write_config(out, codec_networks(out), config, "amphion")


@contextlib.contextmanager
def staged(out: Path):
    """A scratch folder beside ``out`` to write into: its files become ``out``'s (replacing files of the
    same name) only when the block ends without an error, so a failed conversion leaves no half-written
    checkpoint, and a folder already there as it was."""
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield stage
        stage.chmod(0o755)  # mkdtemp's 0700 would make the checkpoint private to its writer
        if not out.exists():
            os.replace(stage, out)
            return
        for entry in stage.iterdir():
            target = out / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m maskgct.convert", description="Convert official checkpoints to a maskgct folder."
    )
    sub = parser.add_subparsers(dest="source", required=True)
    amphion = sub.add_parser("amphion", help="the amphion/MaskGCT Hugging Face snapshot")
    amphion.add_argument(
        "src", help="the snapshot folder (semantic_codec/, acoustic_codec/, t2s_model/, ...)"
    )
    amphion.add_argument("out", help="the checkpoint folder to write")
    amphion.add_argument("--w2v-bert", required=True, help="w2v-BERT 2.0 folder (or hub id)")
    amphion.add_argument("--w2v-stats", required=True, help="feature statistics (.safetensors or .pt)")
    amphion.add_argument(
        "--config", help="hyper-parameters in Amphion's maskgct.json schema (default: release)"
    )
    amphion.add_argument("--semantic-layer", type=int, default=DEFAULT_SEMANTIC_LAYER,
                         help="w2v-BERT layer read by the semantic codec (default 17)")  # fmt: skip
    amphion.add_argument("--copy-w2v-bert", action=argparse.BooleanOptionalAction, default=None,
                         help="copy the w2v-BERT folder into OUT (default: when under 64 MiB)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        convert_amphion(
            args.src, args.out, args.w2v_bert, args.w2v_stats, args.config, args.semantic_layer,
            args.copy_w2v_bert, log=lambda m: print(m, file=sys.stderr),
        )  # fmt: skip
    except (ValueError, OSError) as err:
        return report_error(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
