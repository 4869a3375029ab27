"""Lightning data modules: token batches from a dump dir, audio segment batches from a data dir.

Both are resumable mid-epoch: the batch order of an epoch depends only on ``(seed, epoch)``, random crops on
``(seed, epoch, utterance)``, and after a restart the sampler skips the batches the checkpoint had already
trained on. So a killed run continues on exactly the batches it would have seen. Under DDP each rank takes
every ``world_size``-th batch of the same order (no ``DistributedSampler`` re-wrapping: ``maskgct.train``
turns lightning's off).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset

from maskgct.audio import AudioError, audio_info, to_mono
from maskgct.constants import PHONE_PAD_ID, SAMPLE_RATE
from maskgct.data.datadir import read_datadir
from maskgct.data.shards import FIELDS, PHONE_FRAMES, SEMANTIC_PERTURBED, TokenDump

TOKEN_PAD = 0


def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


class ResumableBatchSampler:
    """Base: an epoch's batches from ``make_batches(epoch)``, split over ranks, resumable mid-epoch.

    Yields lists of ``(index, epoch)`` so datasets can seed per-item randomness without global state.
    """

    def __init__(self, seed: int = 0, num_replicas: int | None = None, rank: int | None = None):
        world, this_rank = _world()
        self.num_replicas = num_replicas if num_replicas is not None else world
        self.rank = rank if rank is not None else this_rank
        self.seed = seed
        self.epoch = 0
        self.skip = 0
        # Lightning calls ``set_epoch`` on ``loader.sampler`` and ``loader.batch_sampler.sampler`` only.
        self.sampler = self

    def make_batches(self, epoch: int) -> list[list[int]]:
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip_batches(self, count: int) -> None:
        """Start the next iteration after ``count`` batches of this rank (a resumed epoch)."""
        self.skip = count

    def _rank_batches(self) -> list[list[int]]:
        batches = self.make_batches(self.epoch)
        if self.num_replicas > 1:
            # Every rank must run the same number of steps: repeat the first batches to fill the last round.
            short = -len(batches) % self.num_replicas
            batches = batches + batches[:short]
            batches = batches[self.rank :: self.num_replicas]
        return batches

    def __len__(self) -> int:
        return len(self._rank_batches())

    def __iter__(self):
        batches = self._rank_batches()[self.skip :]
        self.skip = 0
        for batch in batches:
            yield [(index, self.epoch) for index in batch]


class FrameBatchSampler(ResumableBatchSampler):
    """Dynamic batches: utterances of similar length, padded size ``B · max(T)`` ≤ ``max_frames``.

    Indices are shuffled, cut into buckets of ``bucket_size`` utterances, each bucket sorted by length and cut
    greedily into batches; then the batches are shuffled. An utterance longer than ``max_frames`` forms a
    batch of its own (crop or filter such utterances upstream).
    """

    def __init__(
        self,
        lengths: list[int],
        max_frames: int,
        shuffle: bool = True,
        bucket_size: int = 2000,
        max_batch_size: int | None = None,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
    ):
        super().__init__(seed, num_replicas, rank)
        self.lengths = np.asarray(lengths)
        self.max_frames = max_frames
        self.shuffle = shuffle
        self.bucket_size = bucket_size
        self.max_batch_size = max_batch_size
        self._cache: tuple[int, list[list[int]]] | None = None

    def make_batches(self, epoch: int) -> list[list[int]]:
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.lengths)) if self.shuffle else np.arange(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.bucket_size):
            bucket = order[start : start + self.bucket_size]
            bucket = bucket[np.argsort(self.lengths[bucket], kind="stable")]
            batch: list[int] = []
            longest = 0
            for index in bucket.tolist():
                longest_if_added = max(longest, int(self.lengths[index]))
                full = self.max_batch_size is not None and len(batch) >= self.max_batch_size
                if batch and (longest_if_added * (len(batch) + 1) > self.max_frames or full):
                    batches.append(batch)
                    batch, longest_if_added = [], int(self.lengths[index])
                batch.append(index)
                longest = longest_if_added
            if batch:
                batches.append(batch)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        self._cache = (epoch, batches)
        return batches


class FixedBatchSampler(ResumableBatchSampler):
    """Shuffled batches of ``batch_size`` indices (a last partial batch is dropped unless it is alone)."""

    def __init__(self, size: int, batch_size: int, shuffle: bool = True, seed: int = 0, **world):
        super().__init__(seed, **world)
        self.size = size
        self.batch_size = batch_size
        self.shuffle = shuffle

    def make_batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.size) if self.shuffle else np.arange(self.size)
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, self.size, self.batch_size)]
        if len(batches) > 1 and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches


class TokenDataset(Dataset):
    """The utterances of a dump dir, keyed by the samplers' ``(index, epoch)``."""

    def __init__(self, dump_dir: str | Path | list, fields: tuple[str, ...] = FIELDS):
        self.dump = TokenDump(dump_dir, tuple(fields))

    def __len__(self) -> int:
        return len(self.dump)

    def lengths(self, field: str) -> list[int]:
        return [entry.spans[field][1] for entry in self.dump.entries]

    def __getitem__(self, key: tuple[int, int] | int) -> dict:
        index = key[0] if isinstance(key, tuple) else key
        return self.dump[index]


