"""Starting a fresh training run from trained weights: ``init_from=<path>`` (``conf/train.yaml``).

``<path>`` is any of:

* a checkpoint folder (``python -m maskgct.convert`` or ``MaskGCT.save_pretrained``) or an exported
  ``<exp_dir>/model`` folder: the network(s) of the task are picked by name (``TASK_NETWORKS``);
* ``DIR/NAME``: the network ``NAME`` of folder ``DIR`` (``DIR/NAME.json`` + ``.safetensors``);
* a lightning checkpoint of ours (``<exp_dir>/checkpoints/*.ckpt``, read with ``weights_only=True``): the
  task's trainable modules, the GAN codec's discriminators included (the release ships none, so from a
  folder they start fresh).

Loading is strict: every tensor of the source is used and every tensor of the network is loaded; a
missing, unexpected or mis-shaped one is a ``CheckpointError`` naming it. The exceptions are parts that
the source never had, and the loader says so: a checkpoint folder keeps the semantic codec without its
decoder (tokenising needs no decoder), so that decoder starts fresh; a codes-only mel codec gives a
semantic-conditioned one everything but its semantic embedding.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import torch
from torch import nn

from maskgct.checkpoint import CheckpointError, check_state_dict, load_strict, read_safetensors
from maskgct.codecs.acoustic_codec import DECODER_NAME, ENCODER_NAME, AcousticCodec
from maskgct.codecs.mel_codec import NAME as MEL_CODEC_NAME
from maskgct.codecs.mel_codec import MelCodec
from maskgct.codecs.modules import apply_weight_norm
from maskgct.codecs.semantic_codec import CODEC_NAME as SEMANTIC_CODEC_NAME
from maskgct.codecs.semantic_codec import SemanticCodec

# A lightning checkpoint's modules that a fine-tune takes over: the networks, not the step counters or
# code ages (a fine-tune starts its own schedule).
CKPT_MODULES = ("net", "discriminator")


def task_networks(module: nn.Module) -> tuple[str, ...]:
    """The names under which a checkpoint folder keeps the network(s) of ``module``'s task."""
    from maskgct.train.acoustic_codec import AcousticCodecTask
    from maskgct.train.duration import DurationTask
    from maskgct.train.mel_codec import MelCodecTask
    from maskgct.train.s2a import S2ATask
    from maskgct.train.semantic_codec import SemanticCodecTask
    from maskgct.train.t2s import T2STask

    if isinstance(module, S2ATask):
        # The 1-layer model predicts acoustic layer 0 alone; the full one layers 1..N-1.
        return ("s2a_1layer",) if module.net.config.num_quantizer == 1 else ("s2a_full",)
    names = {
        T2STask: ("t2s",),
        DurationTask: ("duration",),
        SemanticCodecTask: (SEMANTIC_CODEC_NAME,),
        AcousticCodecTask: (ENCODER_NAME, DECODER_NAME),
        MelCodecTask: (MEL_CODEC_NAME,),
    }
    for task, found in names.items():
        if isinstance(module, task):
            return found
    raise CheckpointError(f"init_from: no checkpoint networks are known for the task {type(module).__name__}")


