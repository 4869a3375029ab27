"""Token extraction: a data dir → a dump dir of shards, in ``nj`` parallel jobs that resume after a kill.

The sorted utterances are split into ``nj`` contiguous parts (Kaldi's ``split_data.sh``); job ``j`` writes
shards ``job<j>-NNNNN`` and ``logs/rejected.<j>.txt`` (``<utt> <reason>``), then ``logs/job<j>.done``.
A rerun skips finished jobs and, inside an unfinished one, every utterance already in a complete shard or
already rejected. At the end ``rejected.txt`` gathers the reasons and ``summary.json`` checks that every
utterance is accounted for: written or rejected.

Besides the official fields, ``semantic_perturbed`` (asked for in ``fields``) holds the semantic tokens of
a timbre-perturbed copy of each utterance (``maskgct.data.perturb``, seeded by ``perturb_seed`` and the
utterance id), frame for frame as long as ``semantic``: what S2A trains on against timbre leakage.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from maskgct.audio import AudioError, load_audio
from maskgct.constants import SAMPLE_RATE, SEMANTIC_SAMPLE_RATE
from maskgct.data.datadir import DataDir, read_datadir
from maskgct.data.perturb import perturb_timbre
from maskgct.data.shards import FIELDS, OPTIONAL_FIELDS, SEMANTIC_PERTURBED, ShardWriter, read_index

PROGRESS_EVERY = 50


@dataclass
class Utterance:
    """One utterance to extract; ``audio(sr)`` loads its span at ``sr`` Hz, once per rate."""

    utt: str
    spk: str
    text: str
    path: str
    start: float = 0.0
    end: float | None = None

    def __post_init__(self):
        self._audio: dict[int, np.ndarray] = {}

    def audio(self, sample_rate: int) -> np.ndarray:
        if sample_rate not in self._audio:
            wav = load_audio(self.path, sample_rate)
            first = int(round(self.start * sample_rate))
            last = None if self.end is None else int(round(self.end * sample_rate))
            wav = wav[first:last]
            if wav.size == 0:
                raise AudioError(f"{self.path}: segment {self.start}..{self.end}s is empty")
            self._audio[sample_rate] = wav
        return self._audio[sample_rate]


class Rejected(ValueError):
    """Raised by an extractor for an utterance that cannot be used; the message is the reason."""


@dataclass
class TokenExtractorConfig:
    """What the real extractor computes, and from which trained networks."""

    fields: tuple[str, ...] = ("phone_ids", "semantic", "acoustic")
    language: str = "en"
    semantic_codec: str | None = None  # a SemanticTokenizer.from_pretrained directory
    acoustic_codec: str | None = None  # an AcousticCodec or MelCodec folder (load_acoustic_codec)
    device: str = "cpu"
    min_seconds: float = 0.3
    max_seconds: float = 30.0
    perturb_seed: int = 0  # with the utterance id, seeds the timbre perturbation of semantic_perturbed

    def __post_init__(self):
        # Checked here, before a dump dir is made: a misspelt field must not start an extraction.
        unknown = [name for name in self.fields if name not in FIELDS + OPTIONAL_FIELDS]
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}; expected some of {FIELDS + OPTIONAL_FIELDS}")

    def check_models(self) -> None:
        """Raise ``ValueError`` unless each field's network folder is given and exists (the command line
        checks this before a dump dir is started: a later fix would change the dump's model fingerprint)."""
        needs = []
        if "semantic" in self.fields or SEMANTIC_PERTURBED in self.fields:
            needs.append(("semantic tokens", "--semantic-codec", self.semantic_codec))
        if "acoustic" in self.fields:
            needs.append(("acoustic codes", "--acoustic-codec", self.acoustic_codec))
        for what, option, folder in needs:
            if not folder:
                raise ValueError(f"extracting {what} needs {option} DIR")
            if not Path(folder).is_dir():
                raise ValueError(f"{option} {folder}: folder not found")


