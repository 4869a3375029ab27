"""A manifest of ``audio path + transcript (+ speaker)`` rows → a validated data dir, bad rows listed.

Formats (``format="auto"`` picks by extension, then by the first line):

- ``tsv``: ``path<TAB>text[<TAB>speaker]`` per line; a first line naming ``path`` (or ``audio``) and ``text``
  columns is a header, and then columns are found by name as in CSV.
- ``csv``: a header naming ``path`` (or ``audio``) and ``text`` columns, optionally ``speaker`` and ``id``.
- ``jsonl``: one object per line with ``audio`` (or ``path``), ``text``, optionally ``speaker`` and ``id``.

Relative audio paths are read against ``audio_root``, else the manifest's folder; ``wav.scp`` gets absolute
paths. Utterance ids are ``<speaker>-<id or audio file stem>`` (Kaldi's rule: ids start with their speaker;
``-`` sorts before letters and digits, so sorting utterances keeps each speaker's together). A row is
rejected, with its line number and reason, for bad columns, empty text, a missing, unreadable, silent, too
short or too long audio file, text with nothing pronounceable in ``language`` (when given) or a duplicate id.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from maskgct.audio import AudioError, audio_info
from maskgct.constants import MAX_SECONDS, SILENCE_PEAK
from maskgct.data.datadir import DataDir, DataDirError, validate_datadir, write_datadir

FORMATS = ("auto", "tsv", "csv", "jsonl")
REJECTED_FILE = "rejected.tsv"  # written inside the data dir; the data dir readers ignore it
PATH_KEYS = ("audio", "path")  # the audio column's accepted names, in order of preference
DEFAULT_SPEAKER = "speaker"  # every row's speaker when the manifest has no speaker column
_UNSAFE = re.compile(r"\s+")  # Kaldi keys are whitespace-free


@dataclass
class ImportConfig:
    format: str = "auto"
    audio_root: str | Path | None = None
    speaker_column: str = "speaker"  # a header name (csv, jsonl, headed tsv) or a 1-based column (tsv)
    language: str | None = None  # when set, each transcript must give phones in this language
    min_seconds: float = 0.3  # extraction's default bounds: rows outside them would be rejected there
    max_seconds: float = MAX_SECONDS


@dataclass
class Rejected:
    line: int
    reason: str
    path: str = ""


@dataclass
class _Row:
    line: int
    fields: dict[str, str]


def detect_format(source: Path, first_line: str) -> str:
    suffix = source.suffix.lower()
    by_suffix = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
    if suffix in by_suffix:
        return by_suffix[suffix]
    if first_line.lstrip().startswith("{"):
        return "jsonl"
    if "\t" in first_line:
        return "tsv"
    if "," in first_line:
        return "csv"
    raise ValueError(f"{source}: cannot tell the format; pass --format tsv, csv or jsonl")


def _decoded_lines(source: Path, rejected: list[Rejected]) -> list[str]:
    """The manifest's lines; one that is not UTF-8 is rejected and left blank, so numbering holds."""
    if not source.is_file():
        raise ValueError(f"{source} is not a file" if source.exists() else f"manifest not found: {source}")
    raw = source.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):  # a byte-order mark, as spreadsheet programs write
        raw = raw[3:]
    lines = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            lines.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as err:
            rejected.append(Rejected(number, f"not UTF-8 text (byte {line[err.start]:#04x}); save as UTF-8"))
            lines.append("")
    return lines


def _rows(lines: list[str], fmt: str, config: ImportConfig, rejected: list[Rejected]) -> Iterator[_Row]:
    """Each non-blank data row as ``{"path", "text", "speaker"?, "id"?}`` with its first line number."""
    header = {name.strip().lower() for name in lines[0].split("\t")} if lines else set()
    headed_tsv = fmt == "tsv" and "text" in header and bool(header & set(PATH_KEYS))
    if fmt == "csv" or headed_tsv:
        # With their newlines back, so that a quoted field spanning lines keeps its line break (as a space).
        lines_in = (f"{line}\n" for line in lines)
        reader = csv.DictReader(lines_in, delimiter="\t" if headed_tsv else ",")
        names = [name.strip().lower() for name in reader.fieldnames or []]
        reader.fieldnames = names
        path_key = next((key for key in PATH_KEYS if key in names), None)
        if path_key is None or "text" not in names:
            raise ValueError(f"the header {','.join(names)!r} needs a path (or audio) and a text column")
        start = reader.line_num + 1
        for record in reader:
            line, start = start, reader.line_num + 1
            while not lines[line - 1].strip():  # the reader skips blank lines before a record
                line += 1
            if None in record or None in record.values():
                got = sum(v is not None for k, v in record.items() if k is not None) + len(
                    record.get(None, [])
                )
                rejected.append(Rejected(line, f"bad columns: {got} fields, {len(names)} expected"))
                continue
            yield _Row(line, _pick(record, path_key, config.speaker_column.lower()))
    elif fmt == "tsv":
        column = int(config.speaker_column) - 1 if config.speaker_column.isdigit() else 2
        for line, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            parts = text.split("\t")
            if len(parts) < 2 or len(parts) > max(3, column + 1):
                rejected.append(Rejected(line, f"bad columns: {len(parts)} fields, expected path<TAB>text"))
                continue
            fields = {"path": parts[0], "text": parts[1]}
            if column < len(parts):
                fields["speaker"] = parts[column]
            yield _Row(line, fields)
    else:
        for line, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as err:
                rejected.append(Rejected(line, f"bad JSON: {err.msg}"))
                continue
            path_key = next((key for key in PATH_KEYS if isinstance(record, dict) and key in record), None)
            if path_key is None or not isinstance(record.get("text", ""), str):
                rejected.append(Rejected(line, "bad columns: needs an object with audio (or path) and text"))
                continue
            yield _Row(line, _pick({k: str(v) for k, v in record.items()}, path_key, config.speaker_column))


