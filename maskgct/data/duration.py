"""Same-speaker prompt/target pairs for the duration model (``data=duration``).

The model learns the target's total length from its phones, a prompt's phones and the prompt's length, so
a training example is a pair of utterances of one speaker: the target, and another utterance (drawn anew
each epoch) as the prompt; a speaker with a single utterance prompts with that utterance itself. Only
phone ids and utterance lengths are needed, read from either

* a token dump (``train_dump``, written by ``python -m maskgct.data extract``): the semantic length is the
  duration in 50 Hz frames, the index's ``spk`` the speaker; nothing but the phones is read from the shards;
* or a Kaldi data dir (``train_dir``): phones from ``text`` by the G2P (``language``), the length from the
  audio header, ``int(seconds · 50)``, so the model can be trained before (or without) token extraction.

Batches: ``{"utt_ids", "prompt_utt_ids", "phone_ids": Long(B, Pt) padded 1023, "phone_mask": Long(B, Pt),
"frames": Long(B), "prompt_phone_ids": Long(B, Pp), "prompt_phone_mask": Long(B, Pp), "prompt_frames":
Long(B)}``: the target is in the token-batch keys, the prompt in the ``prompt_`` ones. Like the token data
module, batches depend only on ``(seed, epoch)`` and a resumed run skips those already trained on.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from maskgct.audio import AudioError, audio_info
from maskgct.constants import FRAME_RATE, PHONE_PAD_ID
from maskgct.data.datadir import read_datadir
from maskgct.data.datamodule import FixedBatchSampler, ResumableLoaderMixin, pad_sequences
from maskgct.data.shards import TokenDump
from maskgct.text import texts_to_ids

log = logging.getLogger(__name__)
G2P_CHUNK = 256


class DumpUtterances:
    """Speakers, lengths and (lazily read) phone ids of a token dump's utterances."""

    def __init__(self, dump_dir: str | Path | list):
        self.dump = TokenDump(dump_dir, ("phone_ids", "semantic"))
        self.utts = [e.utt for e in self.dump.entries]
        self.speakers = [e.spk for e in self.dump.entries]
        self.frames = [e.spans["semantic"][1] for e in self.dump.entries]

    def phones(self, index: int) -> np.ndarray:
        return self.dump[index]["phone_ids"]


def _g2p(texts: list[str], language: str) -> list[list[int] | None]:
    """Phone ids per text (None where the G2P rejects it), in chunks that share one espeak call."""
    out: list[list[int] | None] = []
    for start in range(0, len(texts), G2P_CHUNK):
        chunk = texts[start : start + G2P_CHUNK]
        try:
            out += texts_to_ids(chunk, language)
        except ValueError:
            for text in chunk:
                try:
                    out += texts_to_ids([text], language)
                except ValueError:
                    out.append(None)
    return out


class DataDirUtterances:
    """Speakers, lengths and phone ids of a Kaldi data dir (G2P run once, kept in memory)."""

    def __init__(self, data_dir: str | Path, language: str = "en"):
        data = read_datadir(data_dir)
        lengths = {}
        for utt in data.utt_ids:
            try:
                _, _, seconds = audio_info(data.audio_path(utt))
            except AudioError:
                continue
            start, end = data.span(utt)
            frames = int(((seconds if end is None else min(end, seconds)) - start) * FRAME_RATE)
            if frames >= 1:
                lengths[utt] = frames
        kept = list(lengths)
        phones = _g2p([data.text[utt] for utt in kept], language)
        self.utts = [utt for utt, ids in zip(kept, phones, strict=True) if ids is not None]
        self.speakers = [data.utt2spk[utt] for utt in self.utts]
        self.frames = [lengths[utt] for utt in self.utts]
        self._phones = [np.asarray(ids, dtype=np.int64) for ids in phones if ids is not None]
        if len(self.utts) < len(data.utt_ids):
            log.warning(
                "%s: skipped %d utterances with unreadable audio or text",
                data_dir,
                len(data.utt_ids) - len(self.utts),
            )
        if not self.utts:
            raise ValueError(f"{data_dir}: no usable utterances")

    def phones(self, index: int) -> np.ndarray:
        return self._phones[index]


