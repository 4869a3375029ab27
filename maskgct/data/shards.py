"""Token dumps: utterances' phone ids, semantic tokens and acoustic codes, packed in shards with an index.

A dump dir holds, per shard ``<name>``:

* ``<name>.safetensors``: one flat array per field, the utterances' arrays concatenated
  (``phone_ids`` int16 ``(N,)``, ``semantic`` int16 ``(N,)``, ``acoustic`` int16 ``(N, 12)``, and when
  extracted, ``semantic_perturbed`` int16 ``(N,)``, as long as ``semantic``; when aligned
  (``maskgct.data.align``), ``phone_frames`` int16 ``(N,)``, as long as ``phone_ids``);
* ``<name>.jsonl``: one line per utterance: ``{"utt", "spk", "<field>": [offset, length], ...}``.

The index is written after its shard, and both by rename, so a shard that has an index is complete: a killed
extraction leaves no half shard behind. Files are memory-mapped on read, so random access to one utterance
touches only its bytes, and 100k hours (≈ 2·10¹⁰ frames) fit in a few thousand shards.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

FIELDS = ("phone_ids", "semantic", "acoustic")
# Written only when asked (``extract --fields``): the semantic tokens of a timbre-perturbed copy
# (``maskgct.data.perturb``), which S2A can be trained on against timbre leakage (voice conversion).
SEMANTIC_PERTURBED = "semantic_perturbed"
# Added to an extracted dump by ``python -m maskgct.data align``: each phone's 50 Hz frame (-1: the utterance
# could not be aligned), which guided attention can steer T2S towards (``maskgct.train.guided_attention``).
PHONE_FRAMES = "phone_frames"
OPTIONAL_FIELDS = (SEMANTIC_PERTURBED, PHONE_FRAMES)
# Token ids are < 2**15 (phones < 1024, semantic 8192, acoustic 1024 per codebook): int16 halves the disk.
STORE_DTYPE = np.int16


class DumpError(ValueError):
    """A dump dir that is missing, empty or lacks a field a task needs."""


class ShardWriter:
    """Append utterances to ``<prefix>-NNNNN`` shards of about ``shard_bytes`` bytes each in ``out_dir``."""

    def __init__(self, out_dir: str | Path, prefix: str, shard_bytes: int = 256 << 20, first_index: int = 0):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.shard_bytes = shard_bytes
        self.shard_index = first_index
        self._reset()

    def _reset(self) -> None:
        self._arrays: dict[str, list[np.ndarray]] = {}
        self._offsets: dict[str, int] = {}
        self._rows: list[dict] = []
        self._bytes = 0

    def add(self, utt: str, spk: str, arrays: dict[str, np.ndarray]) -> None:
        """Buffer one utterance; ``arrays`` maps a field of FIELDS to its ``(T,)`` or ``(T, 12)`` ids."""
        row: dict = {"utt": utt, "spk": spk}
        for name, array in arrays.items():
            if name not in FIELDS + OPTIONAL_FIELDS:
                raise DumpError(f"unknown field {name!r}; expected one of {FIELDS + OPTIONAL_FIELDS}")
            array = _stored(utt, name, array)
            offset = self._offsets.get(name, 0)
            row[name] = [offset, int(array.shape[0])]
            self._arrays.setdefault(name, []).append(array)
            self._offsets[name] = offset + int(array.shape[0])
            self._bytes += array.nbytes
        self._rows.append(row)
        if self._bytes >= self.shard_bytes:
            self.flush()

    def flush(self) -> None:
        """Write the buffered utterances as one complete shard (nothing when the buffer is empty)."""
        if not self._rows:
            return
        name = f"{self.prefix}-{self.shard_index:05d}"
        tensors = {
            field: np.ascontiguousarray(np.concatenate(parts)) for field, parts in self._arrays.items()
        }
        _write_atomic(self.out_dir / f"{name}.safetensors", lambda tmp: save_file(tensors, str(tmp)))
        _write_atomic(self.out_dir / f"{name}.jsonl", lambda tmp: _write_index(tmp, self._rows))
        self.shard_index += 1
        self._reset()


def _stored(utt: str, name: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.size and (array.min() < np.iinfo(STORE_DTYPE).min or array.max() > np.iinfo(STORE_DTYPE).max):
        raise DumpError(f"{utt}: {name} ids out of the int16 range")
    return array.astype(STORE_DTYPE)


def _write_atomic(path: Path, write) -> None:
    tmp = path.parent / f".{path.name}.tmp"
    write(tmp)
    os.replace(tmp, path)


def add_field(
    dump_dir: str | Path, name: str, rows: list[dict], field: str, arrays: list[np.ndarray]
) -> None:
    """Add (or replace) ``field`` in shard ``name`` of ``dump_dir``: ``arrays[i]`` belongs to ``rows[i]``
    (the shard's index rows, in order). The other fields' bytes and offsets are kept, so until the new index
    replaces the old one (after the shard), the old index still reads the new shard: a kill loses nothing."""
    dump_dir = Path(dump_dir)
    if field not in OPTIONAL_FIELDS:
        raise DumpError(f"only an optional field can be added to a dump, not {field!r}")
    if len(arrays) != len(rows):
        raise ValueError(f"{len(arrays)} arrays for {len(rows)} utterances")
    with safe_open(str(dump_dir / f"{name}.safetensors"), framework="np") as shard:
        tensors = {key: shard.get_tensor(key) for key in shard.keys() if key != field}
    offset, new_rows = 0, []
    for row, array in zip(rows, arrays, strict=True):
        new_rows.append(dict(row, **{field: [offset, int(len(array))]}))
        offset += len(array)
    parts = [_stored(row["utt"], field, array) for row, array in zip(rows, arrays, strict=True)]
    tensors[field] = np.ascontiguousarray(np.concatenate(parts)) if parts else np.zeros(0, STORE_DTYPE)
    _write_atomic(dump_dir / f"{name}.safetensors", lambda tmp: save_file(tensors, str(tmp)))
    _write_atomic(dump_dir / f"{name}.jsonl", lambda tmp: _write_index(tmp, new_rows))


def _write_index(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as index:
        for row in rows:
            index.write(json.dumps(row) + "\n")


@dataclass
class Entry:
    utt: str
    spk: str
    shard: int
    spans: dict[str, tuple[int, int]]


def read_index(dump_dir: Path, prefix: str = "") -> list[tuple[str, list[dict]]]:
    """``[(shard name, rows)]`` of the complete shards in ``dump_dir`` whose name starts with ``prefix``."""
    out = []
    for index in sorted(dump_dir.glob(f"{prefix}*.jsonl")):
        if not (dump_dir / f"{index.stem}.safetensors").is_file():
            continue
        with open(index, encoding="utf-8") as lines:
            out.append((index.stem, [json.loads(line) for line in lines]))
    return out


class TokenDump:
    """Random access to the utterances of a dump dir: ``dump[i] -> {"utt", "spk", field: int64 array}``.

    ``dump_dir`` may also be a list of dump dirs, read as one set: a corpus and a second one extracted beside
    it (``egs/synth/tts1``'s ``extra_voices``; ``data.train_dump=[dump/train,dump/extra]``).
    """

    def __init__(self, dump_dir: str | Path | Sequence[str | Path], fields: tuple[str, ...] = FIELDS):
        if isinstance(dump_dir, (str, Path)):
            dump_dir = [dump_dir]
        self.dump_dirs = [Path(d) for d in dump_dir]
        self.fields = tuple(fields)
        self.shard_paths: list[Path] = []
        self.entries: list[Entry] = []
        for directory in self.dump_dirs:
            if not directory.is_dir():
                raise DumpError(f"dump dir not found: {directory}")
            shards = read_index(directory)
            if not shards:
                raise DumpError(f"{directory}: no shards (run extraction first)")
            for name, rows in shards:
                for row in rows:
                    missing = [f for f in self.fields if f not in row]
                    if missing:
                        raise DumpError(f"{directory}/{name}: utterance {row['utt']} has no {missing[0]!r}")
                    spans = {f: tuple(row[f]) for f in self.fields}
                    self.entries.append(Entry(row["utt"], row["spk"], len(self.shard_paths), spans))
                self.shard_paths.append(directory / f"{name}.safetensors")
        if not self.entries:
            raise DumpError(f"{','.join(map(str, self.dump_dirs))}: no utterances")
        self.entries.sort(key=lambda e: e.utt)
        self._handles: dict[int, object] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def __getstate__(self) -> dict:
        # Open file handles do not pickle; each DataLoader worker reopens the shards it reads.
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state

    def _shard(self, shard: int):
        if shard not in self._handles:
            self._handles[shard] = safe_open(str(self.shard_paths[shard]), framework="np")
        return self._handles[shard]

    def __getitem__(self, index: int) -> dict:
        entry = self.entries[index]
        shard = self._shard(entry.shard)
        item: dict = {"utt": entry.utt, "spk": entry.spk}
        for field in self.fields:
            offset, length = entry.spans[field]
            item[field] = shard.get_slice(field)[offset : offset + length].astype(np.int64)
        return item
