"""Seed-TTS-eval style meta lists: ``utt|prompt_text|prompt_wav|target_text[|gt_wav]``, one utterance a line.

This is the format of the seed-tts-eval test sets (``meta.lst``) and of MaskGCT's batch inference: each line
asks for ``target_text`` spoken in the voice of ``prompt_wav`` (whose transcript is ``prompt_text``); the
generated audio is expected at ``<gen_dir>/<utt>.wav``. The optional fifth field is a ground-truth recording
of the target text (used for the duration ratio). Relative wav paths are read relative to the meta file's
folder, as seed-tts-eval does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FORMAT = "utt|prompt_text|prompt_wav|target_text[|gt_wav]"


class MetaError(ValueError):
    """A meta list that cannot be read: a missing file, a malformed line or a duplicate utterance id."""


@dataclass(frozen=True)
class MetaEntry:
    """One line of a meta list. Paths are absolute once read by :func:`read_meta`."""

    utt: str
    prompt_text: str
    prompt_wav: Path
    target_text: str
    gt_wav: Path | None = None


def _resolve(path_text: str, base: Path) -> Path:
    path = Path(path_text).expanduser()
    return path if path.is_absolute() else base / path


def generated_path(entry: MetaEntry, gen_dir: Path | None) -> Path:
    """``<gen_dir>/<utt>.wav``; without ``gen_dir``, the ground truth itself (the 'GT' row of a table)."""
    if gen_dir is None:
        if entry.gt_wav is None:
            raise MetaError(f"{entry.utt}: no generated folder given and the meta line has no gt_wav")
        return entry.gt_wav
    return gen_dir / f"{entry.utt}.wav"


def read_meta(path: str | Path) -> list[MetaEntry]:
    """Read a meta list; raises :class:`MetaError` naming the line for malformed or duplicate lines.

    Blank lines are skipped. Wav paths are resolved against the meta file's folder but not checked here
    (the evaluation checks them all at once, so that one run lists every missing file).
    """
    path = Path(path)
    if not path.is_file():
        raise MetaError(f"meta list not found: {path}")
    base = path.resolve().parent
    entries: list[MetaEntry] = []
    seen: dict[str, int] = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split("|")]
        if len(fields) not in (4, 5):
            raise MetaError(
                f"{path}:{line_no}: expected 4 or 5 '|'-separated fields ({FORMAT}), got {len(fields)}"
            )
        utt, prompt_text, prompt_wav, target_text = fields[:4]
        gt_wav = fields[4] if len(fields) == 5 and fields[4] else None
        if not utt or not prompt_wav or not target_text:
            raise MetaError(f"{path}:{line_no}: utt, prompt_wav and target_text must not be empty ({FORMAT})")
        if "/" in utt or utt in (".", ".."):
            raise MetaError(f"{path}:{line_no}: utterance id {utt!r} must be a plain file name stem")
        if utt in seen:
            raise MetaError(f"{path}:{line_no}: utterance id {utt!r} repeats line {seen[utt]}")
        seen[utt] = line_no
        entries.append(
            MetaEntry(
                utt=utt,
                prompt_text=prompt_text,
                prompt_wav=_resolve(prompt_wav, base),
                target_text=target_text,
                gt_wav=_resolve(gt_wav, base) if gt_wav else None,
            )
        )
    if not entries:
        raise MetaError(f"meta list is empty: {path}")
    return entries


def write_meta(path: str | Path, entries: list[MetaEntry], relative: bool = True) -> None:
    """Write a meta list. With ``relative``, paths under the meta file's folder are written relative to it.

    Raises :class:`MetaError` when a field contains ``|`` or a line break, which the format cannot hold.
    """
    path = Path(path)
    base = path.resolve().parent

    def as_field(value: str | Path | None) -> str:
        if value is None:
            return ""
        if isinstance(value, Path):
            value = value.resolve() if relative else value
            if relative and value.is_relative_to(base):
                value = value.relative_to(base)
            value = str(value)
        if "|" in value or "\n" in value or "\r" in value:
            raise MetaError(f"a meta field cannot contain '|' or a line break: {value!r}")
        return value

    lines = []
    for entry in entries:
        fields = [entry.utt, entry.prompt_text, entry.prompt_wav, entry.target_text]
        if entry.gt_wav is not None:
            fields.append(entry.gt_wav)
        lines.append("|".join(as_field(field) for field in fields))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def meta_from_datadir(directory: str | Path) -> list[MetaEntry]:
    """A meta list from a Kaldi data dir: each utterance is the target, its own recording the ground truth.

    The prompt is the speaker's next utterance (sorted order, wrapping round), so scoring the data dir's own
    recordings gives the ground-truth row of a results table, and the list can drive batch inference. A
    speaker with a single utterance is prompted with that utterance itself. Data dirs with ``segments`` are
    refused: a meta line names whole files.
    """
    from maskgct.data.datadir import read_datadir

    data = read_datadir(directory)
    if data.segments:
        raise MetaError(
            f"{directory}: data dirs with segments cannot be evaluated; write one file per utterance"
        )
    entries = []
    for utts in data.spk2utt.values():
        for index, utt in enumerate(utts):
            prompt = utts[(index + 1) % len(utts)]
            entries.append(
                MetaEntry(
                    utt=utt,
                    prompt_text=data.text[prompt],
                    prompt_wav=data.audio_path(prompt),
                    target_text=data.text[utt],
                    gt_wav=data.audio_path(utt),
                )
            )
    return entries
