"""Score generated speech listed in a seed-tts-eval meta list: WER, SIM, DNSMOS, duration ratio, RTF."""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from maskgct.audio import AudioError
from maskgct.eval.asr import DEFAULT_ASR_MODEL, load_asr
from maskgct.eval.audio import SAMPLE_RATE, load_speech
from maskgct.eval.meta import MetaEntry, generated_path, read_meta
from maskgct.eval.mos import dnsmos
from maskgct.eval.report import write_report
from maskgct.eval.speaker import DEFAULT_SPEAKER_MODEL, cosine, load_speaker_encoder
from maskgct.eval.wer import CHARACTER_LANGUAGES, DEFAULT_NORMALISER, error_counts, normalize_text

METRICS = ("wer", "sim", "dnsmos")
TIMINGS_FILE = "timings.txt"


class EvalError(ValueError):
    """An evaluation that cannot run: unknown metric, missing audio files, bad timings."""


def read_timings(path: str | Path) -> dict[str, float]:
    """``<utt> <synthesis seconds>`` per line (whitespace separated) → {utt: seconds}."""
    path = Path(path)
    if not path.is_file():
        raise EvalError(f"timings file not found: {path}")
    timings = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            utt, seconds = fields
            timings[utt] = float(seconds)
        except ValueError:
            raise EvalError(f"{path}:{line_no}: expected '<utt> <seconds>', got {line!r}") from None
    return timings


def _check_files(entries: Sequence[MetaEntry], gen_dir: Path | None) -> None:
    """Fail before loading any model, listing how many files are missing and the first few."""
    missing = []
    for entry in entries:
        # The prompt is needed for SIM and for the report's spectrograms, so it must exist in any case.
        wanted = [generated_path(entry, gen_dir), entry.prompt_wav]
        if entry.gt_wav is not None:
            wanted.append(entry.gt_wav)
        missing += [str(path) for path in wanted if not path.is_file()]
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise EvalError(f"{len(missing)} audio file(s) missing: {shown}")