def _pick(record: dict, path_key: str, speaker_key: str) -> dict[str, str]:
    fields = {"path": record[path_key], "text": record.get("text", "")}
    for key, name in ((speaker_key, "speaker"), ("id", "id")):
        if record.get(key):
            fields[name] = record[key]
    return fields


def _audio_problem(path: Path, config: ImportConfig) -> str | None:
    """Why ``path`` cannot be training audio, or None: it must exist, decode, carry sound, fit the bounds."""
    if not path.is_file():
        return f"missing audio file {path}"
    try:
        seconds = audio_info(path)[2]
    except AudioError as err:
        return f"unreadable or corrupt audio: {err}"
    if seconds < config.min_seconds:
        return f"too short: {seconds:.2f}s < {config.min_seconds}s"
    if seconds > config.max_seconds:
        return f"too long: {seconds:.2f}s > {config.max_seconds}s"
    # A header can be intact over truncated or garbage data: decode it all (bounded by max_seconds).
    try:
        wav, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, ValueError) as err:  # soundfile's LibsndfileError is a RuntimeError
        return f"unreadable or corrupt audio {path}: {err}"
    if not np.isfinite(wav).all():
        return f"corrupt audio {path}: non-finite samples"
    if wav.size == 0 or np.abs(wav).max() < SILENCE_PEAK:
        return f"silent audio {path}"
    return None


def import_manifest(source: str | Path, config: ImportConfig) -> tuple[DataDir, list[Rejected]]:
    """Read ``source``; return the data dir of its good rows and the rejected rows, by line number."""
    if config.format not in FORMATS:
        raise ValueError(f"unknown format {config.format!r}; choose from {', '.join(FORMATS)}")
    source = Path(source)
    rejected: list[Rejected] = []
    lines = _decoded_lines(source, rejected)
    fmt = config.format if config.format != "auto" else detect_format(source, next(iter(lines), ""))
    root = Path(config.audio_root) if config.audio_root is not None else source.parent
    data = DataDir({}, {}, {})
    first_line: dict[str, int] = {}
    for row in _rows(lines, fmt, config, rejected):
        given = row.fields["path"].strip()
        text = " ".join(row.fields["text"].split())
        speaker = _UNSAFE.sub("_", row.fields.get("speaker", "").strip()) or DEFAULT_SPEAKER
        path = (root / given).resolve()
        utt = f"{speaker}-{_UNSAFE.sub('_', row.fields.get('id') or Path(given).stem)}"
        # Cheap checks first: the audio is decoded only for a row that passes them.
        if not given:
            reason = "bad columns: empty audio path"
        elif not text:
            reason = "empty text"
        elif utt in first_line:
            reason = f"duplicate id {utt} (first on line {first_line[utt]})"
        else:
            reason = _audio_problem(path, config)
        if reason is None and config.language is not None:
            reason = _pronounceable(text, config.language)
        if reason is not None:
            rejected.append(Rejected(row.line, reason, given))
            continue
        first_line[utt] = row.line
        data.wav_scp[utt], data.text[utt], data.utt2spk[utt] = str(path), text, speaker
    rejected.sort(key=lambda r: r.line)
    return data, rejected


def _pronounceable(text: str, language: str) -> str | None:
    from maskgct.text import text_to_ids

    try:
        text_to_ids(text, language)
    except (ValueError, RuntimeError) as err:
        return f"text has no phones in {language}: {err}"
    return None


def write_rejected(path: Path, rejected: list[Rejected]) -> None:
    """``line<TAB>path<TAB>reason`` per rejected row, with a header line."""
    clean = lambda value: _UNSAFE.sub(" ", value)  # noqa: E731 - one field, no tabs or newlines in it
    body = "".join(f"{r.line}\t{clean(r.path)}\t{clean(r.reason)}\n" for r in rejected)
    path.write_text("line\tpath\treason\n" + body, encoding="utf-8")


def write_import(
    out_dir: str | Path, data: DataDir, rejected: list[Rejected], overwrite: bool = False
) -> None:
    """Write ``data`` and its ``rejected.tsv`` to a temporary folder beside ``out_dir``, validate that with
    its audio, then rename it into place: a failure at any point leaves no partial ``out_dir``."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise ValueError(f"{out_dir} exists and is not empty; pass --overwrite to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        temp.chmod(0o755)  # mkdtemp's 0700 would make the data dir private to its writer
        write_datadir(temp, data)
        write_rejected(temp / REJECTED_FILE, rejected)
        _, problems, _ = validate_datadir(temp)
        if problems:
            raise DataDirError(f"the imported data dir does not validate: {problems[0]}")
        if out_dir.exists():
            old = temp.with_name(temp.name + ".old")
            out_dir.rename(old)
            temp.rename(out_dir)
            shutil.rmtree(old)
        else:
            temp.rename(out_dir)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
