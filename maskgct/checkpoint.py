"""Checkpoint files: one network, a safetensors file, and the checkpoint folder ``MaskGCT`` loads.

One network is ``<name>.json`` (class + dataclass config) and ``<name>.safetensors``. A network class takes
its dataclass config as the only constructor argument and names that class in ``config_class``. Loading is
strict: a missing, unexpected or mis-shaped tensor is a ``CheckpointError`` naming it. Only classes inside
the ``maskgct`` package are ever built from a JSON file.

The checkpoint folder (``MaskGCT.save_pretrained`` / ``from_pretrained``; ``python -m maskgct.convert``
writes one from the official release): ``config.json`` (format, version, rates, the Amphion-schema
hyper-parameters it came from), the networks ``t2s``, ``s2a_1layer``, ``s2a_full``, the acoustic codec's
(``acoustic_encoder`` + ``acoustic_decoder``, or ``mel_codec``), ``semantic_codec`` and optionally
``duration``, the semantic tokenizer's statistics and ``semantic_tokenizer.json`` (the w2v-BERT folder,
relative or absolute, or a hub id, and its layer) and optionally the w2v-BERT folder itself.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil
import typing
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from maskgct.constants import FRAME_RATE, SAMPLE_RATE, SEMANTIC_SAMPLE_RATE
from maskgct.value_types import describe_type, fits_type

CONFIG_FILE = "config.json"
CHECKPOINT_FORMAT = "maskgct"
FORMAT_VERSION = 1
T2S_NAME, S2A_1LAYER_NAME, S2A_FULL_NAME = "t2s", "s2a_1layer", "s2a_full"
DURATION_NAME = "duration"  # optional network of a checkpoint folder
DEFAULT_CHECKPOINT_ENV = "MASKGCT_DEFAULT_CHECKPOINT"
# The in-repo default model (written by the recipe), used when no checkpoint is named.
DEFAULT_CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints" / "default"
# What a checkpoint keeps of a w2v-BERT folder when it copies one in, and the copy's name.
W2V_BERT_FILES = ("config.json", "preprocessor_config.json", "*.safetensors", "model.safetensors.index.json")
W2V_BERT_COPY_NAME = "w2v_bert"


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


def load_network(
    directory: str | Path,
    name: str,
    device: str | torch.device = "cpu",
    expected: type | None = None,
    linear_dtype: torch.dtype | None = None,
) -> nn.Module:
    """Build the network described by ``directory/name.json`` and load its weights strictly; with
    ``expected``, a network of another class is a ``CheckpointError``; with ``linear_dtype``, the
    ``nn.Linear`` weights are stored in that dtype (``maskgct.precision``).

    The network is built on the meta device and takes the file's tensors as its own, each converted to
    its parameter's dtype as it is read: one copy of the weights in memory, never two, and no random
    initialisation to throw away (an official-size T2S is 3 GB in float32)."""
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
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        raise CheckpointError(f"{meta_path}: no network class {meta['class']!r} in maskgct") from None
    if not isinstance(cls, type) or not hasattr(cls, "config_class"):
        raise CheckpointError(f"{meta_path}: {meta['class']!r} is not a maskgct network")
    if expected is not None and not issubclass(cls, expected):
        raise CheckpointError(f"{meta_path}: expected a {expected.__name__} network")
    config = network_config(cls.config_class, meta.get("config"), str(meta_path))
    try:
        with torch.device("meta"):
            net = cls(config)
    except (TypeError, ValueError, RuntimeError) as err:  # values of the right type a network refuses
        raise CheckpointError(f"{meta_path}: cannot build {class_name} from its config ({err})") from None
    dtypes = {key: value.dtype for key, value in net.state_dict().items()}
    if linear_dtype is not None:
        for prefix, sub in net.named_modules():
            if isinstance(sub, nn.Linear):
                dtypes.update({f"{prefix}.{key}": linear_dtype for key, _ in sub.named_parameters()})
    state = read_safetensors(weights_path, dtypes=dtypes)
    check_state_dict(net, state, str(weights_path))
    net.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in net.buffers()):  # a buffer computed in __init__ and not saved: build for real
        net = load_strict(cls(config), state, str(weights_path))
    return net.to(device).eval()


def network_config(config_class: type, values, source: str):
    """``config_class(**values)`` once every key is one of its fields and every value has the field's type
    (``maskgct.value_types``); else a ``CheckpointError`` naming the field."""
    if not isinstance(values, dict):
        raise CheckpointError(f"{source}: 'config' must be an object of {config_class.__name__} fields")
    hints = typing.get_type_hints(config_class)
    fields = {field.name for field in dataclasses.fields(config_class)}
    for key, value in values.items():
        if key not in fields:
            raise CheckpointError(f"{source}: unknown {config_class.__name__} field {key!r}")
        if not fits_type(value, hints[key]):
            expected = describe_type(hints[key])
            raise CheckpointError(f"{source}: {config_class.__name__}.{key} = {value!r} is not {expected}")
    return config_class(**values)


# The safetensors element types a checkpoint may hold, by their name in the file's header.
SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}  # fmt: skip


def read_safetensors(
    path: str | Path,
    keep: Callable[[str], bool] | None = None,
    dtypes: dict[str, torch.dtype] | None = None,
) -> dict[str, torch.Tensor]:
    """The tensors of ``path`` (those whose names pass ``keep``, if given), each converted to
    ``dtypes[name]`` as it is read when named there; ``CheckpointError`` when the file is missing or
    unreadable. Tensors not asked for are never read, so a truncated model needs only its own share of
    memory.

    The file (an 8-byte header length, a JSON header of dtype, shape and byte offsets, then the data) is
    read tensor by tensor into process memory, not memory-mapped: a mapped file's touched pages count in
    the process's resident memory for as long as any tensor still views it, so converting float32 weights
    to bfloat16 from a mapping left both copies resident (measured: 10.8 GB for an official-size model
    that needs 5.5)."""
    dtypes = dtypes or {}
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found")
    try:
        with open(path, "rb") as file:
            size = int.from_bytes(file.read(8), "little")
            if size > path.stat().st_size - 8:
                raise ValueError("the header is longer than the file")
            header = json.loads(file.read(size))
            start = 8 + size
            tensors = {}
            for name, entry in header.items():
                if name == "__metadata__" or (keep is not None and not keep(name)):
                    continue
                begin, end = entry["data_offsets"]
                file.seek(start + begin)
                data = bytearray(end - begin)
                if file.readinto(data) != len(data):
                    raise ValueError(f"tensor {name!r} is cut short")
                dtype = SAFETENSORS_DTYPES[entry["dtype"]]
                tensor = torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)
                tensors[name] = tensor.reshape(entry["shape"]).to(dtypes.get(name, dtype))
            return tensors
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{path}: unreadable safetensors file ({err})") from None


def resolve_hub(name: str | Path, what: str, allow_patterns: list[str] | None = None) -> Path:
    """A local folder, or a Hugging Face hub id (``owner/name``) fetched with ``snapshot_download``."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    name = str(name)
    if path.is_absolute() or name.startswith(".") or name.count("/") != 1:
        raise CheckpointError(f"{what} folder not found: {name}")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, allow_patterns=allow_patterns))
    except Exception as err:  # offline, unknown repo, network errors
        raise CheckpointError(
            f"{what} {name!r} is not a local folder and could not be downloaded from the Hugging Face hub "
            f"({type(err).__name__}; offline?)"
        ) from None