def pad_sequences(arrays: list[np.ndarray], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer arrays (T_i, ...) -> ``(Long(B, T, ...) padded with pad, Long(B, T) 1 = valid)``."""
    longest = max(a.shape[0] for a in arrays)
    padded = torch.full((len(arrays), longest) + tuple(arrays[0].shape[1:]), pad, dtype=torch.long)
    mask = torch.zeros(len(arrays), longest, dtype=torch.long)
    for row, array in enumerate(arrays):
        padded[row, : array.shape[0]] = torch.from_numpy(array)
        mask[row, : array.shape[0]] = 1
    return padded, mask


def collate_tokens(items: list[dict]) -> dict:
    """Pad items into the token batch of the training contract (see ``conf/train.yaml``'s tasks)."""
    batch: dict = {"utt_ids": [item["utt"] for item in items]}
    pads = {
        "phone_ids": PHONE_PAD_ID,
        "semantic": TOKEN_PAD,
        SEMANTIC_PERTURBED: TOKEN_PAD,
        "acoustic": TOKEN_PAD,
        PHONE_FRAMES: -1,
    }
    for field, pad in pads.items():
        if field not in items[0]:
            continue
        prefix = "phone" if field == "phone_ids" else field
        batch[field], batch[f"{prefix}_mask"] = pad_sequences([item[field] for item in items], pad)
    return batch


class ResumableLoaderMixin:
    """For data modules: build a training loader whose sampler skips what a resumed run already did."""

    seed: int
    num_workers: int

    def _loader(self, dataset: Dataset, sampler: ResumableBatchSampler, collate) -> DataLoader:
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.fit_loop.restarting:
            # The checkpoint was written after ``processed`` batches of the current epoch had been trained,
            # unless it was written on an epoch's last batch: lightning then resumes at the next epoch
            # (still reporting the finished epoch's count), of which nothing has been trained.
            progress = trainer.fit_loop.epoch_loop.batch_progress
            sampler.set_epoch(trainer.current_epoch)
            sampler.skip_batches(0 if progress.is_last_batch else progress.current.processed)
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=self.num_workers,
            persistent_workers=False,
            # Its own generator: creating the loader's iterator must not draw from the global RNG,
            # which a resumed run restores to the checkpoint's state.
            generator=torch.Generator().manual_seed(self.seed),
        )


class TokenDataModule(ResumableLoaderMixin, L.LightningDataModule):
    """Token batches (phone ids, semantic tokens, acoustic codes) from dump dirs, in dynamic batches.

    Args:
        train_dump: dump dir of the training set, or a list of dump dirs read as one set.
        valid_dump: optional dump dir (or list) for validation.
        fields: which arrays to load (a T2S run needs no acoustic codes).
        max_frames: padded frames per batch, ``B · max(T)`` over ``length_field``.
        length_field: the field whose length sizes the batch (``semantic`` for T2S and S2A).
    """

    def __init__(
        self,
        train_dump: str | list[str],
        valid_dump: str | list[str] | None = None,
        fields: tuple[str, ...] | list[str] = FIELDS,
        max_frames: int = 6000,
        max_batch_size: int | None = None,
        length_field: str = "semantic",
        bucket_size: int = 2000,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__()
        self.train_dump, self.valid_dump = train_dump, valid_dump
        self.fields = tuple(fields)
        self.max_frames, self.max_batch_size = max_frames, max_batch_size
        self.length_field, self.bucket_size = length_field, bucket_size
        self.num_workers, self.seed = num_workers, seed

    def _sampler(self, dataset: TokenDataset, shuffle: bool) -> FrameBatchSampler:
        return FrameBatchSampler(
            dataset.lengths(self.length_field),
            self.max_frames,
            shuffle=shuffle,
            bucket_size=self.bucket_size,
            max_batch_size=self.max_batch_size,
            seed=self.seed,
        )

    def train_dataloader(self) -> DataLoader:
        dataset = TokenDataset(self.train_dump, self.fields)
        return self._loader(dataset, self._sampler(dataset, shuffle=True), collate_tokens)

    def val_dataloader(self) -> DataLoader | list:
        if not self.valid_dump:
            return []
        dataset = TokenDataset(self.valid_dump, self.fields)
        return DataLoader(dataset, batch_sampler=self._sampler(dataset, False), collate_fn=collate_tokens)


class AudioSegmentDataset(Dataset):
    """Fixed-length segments of a data dir's utterances at ``sample_rate`` (random offsets when training).

    Reads only the segment's window from the file, then resamples. Utterances shorter than the segment are
    zero-padded; ``wav_lengths`` gives the real length. Unreadable files are dropped at construction.
    """

    def __init__(
        self, data_dir: str | Path, sample_rate: int, segment_seconds: float, random: bool, seed: int = 0
    ):
        data = read_datadir(data_dir)
        self.sample_rate = sample_rate
        self.segment = int(round(segment_seconds * sample_rate))
        self.random, self.seed = random, seed
        self.items = []  # (utt, path, start_s, end_s)
        for utt in data.utt_ids:
            path = data.audio_path(utt)
            try:
                _, _, seconds = audio_info(path)
            except AudioError:
                continue
            start, end = data.span(utt)
            end = seconds if end is None else min(end, seconds)
            if end > start:
                self.items.append((utt, str(path), start, end))
        if not self.items:
            raise ValueError(f"{data_dir}: no readable audio")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, epoch = key
        utt, path, start, end = self.items[index]
        span = end - start
        seconds = self.segment / self.sample_rate
        offset = 0.0
        if self.random and span > seconds:
            offset = float(np.random.default_rng([self.seed, epoch, index]).uniform(0, span - seconds))
        info = sf.info(path)
        first = int((start + offset) * info.samplerate)
        frames = int(min(seconds, span) * info.samplerate)
        wav, file_rate = sf.read(path, start=first, frames=frames, dtype="float32", always_2d=True)
        wav = to_mono(wav.T, file_rate, self.sample_rate, name=path)[: self.segment]
        out = np.zeros(self.segment, dtype=np.float32)
        out[: wav.shape[0]] = wav
        return {"utt": utt, "wav": out, "length": wav.shape[0]}


def collate_audio(items: list[dict]) -> dict:
    return {
        "utt_ids": [item["utt"] for item in items],
        "wav": torch.from_numpy(np.stack([item["wav"] for item in items])),
        "wav_lengths": torch.tensor([item["length"] for item in items], dtype=torch.long),
    }


class AudioDataModule(ResumableLoaderMixin, L.LightningDataModule):
    """Audio batches ``{"utt_ids", "wav": (B, L), "wav_lengths": (B,)}`` for codec training.

    Args:
        train_dir: Kaldi data dir of the training set.
        sample_rate: 24000 for the acoustic codec, 16000 for the semantic codec.
        segment_seconds: length of each training segment.
    """

    def __init__(
        self,
        train_dir: str,
        valid_dir: str | None = None,
        sample_rate: int = SAMPLE_RATE,
        segment_seconds: float = 1.0,
        batch_size: int = 8,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__()
        self.train_dir, self.valid_dir = train_dir, valid_dir
        self.sample_rate, self.segment_seconds = sample_rate, segment_seconds
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed

    def train_dataloader(self) -> DataLoader:
        dataset = AudioSegmentDataset(self.train_dir, self.sample_rate, self.segment_seconds, True, self.seed)
        sampler = FixedBatchSampler(len(dataset), self.batch_size, shuffle=True, seed=self.seed)
        return self._loader(dataset, sampler, collate_audio)

    def val_dataloader(self) -> DataLoader | list:
        if not self.valid_dir:
            return []
        dataset = AudioSegmentDataset(
            self.valid_dir, self.sample_rate, self.segment_seconds, False, self.seed
        )
        sampler = FixedBatchSampler(len(dataset), self.batch_size, shuffle=False)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_audio)