def check_writable_folder(folder: Path) -> None:
    """Refuse, before any model loads, a report folder that cannot be made or written: the first folder
    that exists on its path is probed with a temporary file (which works as root too, unlike ``access``)."""
    if folder.exists() and not folder.is_dir():
        raise EvalError(f"report folder {folder} is not a folder")
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    if not existing.is_dir():
        raise EvalError(f"report folder {folder}: {existing} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise EvalError(f"report folder {folder}: cannot write in {existing} ({err.strerror})") from None


def _mean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def evaluate(
    meta: str | Path | Sequence[MetaEntry],
    gen_dir: str | Path | None,
    out_dir: str | Path | None = None,
    metrics: Sequence[str] = METRICS,
    language: str = "en",
    asr_model: str = DEFAULT_ASR_MODEL,
    sim_model: str = DEFAULT_SPEAKER_MODEL,
    device: str = "cpu",
    asr_compute_type: str = "auto",
    timings: str | Path | dict[str, float] | None = None,
    progress: bool = True,
    normaliser: str = DEFAULT_NORMALISER,
) -> dict:
    """Score every meta line's generated wav; returns the summary dict; with ``out_dir``, writes a report.

    ``metrics`` is any subset of ``("wer", "sim", "dnsmos")``; the duration ratio (generated / ``gt_wav``) is
    added for lines with a ground truth, and RTF (synthesis seconds / generated seconds) when ``timings`` (a
    ``{utt: seconds}`` dict or file) is given or ``<gen_dir>/timings.txt`` exists. ``normaliser`` is the
    WER text normalisation: ``"maskgct"`` or seed-tts-eval's ``"seed-tts"`` (see :mod:`maskgct.eval.wer`).
    Report files: ``results.csv`` (one row per utterance), ``summary.md``, ``summary.json``, ``report.png``.
    An utterance whose audio is unreadable or silent is left out of the scores and listed in the summary's
    ``failed`` ({utt: reason}); only when none can be scored is it an ``EvalError``.
    """
    entries = read_meta(meta) if isinstance(meta, (str, Path)) else list(meta)
    gen_dir = Path(gen_dir) if gen_dir is not None else None
    _check_request(entries, gen_dir, metrics, language, normaliser)
    if out_dir is not None:
        check_writable_folder(Path(out_dir))
    if timings is None and gen_dir is not None and (gen_dir / TIMINGS_FILE).is_file():
        timings = gen_dir / TIMINGS_FILE
    if timings is not None and not isinstance(timings, dict):
        timings = read_timings(timings)
    scorer = Scorer(metrics, language, asr_model, sim_model, device, asr_compute_type, normaliser)
    rows, failed = [], {}
    for entry in tqdm(entries, desc="evaluating", unit="utt", disable=not progress):
        try:
            wav = load_speech(generated_path(entry, gen_dir))
            row = {"utt": entry.utt, "gen_seconds": len(wav) / SAMPLE_RATE, "target_text": entry.target_text}
            row.update(scorer.score(entry, wav))
            if entry.gt_wav is not None:
                row["gt_seconds"] = len(load_speech(entry.gt_wav)) / SAMPLE_RATE
                row["dur_ratio"] = row["gen_seconds"] / row["gt_seconds"]
        except AudioError as err:
            # One corrupt or silent file is that utterance's result, not the end of the evaluation.
            failed[entry.utt] = str(err)
            continue
        if timings is not None and entry.utt in timings:
            row["synth_seconds"] = timings[entry.utt]
            row["rtf"] = timings[entry.utt] / row["gen_seconds"]
        rows.append(row)

    if not rows:
        utt, reason = next(iter(failed.items()))
        raise EvalError(f"none of the {len(failed)} utterances could be scored (first: {utt}: {reason})")
    summary = _summarise(rows, metrics, language, asr_model, sim_model)
    if failed:
        summary["failed"] = failed
    if "wer" in metrics:
        summary["normaliser"] = normaliser
    summary["seconds_per_utt"] = {name: scorer.seconds[name] / len(rows) for name in metrics}
    summary["model_load_seconds"] = {
        name: scorer.load_seconds[name] for name in ("wer", "sim") if name in metrics
    }
    if out_dir is not None:
        write_report(Path(out_dir), rows, summary, entries, gen_dir)
    return summary


def _check_request(
    entries: Sequence[MetaEntry],
    gen_dir: Path | None,
    metrics: Sequence[str],
    language: str,
    normaliser: str,
) -> None:
    """Refuse, before any model loads, what cannot be scored: unknown metrics, missing audio, no words."""
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise EvalError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    if gen_dir is not None and not gen_dir.is_dir():
        raise EvalError(f"generated audio folder not found: {gen_dir}")
    _check_files(entries, gen_dir)
    if "wer" in metrics:
        for entry in entries:
            if not normalize_text(entry.target_text, language, normaliser):
                raise EvalError(f"{entry.utt}: target text {entry.target_text!r} has no words to score")


class Scorer:
    """The chosen metrics of one generated utterance: models loaded once, prompt embeddings cached, and
    the seconds each metric takes (``load_seconds``, ``seconds``) kept for the summary."""

    def __init__(
        self,
        metrics: Sequence[str],
        language: str,
        asr_model: str,
        sim_model: str,
        device: str,
        asr_compute_type: str,
        normaliser: str = DEFAULT_NORMALISER,
    ):
        self.metrics, self.language, self.normaliser = metrics, language, normaliser
        self.load_seconds: dict[str, float] = {}
        started = time.perf_counter()
        self.asr = load_asr(asr_model, device, asr_compute_type) if "wer" in metrics else None
        self.load_seconds["wer"] = time.perf_counter() - started
        started = time.perf_counter()
        self.encoder = load_speaker_encoder(sim_model, device) if "sim" in metrics else None
        self.load_seconds["sim"] = time.perf_counter() - started
        self.seconds: dict[str, float] = defaultdict(float)
        self.prompt_embeddings: dict[Path, np.ndarray] = {}

    def score(self, entry: MetaEntry, wav: np.ndarray) -> dict:
        """The metric columns of one row, for ``wav`` (16 kHz) generated for ``entry``."""
        row: dict = {}
        if self.asr is not None:
            started = time.perf_counter()
            hypothesis = self.asr.transcribe(wav, self.language)
            counts = error_counts(hypothesis, entry.target_text, self.language, self.normaliser)
            self.seconds["wer"] += time.perf_counter() - started
            row.update(
                hypothesis=hypothesis,
                wer=counts.rate,
                substitutions=counts.substitutions,
                deletions=counts.deletions,
                insertions=counts.insertions,
                ref_tokens=counts.reference_length,
            )
        if self.encoder is not None:
            started = time.perf_counter()
            if entry.prompt_wav not in self.prompt_embeddings:
                self.prompt_embeddings[entry.prompt_wav] = self.encoder.embed(load_speech(entry.prompt_wav))
            row["sim"] = cosine(self.encoder.embed(wav), self.prompt_embeddings[entry.prompt_wav])
            self.seconds["sim"] += time.perf_counter() - started
        if "dnsmos" in self.metrics:
            started = time.perf_counter()
            row.update({f"dnsmos_{name}": score for name, score in dnsmos(wav).items()})
            self.seconds["dnsmos"] += time.perf_counter() - started
        return row


def _summarise(
    rows: list[dict], metrics: Sequence[str], language: str, asr_model: str, sim_model: str
) -> dict:
    summary: dict = {"n": len(rows), "language": language}
    if "wer" in metrics:
        summary["wer_unit"] = "char" if language in CHARACTER_LANGUAGES else "word"
        summary["asr_model"] = asr_model
        summary["wer"] = _mean([row["wer"] for row in rows])
        said = sum(row["ref_tokens"] for row in rows)
        substituted, deleted, inserted = (
            sum(row[key] for row in rows) for key in ("substitutions", "deletions", "insertions")
        )
        summary["wer_corpus"] = (substituted + deleted + inserted) / said
        # Words said, heard and right: on babble WER mostly counts what whisper invents (less guidance
        # "improves" it by making whisper hear less); the words that come out right track intelligibility.
        summary["ref_tokens"], summary["hyp_tokens"] = said, said - deleted + inserted
        summary["hits"] = said - deleted - substituted
    if "sim" in metrics:
        summary["sim_model"] = sim_model
        summary["sim"] = _mean([row["sim"] for row in rows])
    if "dnsmos" in metrics:
        for name in ("ovrl", "sig", "bak", "p808"):
            summary[f"dnsmos_{name}"] = _mean([row[f"dnsmos_{name}"] for row in rows])
    ratios = [row["dur_ratio"] for row in rows if "dur_ratio" in row]
    if ratios:
        summary["dur_ratio"] = _mean(ratios)
    timed = [row for row in rows if "rtf" in row]
    if timed:
        # Total synthesis time over total audio time: long utterances weigh as much as they cost.
        summary["rtf"] = sum(row["synth_seconds"] for row in timed) / sum(row["gen_seconds"] for row in timed)
        summary["rtf_utts"] = len(timed)
    return summary