class TokenExtractor:
    """``extractor(utterance) -> {field: ids}``: phones from text, semantic and acoustic tokens from audio."""

    def __init__(self, config: TokenExtractorConfig):
        import torch

        self.config = config
        self.torch = torch
        self.semantic = self.acoustic = None
        config.check_models()
        if "semantic" in config.fields or SEMANTIC_PERTURBED in config.fields:
            from maskgct.codecs.semantic import SemanticTokenizer

            self.semantic = SemanticTokenizer.from_pretrained(config.semantic_codec, device=config.device)
        if "acoustic" in config.fields:
            from maskgct.codecs.acoustic_codec import load_acoustic_codec

            self.acoustic = load_acoustic_codec(config.acoustic_codec, config.device)

    def __call__(self, item: Utterance) -> dict[str, np.ndarray]:
        out = {}
        if "phone_ids" in self.config.fields:
            from maskgct.text import text_to_ids

            if not item.text.strip():
                raise Rejected("empty transcript")
            try:
                out["phone_ids"] = np.asarray(text_to_ids(item.text, self.config.language))
            except ValueError as err:
                raise Rejected(f"text: {err}") from None
            if out["phone_ids"].size == 0:
                raise Rejected("no phones in the transcript")
        if self.semantic is not None or self.acoustic is not None:
            seconds = item.audio(SEMANTIC_SAMPLE_RATE).shape[0] / SEMANTIC_SAMPLE_RATE
            if seconds < self.config.min_seconds:
                raise Rejected(f"too short: {seconds:.2f}s < {self.config.min_seconds}s")
            if seconds > self.config.max_seconds:
                raise Rejected(f"too long: {seconds:.2f}s > {self.config.max_seconds}s")
        with self.torch.inference_mode():
            if "semantic" in self.config.fields:
                wav = self.torch.from_numpy(item.audio(SEMANTIC_SAMPLE_RATE))
                out["semantic"] = self.semantic.tokenize(wav).cpu().numpy()
            if SEMANTIC_PERTURBED in self.config.fields:
                # Same samples as the original, so the tokens have exactly its frames.
                wav = perturb_timbre(
                    item.audio(SEMANTIC_SAMPLE_RATE), SEMANTIC_SAMPLE_RATE, item.utt, self.config.perturb_seed
                )
                out[SEMANTIC_PERTURBED] = self.semantic.tokenize(self.torch.from_numpy(wav)).cpu().numpy()
            if self.acoustic is not None:
                wav = self.torch.from_numpy(item.audio(SAMPLE_RATE))[None, None].to(self.config.device)
                out["acoustic"] = self.acoustic.encode(wav)[0].cpu().numpy()
        return out


def utterances(data: DataDir) -> list[Utterance]:
    out = []
    for utt in data.utt_ids:
        start, end = data.span(utt)
        out.append(Utterance(utt, data.utt2spk[utt], data.text[utt], str(data.audio_path(utt)), start, end))
    return out


def _run_job(
    job: int,
    items: list[Utterance],
    dump_dir: Path,
    factory: Callable,
    factory_arg: object,
    shard_bytes: int,
    threads: int = 0,
) -> tuple[int, int]:
    """Extract ``items`` into ``job<job>-*`` shards, skipping earlier work → (written, rejected)."""
    logs = dump_dir / "logs"
    prefix = f"job{job:03d}"
    done_marker = logs / f"{prefix}.done"
    existing = read_index(dump_dir, prefix + "-")
    written = {row["utt"] for _, rows in existing for row in rows}
    rejected_file = logs / f"rejected.{job}.txt"
    rejected = set()
    if rejected_file.is_file():
        rejected = {line.split(" ", 1)[0] for line in rejected_file.read_text(encoding="utf-8").splitlines()}
    if done_marker.is_file():
        return len(written), len(rejected)
    todo = [item for item in items if item.utt not in written and item.utt not in rejected]
    if threads:
        import torch

        # Jobs share the cores: more threads than cores per job only spin and slow every job down.
        torch.set_num_threads(threads)
    extractor = factory(factory_arg)
    writer = ShardWriter(dump_dir, prefix, shard_bytes, first_index=len(existing))
    started = time.time()
    with open(rejected_file, "a", encoding="utf-8") as reject_log:
        for done, item in enumerate(todo, start=1):
            if done % PROGRESS_EVERY == 0:
                rate = done / (time.time() - started)
                print(f"job {job}: {done}/{len(todo)} utterances ({rate:.1f}/s)", file=sys.stderr, flush=True)
            try:
                arrays = extractor(item)
            except (Rejected, AudioError) as err:
                reason = " ".join(str(err).split())
                reject_log.write(f"{item.utt} {reason}\n")
                reject_log.flush()
                rejected.add(item.utt)
                continue
            writer.add(item.utt, item.spk, arrays)
            written.add(item.utt)
    writer.flush()
    done_marker.touch()
    return len(written), len(rejected)


