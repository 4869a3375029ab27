"""Kaldi-style data dirs: ``wav.scp``, ``text``, ``utt2spk``, ``spk2utt`` and optional ``segments``.

Every file is ``<key> <value>`` per line, sorted by key in byte order (``LC_ALL=C sort``), keys unique.
``wav.scp`` maps a recording id to an audio file path (relative paths are read from the directory holding
``data/``'s parent, i.e. the recipe directory, exactly as Kaldi does: relative to the working directory).
With ``segments`` (``<utt> <recording> <start_s> <end_s>``) an utterance is a slice of a recording;
without it, utterance ids are recording ids. Piped ``wav.scp`` entries (``cmd |``) are not supported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from maskgct.audio import AudioError, audio_info


class DataDirError(ValueError):
    """A data dir that is missing a file or has a malformed, unsorted or inconsistent one."""


@dataclass
class Segment:
    recording: str
    start: float
    end: float


@dataclass
class DataDir:
    """An in-memory data dir. ``utt2spk`` defines the utterance set; the other maps must cover it."""

    wav_scp: dict[str, str]
    text: dict[str, str]
    utt2spk: dict[str, str]
    segments: dict[str, Segment] | None = None
    root: Path = field(default_factory=Path)

    @property
    def utt_ids(self) -> list[str]:
        return sorted(self.utt2spk)

    @property
    def spk2utt(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for utt in self.utt_ids:
            out.setdefault(self.utt2spk[utt], []).append(utt)
        return dict(sorted(out.items()))

    def audio_path(self, utt: str) -> Path:
        """The file holding ``utt``'s audio (the recording's file when there are segments)."""
        recording = self.segments[utt].recording if self.segments else utt
        path = Path(self.wav_scp[recording])
        return path if path.is_absolute() else Path(os.getcwd()) / path

    def span(self, utt: str) -> tuple[float, float | None]:
        """``(start_s, end_s)`` of ``utt`` inside its file; ``end_s`` is None for the whole file."""
        if not self.segments:
            return 0.0, None
        seg = self.segments[utt]
        return seg.start, seg.end


def _read_map(path: Path, allow_empty_value: bool = False) -> dict[str, str]:
    """Read ``<key> <value>`` lines; raise DataDirError on duplicate, unsorted or malformed lines."""
    out: dict[str, str] = {}
    previous = None
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                raise DataDirError(f"{path}:{number}: empty line")
            key, _, value = line.partition(" ")
            value = value.strip()
            if not value and not allow_empty_value:
                raise DataDirError(f"{path}:{number}: no value after key {key!r}")
            if key in out:
                raise DataDirError(f"{path}:{number}: duplicate key {key!r}")
            if previous is not None and key.encode() < previous.encode():
                raise DataDirError(
                    f"{path}:{number}: not sorted ({key!r} after {previous!r}); run LC_ALL=C sort"
                )
            out[key] = value
            previous = key
    return out


def _write_map(path: Path, mapping: dict[str, str]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for key in sorted(mapping, key=str.encode):
            out.write(f"{key} {mapping[key]}\n")


def read_datadir(directory: str | Path) -> DataDir:
    """Read a data dir, checking each file's format and that all files describe the same utterances."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataDirError(f"data dir not found: {directory}")
    for name in ("wav.scp", "text", "utt2spk"):
        if not (directory / name).is_file():
            raise DataDirError(f"{directory}: missing {name}")
    wav_scp = _read_map(directory / "wav.scp")
    for rec, value in wav_scp.items():
        if value.endswith("|"):
            raise DataDirError(
                f"{directory}/wav.scp: {rec}: piped entries are not supported, write audio files"
            )
    # An empty transcript is legal in the file format; extraction rejects that utterance with a reason.
    text = _read_map(directory / "text", allow_empty_value=True)
    utt2spk = _read_map(directory / "utt2spk")
    segments = None
    if (directory / "segments").is_file():
        segments = {}
        for utt, value in _read_map(directory / "segments").items():
            parts = value.split()
            try:
                rec, start, end = parts[0], float(parts[1]), float(parts[2])
            except (IndexError, ValueError):
                raise DataDirError(
                    f"{directory}/segments: {utt}: expected '<recording> <start> <end>'"
                ) from None
            if not 0 <= start < end:
                raise DataDirError(f"{directory}/segments: {utt}: bad span {start}..{end}")
            if rec not in wav_scp:
                raise DataDirError(f"{directory}/segments: {utt}: recording {rec!r} not in wav.scp")
            segments[utt] = Segment(rec, start, end)
    data = DataDir(wav_scp, text, utt2spk, segments, directory)
    _check_consistent(data, directory)
    return data


