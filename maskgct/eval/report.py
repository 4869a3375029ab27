"""Report files of an evaluation: per-utterance CSV, markdown and JSON summaries, and a PNG to look at."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from maskgct.eval.audio import SAMPLE_RATE, load_speech
from maskgct.eval.meta import MetaEntry, generated_path

COLUMNS = (
    "utt",
    "wer",
    "sim",
    "dnsmos_ovrl",
    "dnsmos_sig",
    "dnsmos_bak",
    "dnsmos_p808",
    "gen_seconds",
    "gt_seconds",
    "dur_ratio",
    "synth_seconds",
    "rtf",
    "substitutions",
    "deletions",
    "insertions",
    "ref_tokens",
    "target_text",
    "hypothesis",
)
# Histogram panels: (row key, axis label).
DISTRIBUTIONS = (
    ("wer", "WER per utterance"),
    ("sim", "speaker similarity"),
    ("dnsmos_ovrl", "DNSMOS overall"),
    ("dur_ratio", "duration generated / ground truth"),
    ("rtf", "real-time factor"),
)
SPECTROGRAMS = 3


def write_report(
    out_dir: Path, rows: list[dict], summary: dict, entries: Sequence[MetaEntry], gen_dir: Path | None
) -> None:
    """Write ``results.csv``, ``summary.md``, ``summary.json`` and ``report.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / "results.csv", rows)
    (out_dir / "summary.md").write_text(markdown_summary(summary, rows), encoding="utf-8")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    plot_report(out_dir / "report.png", rows, summary, entries, gen_dir)


def write_csv(path: Path, rows: list[dict]) -> None:
    columns = [column for column in COLUMNS if any(column in row for row in rows)]
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {key: f"{value:.4f}" if isinstance(value, float) else value for key, value in row.items()}
            )


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_summary(summary: dict, rows: list[dict]) -> str:
    """A table of the metrics (value, seconds per utterance) and the utterances the ASR got most wrong."""
    per_utt = summary.get("seconds_per_utt", {})
    unit = "CER" if summary.get("wer_unit") == "char" else "WER"
    lines = [
        "# Evaluation report",
        "",
        f"{summary['n']} utterances, language `{summary['language']}`"
        + (f", ASR `{summary['asr_model']}`" if "asr_model" in summary else "")
        + (f", speaker encoder `{summary['sim_model']}`" if "sim_model" in summary else "")
        + ".",
        "",
        "| metric | value | seconds per utterance |",
        "|---|---:|---:|",
    ]

    def add(name: str, key: str, timing_key: str | None = None) -> None:
        if key in summary:
            timing = f"{per_utt[timing_key]:.3f}" if timing_key in per_utt else ""
            lines.append(f"| {name} | {summary[key]:.4f} | {timing} |")

    add(f"{unit} (mean of utterances)", "wer", "wer")
    add(f"{unit} (corpus)", "wer_corpus")
    add("SIM (cosine to prompt)", "sim", "sim")
    add("DNSMOS OVRL", "dnsmos_ovrl", "dnsmos")
    add("DNSMOS SIG", "dnsmos_sig")
    add("DNSMOS BAK", "dnsmos_bak")
    add("DNSMOS P.808", "dnsmos_p808")
    add("duration ratio (generated / ground truth)", "dur_ratio")
    add(f"RTF ({summary.get('rtf_utts', 0)} timed utterances)", "rtf")
    if "wer" in summary:
        worst = sorted(rows, key=lambda row: -row["wer"])[:5]
        lines += ["", f"## Highest {unit}", "", f"| utt | {unit} | target | heard |", "|---|---:|---|---|"]
        lines += [
            f"| {row['utt']} | {row['wer']:.3f} | {_cell(row['target_text'])} | {_cell(row['hypothesis'])} |"
            for row in worst
        ]
    failed = summary.get("failed", {})
    if failed:
        lines += ["", f"## Not scored ({len(failed)})", "", "| utt | reason |", "|---|---|"]
        lines += [f"| {utt} | {_cell(reason)} |" for utt, reason in failed.items()]
    return "\n".join(lines) + "\n"


def _shorten(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _spectrogram(ax, wav: np.ndarray, title: str) -> None:
    import librosa

    mel = librosa.feature.melspectrogram(y=wav, sr=SAMPLE_RATE, n_fft=1024, hop_length=256, n_mels=80)
    db = librosa.power_to_db(mel, ref=np.max, top_db=80)
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", extent=(0, len(wav) / SAMPLE_RATE, 0, 80))
    ax.set_title(title, fontsize=8, loc="left")
    ax.set_xlabel("seconds", fontsize=8)
    ax.set_ylabel("mel bin", fontsize=8)
    ax.tick_params(labelsize=7)


def plot_report(
    path: Path, rows: list[dict], summary: dict, entries: Sequence[MetaEntry], gen_dir: Path | None
) -> None:
    """Histograms of the per-utterance metrics, then prompt/generated mel spectrograms of the worst lines."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = [(key, label) for key, label in DISTRIBUTIONS if any(key in row for row in rows)]
    chosen = sorted(rows, key=lambda row: -row.get("wer", 0.0))[:SPECTROGRAMS]
    by_utt = {entry.utt: entry for entry in entries}

    figure = Figure(figsize=(14, 3.4 + 2.6 * len(chosen)), layout="constrained")
    top, bottom = figure.subfigures(2, 1, height_ratios=[3.4, 2.6 * max(len(chosen), 1)])
    top.suptitle(
        f"{summary['n']} utterances  ·  "
        + "  ·  ".join(
            f"{key} {summary[key]:.3f}"
            for key in ("wer", "sim", "dnsmos_ovrl", "dur_ratio", "rtf")
            if key in summary
        ),
        fontsize=11,
    )
    for ax, (key, label) in zip(top.subplots(1, max(len(panels), 1), squeeze=False)[0], panels, strict=False):
        values = np.array([row[key] for row in rows if key in row], dtype=float)
        ax.hist(values, bins=min(20, max(5, int(math.sqrt(len(values))) * 2)), color="tab:blue", alpha=0.8)
        ax.axvline(values.mean(), color="tab:red", linestyle="--", label=f"mean {values.mean():.3f}")
        ax.set_xlabel(label, fontsize=9)
        ax.set_ylabel("utterances", fontsize=9)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    axes = bottom.subplots(len(chosen), 2, squeeze=False)
    for (prompt_ax, gen_ax), row in zip(axes, chosen, strict=True):
        entry = by_utt[row["utt"]]
        scores = "  ".join(f"{key} {row[key]:.3f}" for key in ("wer", "sim", "dnsmos_ovrl") if key in row)
        _spectrogram(
            prompt_ax, load_speech(entry.prompt_wav), f"prompt of {entry.utt}: {_shorten(entry.prompt_text)}"
        )
        heard = f"\nheard:  {_shorten(row['hypothesis'])}" if "hypothesis" in row else ""
        _spectrogram(
            gen_ax,
            load_speech(generated_path(entry, gen_dir)),
            f"generated {entry.utt} ({scores})\ntarget: {_shorten(entry.target_text)}{heard}",
        )
    figure.savefig(path, dpi=90)