def models_fingerprint(config: object) -> dict[str, str]:
    """``{model dir: digest of its files' names and contents}`` for the tokenizer and codec an extractor
    config reads, so resuming a dump with retrained models fails instead of mixing tokens (a rewrite with
    the same contents, as a rerun of the recipe's stage 3 does, still resumes)."""
    out = {}
    for directory in (getattr(config, "semantic_codec", None), getattr(config, "acoustic_codec", None)):
        if directory is None or not Path(directory).is_dir():
            continue
        digest = hashlib.sha256()
        for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
            digest.update(f"{path.relative_to(directory)}\n".encode())
            with path.open("rb") as file:
                while chunk := file.read(1 << 24):
                    digest.update(chunk)
        out[str(directory)] = digest.hexdigest()
    return out


def extract(
    data_dir: str | Path,
    dump_dir: str | Path,
    factory: Callable = TokenExtractor,
    factory_arg: object = None,
    nj: int = 1,
    shard_bytes: int = 256 << 20,
) -> dict:
    """Extract every utterance of ``data_dir`` into ``dump_dir``; return and write the summary.

    ``factory(factory_arg)`` is called once per job to build the extractor (so models load once per
    process); it must be picklable (a module-level function) when ``nj > 1``.
    """
    # Checked before the dump dir is made: a refused run must leave nothing a correct rerun would trip on.
    if nj < 1:
        raise ValueError(f"the number of jobs must be at least 1, not {nj}")
    if shard_bytes < 1:
        raise ValueError(f"the shard size must be at least 1 byte, not {shard_bytes}")
    items = utterances(read_datadir(data_dir))
    dump_dir = Path(dump_dir)
    (dump_dir / "logs").mkdir(parents=True, exist_ok=True)
    if factory_arg is None:
        factory_arg = TokenExtractorConfig()
    split_file = dump_dir / "logs" / "split.json"
    split = {"nj": nj, "utterances": len(items), "models": models_fingerprint(factory_arg)}
    # What each utterance gets: a rerun asking for other fields (or another perturbation) must not resume
    # into shards that lack them.
    what = {key: getattr(factory_arg, key) for key in ("fields", "perturb_seed") if hasattr(factory_arg, key)}
    split["extracts"] = {key: list(v) if isinstance(v, tuple) else v for key, v in what.items()}
    if split_file.is_file():
        previous = json.loads(split_file.read_text())
        if previous["nj"] != nj or previous["utterances"] != len(items):
            raise ValueError(
                f"{dump_dir} was started with nj={previous['nj']} on {previous['utterances']} utterances; "
                f"resume with the same --nj and data dir, or use a new dump dir"
            )
        if "models" in previous and previous["models"] != split["models"]:  # (older dumps have none)
            raise ValueError(
                f"{dump_dir} was started with other tokenizer/codec files than "
                f"{', '.join(split['models'])} hold now (retrained?): remove it or use a new dump dir"
            )
        if previous.get("extracts", split["extracts"]) != split["extracts"]:  # (older dumps have none)
            raise ValueError(
                f"{dump_dir} was started extracting {previous['extracts']}, not {split['extracts']}: "
                "resume with the same --fields, or use a new dump dir"
            )
    else:
        split_file.write_text(json.dumps(split) + "\n")
    parts = [list(part) for part in np.array_split(np.array(items, dtype=object), nj)]
    started = time.time()
    if nj == 1:
        counts = [_run_job(0, parts[0], dump_dir, factory, factory_arg, shard_bytes)]
    else:
        # spawn: each job starts clean (no forked torch threads) and loads its own models.
        context = multiprocessing.get_context("spawn")
        threads = max(1, (os.cpu_count() or 1) // nj)
        with ProcessPoolExecutor(nj, mp_context=context) as pool:
            futures = [
                pool.submit(_run_job, job, part, dump_dir, factory, factory_arg, shard_bytes, threads)
                for job, part in enumerate(parts)
            ]
            counts = [future.result() for future in futures]
    reasons = []
    for job in range(nj):
        path = dump_dir / "logs" / f"rejected.{job}.txt"
        if path.is_file():
            reasons.extend(path.read_text(encoding="utf-8").splitlines())
    (dump_dir / "rejected.txt").write_text("".join(f"{line}\n" for line in sorted(reasons)), encoding="utf-8")
    written = sum(c[0] for c in counts)
    summary = {
        "utterances": len(items),
        "written": written,
        "rejected": len(reasons),
        "shards": len(read_index(dump_dir)),
        "seconds": round(time.time() - started, 1),
        "extractor": asdict(factory_arg) if hasattr(factory_arg, "__dataclass_fields__") else None,
    }
    (dump_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if written + len(reasons) != len(items):
        raise ValueError(
            f"{dump_dir}: {len(items)} utterances but {written} written + {len(reasons)} rejected"
        )
    return summary