def _check_consistent(data: DataDir, directory: Path) -> None:
    utts = set(data.utt2spk)
    audio_keys = set(data.segments) if data.segments is not None else set(data.wav_scp)
    audio_file = "segments" if data.segments is not None else "wav.scp"
    for name, keys in (("text", set(data.text)), (audio_file, audio_keys)):
        if keys != utts:
            extra, missing = sorted(keys - utts), sorted(utts - keys)
            detail = f"{missing[0]!r} missing" if missing else f"{extra[0]!r} not in utt2spk"
            raise DataDirError(f"{directory}: {name} and utt2spk differ ({detail})")
    spk2utt_file = directory / "spk2utt"
    if spk2utt_file.is_file():
        stored = {spk: utts.split() for spk, utts in _read_map(spk2utt_file).items()}
        if stored != data.spk2utt:
            raise DataDirError(f"{directory}: spk2utt does not match utt2spk; regenerate it")
    # Kaldi's rule: utterance ids start with their speaker id, so sorting by utt also groups speakers.
    for utt, spk in data.utt2spk.items():
        if not utt.startswith(spk):
            raise DataDirError(
                f"{directory}/utt2spk: utterance {utt!r} does not start with its speaker {spk!r}"
            )


def write_datadir(directory: str | Path, data: DataDir) -> None:
    """Write all files of ``data`` (``spk2utt`` derived from ``utt2spk``), sorted."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _write_map(directory / "wav.scp", data.wav_scp)
    _write_map(directory / "text", data.text)
    _write_map(directory / "utt2spk", data.utt2spk)
    _write_map(directory / "spk2utt", {spk: " ".join(utts) for spk, utts in data.spk2utt.items()})
    if data.segments is not None:
        _write_map(
            directory / "segments",
            {utt: f"{s.recording} {s.start:.3f} {s.end:.3f}" for utt, s in data.segments.items()},
        )
    elif (directory / "segments").exists():
        (directory / "segments").unlink()


def validate_datadir(directory: str | Path, check_audio: bool = True) -> tuple[DataDir, list[str], list[str]]:
    """Read and check a data dir; with ``check_audio`` every file must open and cover its segments.

    Format errors raise DataDirError. Per-utterance findings come back as ``"<utt> <reason>"`` lines, so a
    caller can report all of them at once: ``problems`` (unreadable or empty audio, bad segments) and
    ``warnings`` (empty transcripts: legal, extraction rejects them with that reason).
    """
    data = read_datadir(directory)
    problems, warnings = [], []
    durations: dict[str, float] = {}
    for utt in data.utt_ids:
        if not data.text[utt].strip():
            warnings.append(f"{utt} empty transcript")
        if not check_audio:
            continue
        path = data.audio_path(utt)
        key = str(path)
        if key not in durations:
            try:
                durations[key] = audio_info(path)[2]
            except AudioError as err:
                durations[key] = -1.0
                problems.append(f"{utt} {err}")
                continue
        seconds = durations[key]
        if seconds < 0:
            problems.append(f"{utt} unreadable audio {path}")
        elif seconds == 0:
            problems.append(f"{utt} empty audio {path}")
        elif data.segments and data.segments[utt].end > seconds + 0.01:
            problems.append(
                f"{utt} segment ends at {data.segments[utt].end}s after the file's {seconds:.2f}s"
            )
    return data, problems, warnings
