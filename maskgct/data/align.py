"""``python -m maskgct.data align DUMP_DIR DATA_DIR``: add each phone's frame to an extracted dump.

For every utterance of the dump, its audio (found by utterance id in the data dir it was extracted from) is
force-aligned to its ``phone_ids`` (``maskgct.align.phones``), and the frames are stored as the optional
field ``phone_frames`` of its shard (``maskgct.data.shards.add_field``). An utterance that cannot be aligned
(no sounding phone, audio too short for its phones, another language) gets -1 for every phone: training
guides it by the diagonal instead. Shard by shard, each rewritten whole and by rename: a rerun after a kill
skips the shards already aligned.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from safetensors import safe_open

from maskgct.data.datadir import read_datadir
from maskgct.data.extract import Utterance, utterances
from maskgct.data.shards import PHONE_FRAMES, DumpError, add_field, read_index


def _frames(item: Utterance, phone_ids: np.ndarray, frames: int) -> np.ndarray:
    """The utterance's phone frames, clipped to its ``frames`` semantic frames (-1s: it cannot be aligned)."""
    from maskgct.align import SAMPLE_RATE, AlignmentError
    from maskgct.align.phones import align_phones
    from maskgct.text import ids_to_symbols

    try:
        centres = align_phones(item.audio(SAMPLE_RATE), SAMPLE_RATE, ids_to_symbols(phone_ids.tolist()))
    except AlignmentError:
        return np.full(len(phone_ids), -1)
    return np.minimum(centres, frames - 1)


def align_dump(dump_dir: str | Path, data_dir: str | Path, log: Callable[[str], None] = print) -> dict:
    """Align every shard of ``dump_dir`` that has no ``phone_frames`` yet → ``{"aligned", "failed",
    "skipped_shards"}`` (utterances aligned and not aligned in this run, shards already done)."""
    dump_dir = Path(dump_dir)
    shards = read_index(dump_dir)
    if not shards:
        raise DumpError(f"{dump_dir}: no shards (run extraction first)")
    audio = {item.utt: item for item in utterances(read_datadir(data_dir))}
    counts = {"aligned": 0, "failed": 0, "skipped_shards": 0}
    for name, rows in shards:
        if rows and all(PHONE_FRAMES in row for row in rows):
            counts["skipped_shards"] += 1
            continue
        missing = [row["utt"] for row in rows if row["utt"] not in audio]
        if missing:
            raise DumpError(f"{dump_dir}/{name}: utterance {missing[0]} is not in {data_dir}")
        if any("phone_ids" not in row or "semantic" not in row for row in rows):
            raise DumpError(f"{dump_dir}/{name}: aligning needs the fields phone_ids and semantic")
        started, arrays = time.monotonic(), []
        with safe_open(str(dump_dir / f"{name}.safetensors"), framework="np") as shard:
            phones = shard.get_slice("phone_ids")
            for row in rows:
                (offset, length), frames = row["phone_ids"], row["semantic"][1]
                ids = phones[offset : offset + length].astype(np.int64)
                arrays.append(_frames(audio.pop(row["utt"]), ids, frames))  # pop: its audio is not kept
        failed = sum(int(a.size > 0 and a[0] < 0) for a in arrays)
        add_field(dump_dir, name, rows, PHONE_FRAMES, arrays)
        counts["aligned"] += len(rows) - failed
        counts["failed"] += failed
        seconds = time.monotonic() - started
        log(f"{dump_dir}/{name}: {len(rows) - failed} aligned, {failed} not ({seconds:.0f}s)")
    return counts