class DurationPairDataset(Dataset):
    """Prompt/target pairs of one speaker, keyed by the samplers' ``(index, epoch)`` (or a plain index).

    The prompt of target ``index`` in ``epoch`` is drawn from the speaker's other utterances with a
    generator seeded by ``(seed, epoch, index)``: reproducible, and resumable mid-epoch.
    """

    def __init__(self, utterances: DumpUtterances | DataDirUtterances, seed: int = 0):
        self.utterances = utterances
        self.seed = seed
        self.by_speaker: dict[str, list[int]] = {}
        for index, speaker in enumerate(utterances.speakers):
            self.by_speaker.setdefault(speaker, []).append(index)

    def __len__(self) -> int:
        return len(self.utterances.utts)

    def prompt_index(self, index: int, epoch: int) -> int:
        group = self.by_speaker[self.utterances.speakers[index]]
        if len(group) == 1:
            return index
        pick = int(np.random.default_rng([self.seed, epoch, index]).integers(len(group) - 1))
        # Skip the target itself: ``pick`` indexes the group without it.
        return group[pick + (pick >= group.index(index))]

    def __getitem__(self, key: tuple[int, int] | int) -> dict:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        return self.pair(index, self.prompt_index(index, epoch))

    def pair(self, index: int, prompt: int) -> dict:
        """The item for target utterance ``index`` prompted by utterance ``prompt``."""
        u = self.utterances
        return {
            "utt": u.utts[index],
            "prompt_utt": u.utts[prompt],
            "phone_ids": u.phones(index),
            "frames": u.frames[index],
            "prompt_phone_ids": u.phones(prompt),
            "prompt_frames": u.frames[prompt],
        }


def collate_pairs(items: list[dict]) -> dict:
    """Pad pairs into a duration batch (see the module docstring)."""
    phone_ids, phone_mask = pad_sequences([item["phone_ids"] for item in items], PHONE_PAD_ID)
    prompt_ids, prompt_mask = pad_sequences([item["prompt_phone_ids"] for item in items], PHONE_PAD_ID)
    return {
        "utt_ids": [item["utt"] for item in items],
        "prompt_utt_ids": [item["prompt_utt"] for item in items],
        "phone_ids": phone_ids,
        "phone_mask": phone_mask,
        "frames": torch.tensor([item["frames"] for item in items], dtype=torch.long),
        "prompt_phone_ids": prompt_ids,
        "prompt_phone_mask": prompt_mask,
        "prompt_frames": torch.tensor([item["prompt_frames"] for item in items], dtype=torch.long),
    }


def load_utterances(dump: str | list | None, data_dir: str | None, language: str, name: str):
    if (dump is None) == (data_dir is None):
        raise ValueError(f"give exactly one of {name}_dump and {name}_dir")
    return DumpUtterances(dump) if dump is not None else DataDirUtterances(data_dir, language)


class DurationDataModule(ResumableLoaderMixin, L.LightningDataModule):
    """Same-speaker prompt/target pairs from a token dump or a data dir, in shuffled fixed-size batches.

    Args:
        train_dump / train_dir: the training set, a dump dir (or a list of them) or a Kaldi data dir (exactly
            one).
        valid_dump / valid_dir: optional validation set (fixed pairs, in order).
        language: G2P language of a data dir's texts.
        batch_size: pairs per batch (sequences are phones only, a few hundred tokens).
    """

    def __init__(
        self,
        train_dump: str | list[str] | None = None,
        train_dir: str | None = None,
        valid_dump: str | list[str] | None = None,
        valid_dir: str | None = None,
        language: str = "en",
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__()
        self.train_dump, self.train_dir = train_dump, train_dir
        self.valid_dump, self.valid_dir = valid_dump, valid_dir
        self.language, self.batch_size = language, batch_size
        self.num_workers, self.seed = num_workers, seed

    def train_dataloader(self) -> DataLoader:
        utterances = load_utterances(self.train_dump, self.train_dir, self.language, "train")
        dataset = DurationPairDataset(utterances, self.seed)
        sampler = FixedBatchSampler(len(dataset), self.batch_size, shuffle=True, seed=self.seed)
        return self._loader(dataset, sampler, collate_pairs)

    def val_dataloader(self) -> DataLoader | list:
        if self.valid_dump is None and self.valid_dir is None:
            return []
        utterances = load_utterances(self.valid_dump, self.valid_dir, self.language, "valid")
        dataset = DurationPairDataset(utterances, self.seed)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=False, collate_fn=collate_pairs)
