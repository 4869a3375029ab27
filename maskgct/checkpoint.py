"""Saving and loading one network: ``<name>.json`` (class + dataclass config) and ``<name>.safetensors``.

A network class takes its dataclass config as the only constructor argument and names that class in
``config_class``. Loading is strict: a missing, unexpected or mis-shaped tensor is a ``CheckpointError``
naming it. Only classes inside the ``maskgct`` package are ever built from a JSON file.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint does not fit the network it is loaded into."""


def check_state_dict(module: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Raise ``CheckpointError`` unless ``state_dict`` has exactly ``module``'s keys and shapes."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing:
        raise CheckpointError(f"{source}: missing tensor {missing[0]!r} ({len(missing)} missing in all)")
    if unexpected:
        raise CheckpointError(
            f"{source}: unexpected tensor {unexpected[0]!r} ({len(unexpected)} unexpected in all)"
        )
    for key, value in expected.items():
        if tuple(state_dict[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"{source}: tensor {key!r} has shape {tuple(state_dict[key].shape)}, "
                f"the model expects {tuple(value.shape)}"
            )


def load_strict(module: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Check, then load ``state_dict`` into ``module`` (copying, so views of shared storage are fine)."""
    check_state_dict(module, state_dict, source)
    module.load_state_dict(state_dict, strict=True)
    return module


def save_network(net: nn.Module, directory: str | Path, name: str) -> None:
    """Write ``net`` as ``directory/name.json`` + ``directory/name.safetensors``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "class": f"{type(net).__module__}.{type(net).__qualname__}",
        "config": dataclasses.asdict(net.config),
    }
    (directory / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    save_file(state, str(directory / f"{name}.safetensors"))


def load_network(directory: str | Path, name: str, device: str | torch.device = "cpu") -> nn.Module:
    """Build the network described by ``directory/name.json`` and load its weights strictly."""
    directory = Path(directory)
    meta_path, weights_path = directory / f"{name}.json", directory / f"{name}.safetensors"
    for path in (meta_path, weights_path):
        if not path.is_file():
            raise CheckpointError(f"{path} not found")
    try:
        meta = json.loads(meta_path.read_text())
        module_name, _, class_name = meta["class"].rpartition(".")
    except (json.JSONDecodeError, KeyError) as err:
        raise CheckpointError(f"{meta_path}: not a network description ({err})") from None
    if not module_name.startswith("maskgct."):
        raise CheckpointError(f"{meta_path}: refusing to build {meta['class']!r} from outside maskgct")
    cls = getattr(importlib.import_module(module_name), class_name)
    net = cls(cls.config_class(**meta["config"]))
    try:
        state = load_file(str(weights_path))
    except Exception as err:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{weights_path}: unreadable safetensors file ({err})") from None
    return load_strict(net, state, str(weights_path)).to(device).eval()