def copy_w2v_bert(folder: str | Path, out_dir: str | Path) -> str:
    """Copy a w2v-BERT folder's model files into ``out_dir``; returns the pointer a tokenizer stores."""
    target = Path(out_dir) / W2V_BERT_COPY_NAME
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for pattern in W2V_BERT_FILES:
        for file in Path(folder).glob(pattern):
            shutil.copyfile(file, target / file.name)
    return W2V_BERT_COPY_NAME


# ------------------------------------------------------------------------------------- checkpoint folder
def resolve_checkpoint(path_or_hub_id: str | Path) -> Path:
    """A local checkpoint folder, or a Hugging Face hub id fetched with ``snapshot_download``."""
    return resolve_hub(path_or_hub_id, "checkpoint")


def default_checkpoint() -> Path:
    """The default model: ``$MASKGCT_DEFAULT_CHECKPOINT``, else ``checkpoints/default`` in the repository."""
    env = os.environ.get(DEFAULT_CHECKPOINT_ENV)
    path = Path(env).expanduser() if env else DEFAULT_CHECKPOINT_DIR
    if not (path / CONFIG_FILE).is_file():
        raise CheckpointError(
            f"no checkpoint given and no default model at {path}: pass --checkpoint DIR "
            f"(e.g. one made by `python -m maskgct.convert`) or set {DEFAULT_CHECKPOINT_ENV}"
        )
    return path


def read_config(folder: Path) -> dict:
    """Read and check ``config.json`` of a checkpoint folder."""
    path = folder / CONFIG_FILE
    if (folder / "t2s_model").is_dir() and (folder / "s2a_model").is_dir():
        raise CheckpointError(
            f"{folder} is an official Amphion snapshot: convert it first with "
            "`python -m maskgct.convert amphion SRC OUT --w2v-bert DIR --w2v-stats FILE`"
        )
    if not path.is_file():
        raise CheckpointError(f"{folder}: not a maskgct checkpoint folder (no {CONFIG_FILE})")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: invalid JSON ({err})") from None
    if not isinstance(config, dict) or config.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a maskgct checkpoint (format is not {CHECKPOINT_FORMAT!r})")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is newer than this maskgct supports "
            f"({FORMAT_VERSION}); upgrade maskgct"
        )
    return config


def write_config(
    folder: str | Path, codec_names: tuple[str, ...], amphion_config: dict | None, source: str
) -> None:
    """Write ``config.json``; ``codec_names``: the acoustic codec's networks in the folder."""
    config = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "source": source,
        "sample_rate": SAMPLE_RATE,
        "semantic_sample_rate": SEMANTIC_SAMPLE_RATE,
        "frame_rate": FRAME_RATE,
        "networks": [T2S_NAME, S2A_1LAYER_NAME, S2A_FULL_NAME, *codec_names, "semantic_codec"],
    }
    if amphion_config is not None:
        config["amphion_config"] = amphion_config
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