def read_network(directory: Path, name: str, expected: nn.Module) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(config dict, tensors)`` of ``directory/name``, refused unless it is a network of ``expected``'s
    class: a T2S file is never read into a duration model just because a name was mistyped."""
    meta_path = directory / f"{name}.json"
    if not meta_path.is_file():
        raise CheckpointError(f"init_from: {meta_path} not found")
    try:
        meta = json.loads(meta_path.read_text())
        cls = meta["class"].rpartition(".")[2]
        config = dict(meta["config"])
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(f"init_from: {meta_path}: not a network description ({err})") from None
    if cls != type(expected).__name__:
        raise CheckpointError(
            f"init_from: {meta_path} holds a {cls}, the task trains a {type(expected).__name__}"
        )
    return config, read_safetensors(directory / f"{name}.safetensors")


def load_semantic_codec(net: nn.Module, directory: Path, name: str, source: str) -> None:
    """The semantic codec; one saved without its decoder loads its encoder and quantizer strictly."""
    config, state = read_network(directory, name, net)
    if config.get("with_decoder", False):
        load_strict(net, state, source)
        return
    without_decoder = type(net)(dataclasses.replace(net.config, with_decoder=False))
    load_strict(without_decoder, state, source)
    net.load_state_dict(without_decoder.state_dict(), strict=False)
    print(f"{source}: the semantic codec has no decoder (checkpoint folders keep none): it starts fresh",
          file=sys.stderr)  # fmt: skip


def load_mel_codec(net: nn.Module, directory: Path, name: str, source: str) -> None:
    """The mel codec; a codes-only one loads strictly into one that also reads semantic tokens, whose
    semantic embedding then starts fresh (the step from a trained codec to semantic-conditioned decoding)."""
    config, state = read_network(directory, name, net)
    if config.get("semantic_codebook_size", 0) or not net.reads_semantic:
        try:
            load_strict(net, state, source)
        except CheckpointError as err:
            raise CheckpointError(f"{err}{config_hint(net, config)}") from None
        return
    codes_only = type(net)(dataclasses.replace(net.config, semantic_codebook_size=0))
    load_strict(codes_only, state, source)
    net.load_state_dict(codes_only.state_dict(), strict=False)
    print(f"{source}: a codes-only mel codec: the semantic embedding of its decoder starts fresh",
          file=sys.stderr)  # fmt: skip


def load_acoustic_codec(net: nn.Module, directory: Path, source: str) -> None:
    """The GAN codec: its encoder and decoder files load into a plain codec, which is then weight-normalised
    like the task's (g = ‖v‖, so the function is unchanged) and copied in."""
    plain = AcousticCodec(net.config)
    for part, name in (("encoder", ENCODER_NAME), ("decoder", DECODER_NAME)):
        _, state = read_network(directory, name, getattr(plain, part))
        load_strict(getattr(plain, part), state, f"{source} ({name})")
    load_strict(net, apply_weight_norm(plain).state_dict(), source)


def load_from_folder(module: nn.Module, directory: Path, names: tuple[str, ...], source: str) -> None:
    """The task's network from ``names`` in ``directory`` (the GAN codec's two, or one)."""
    net = module.net
    if isinstance(net, AcousticCodec):
        load_acoustic_codec(net, directory, source)
    elif isinstance(net, SemanticCodec):
        load_semantic_codec(net, directory, names[0], source)
    elif isinstance(net, MelCodec):
        load_mel_codec(net, directory, names[0], source)
    else:
        config, state = read_network(directory, names[0], net)
        try:
            load_strict(net, state, source)
        except CheckpointError as err:
            raise CheckpointError(f"{err}{config_hint(net, config)}") from None


def config_hint(net: nn.Module, saved: dict) -> str:
    """What a mismatch most often means: the model config is not the checkpoint's size."""
    ours = dataclasses.asdict(net.config)
    differ = [
        f"{k}={v!r} (model config: {ours[k]!r})" for k, v in saved.items() if k in ours and ours[k] != v
    ]
    if not differ:
        return ""
    return f"; the checkpoint has {', '.join(differ)}: choose the model config of its size"


def load_lightning_checkpoint(module: nn.Module, path: Path, source: str) -> None:
    """The task's ``CKPT_MODULES`` from one of our training checkpoints."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    except Exception as err:  # torch raises several error types for damaged or foreign files
        raise CheckpointError(
            f"{source}: not a readable training checkpoint ({type(err).__name__})"
        ) from None
    for part in CKPT_MODULES:
        if getattr(module, part, None) is not None:
            prefix = f"{part}."
            # The parts' own keys; keys of other parts and of counters are ignored (not network weights).
            sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            check_state_dict(getattr(module, part), sub, f"{source} ({part})")
            getattr(module, part).load_state_dict(sub, strict=True)


def init_weights(module: nn.Module, init_from: str) -> None:
    """Load the weights named by ``init_from`` (see the module docstring) into ``module`` strictly."""
    path = Path(init_from).expanduser()
    source = f"init_from={init_from}"
    if getattr(module, "net", None) is None:
        raise CheckpointError(f"init_from: the task {type(module).__name__} has no network to initialise")
    if path.is_file() and path.suffix == ".ckpt":
        load_lightning_checkpoint(module, path, source)
        return
    names = task_networks(module)
    if path.is_dir() and all((path / f"{name}.json").is_file() for name in names):
        load_from_folder(module, path, names, source)
    elif path.is_dir():
        raise CheckpointError(
            f"init_from: {path} holds no {' + '.join(f'{n}.json' for n in names)} "
            f"(the {type(module).__name__}'s network); name one with DIR/NAME"
        )
    elif (path.parent / f"{path.name}.json").is_file() and len(names) == 1:
        load_from_folder(module, path.parent, (path.name,), source)
    else:
        raise CheckpointError(f"init_from: {path} is neither a checkpoint folder, DIR/NAME nor a .ckpt file")
