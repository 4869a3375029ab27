"""Speech editing quality on held-out voices: word error of the new words, speaker similarity, preservation.

For ``--count`` held-out utterances (taken in turn from each speaker of ``--data-dir``), one or two words of
the transcript are replaced with other words (deterministic: the content word nearest the middle, and for
every second utterance the word after it too, from a fixed word list) and ``maskgct.edit.edit_speech`` makes
the recording say the new text. Per edit and on average it reports

* region WER: whisper on the output cut around the generated span(s), with ``--context-words`` whole words
  either side (their times from the plan's alignment), against the words said there (context + new words);
  anchor: the same region of the original against the old words. A one-to-three-word clip is hard for
  whisper tiny.en (it hallucinates on short clips), so the anchor is what to read the figure against,
* heard: the fraction of the new words found in the region's transcript (anchor: the old words in the
  original's),
* whole WER: whisper on the edited utterance against the new transcript; anchor: the original against its
  transcript,
* region SIM: speaker similarity (resemblyzer, as ``maskgct.eval``) of the generated frames alone to the
  whole original; anchor: the replaced stretch of the original (old words) to the whole original,
* preserved max|Δ|: the largest sample difference between output and original outside the spans and their
  20 ms crossfades (0 when the rest of the recording is kept exactly),

and writes before/after spectrograms of the first two edits, the edited wavs, ``results.json`` and
``report.md`` into ``--out``.

    OMP_NUM_THREADS=1 .venv/bin/python bench/edit.py [--checkpoint checkpoints/default] \
        [--data-dir egs/synth/tts1/data/test] [--count 6] [--out /tmp/bench_edit]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from maskgct.api import MaskGCT
from maskgct.audio import load_audio
from maskgct.constants import ACOUSTIC_HOP, FRAME_RATE, SAMPLE_RATE
from maskgct.data.datadir import read_datadir
from maskgct.edit import edit_speech
from maskgct.edit_plan import word_times, words_of
from maskgct.eval.asr import load_asr
from maskgct.eval.audio import load_speech
from maskgct.eval.speaker import cosine, load_speaker_encoder
from maskgct.eval.wer import error_counts, normalize_text
from maskgct.request import InputError

# Seconds of audio kept around each transcribed region (so no word is cut at its very edge).
PAD_SECONDS = 0.05
# Replacement words, taken in turn (skipping any already in the sentence): common, easy to hear.
NEW_WORDS = [
    "garden",
    "yellow",
    "window",
    "morning",
    "silver",
    "basket",
    "doctor",
    "river",
    "pocket",
    "market",
    "orange",
    "winter",
]


def core(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


def make_edit(text: str, index: int) -> str:
    """The transcript with the content word nearest its middle (and, for odd ``index``, the word after it)
    replaced by words of ``NEW_WORDS``; punctuation and a leading capital kept."""
    tokens = text.split()
    candidates = [i for i, t in enumerate(tokens) if len(core(t)) >= 4 and core(t).isalpha()] or [
        i for i, t in enumerate(tokens) if core(t)
    ]
    middle = (len(tokens) - 1) / 2
    first = min(candidates, key=lambda i: (abs(i - middle), i))
    positions = [first]
    if index % 2 == 1 and first + 1 < len(tokens) and core(tokens[first + 1]).isalpha():
        positions.append(first + 1)
    used = {core(t) for t in tokens}
    pool = [w for w in NEW_WORDS[index % len(NEW_WORDS) :] + NEW_WORDS if w not in used]
    for position, word in zip(positions, pool, strict=False):
        old = tokens[position]
        lead, trail = re.match(r"^(\W*)", old).group(1), re.search(r"(\W*)$", old).group(1)
        new = word.capitalize() if core(old)[:1] != old.lstrip("\"'(")[:1] else word
        tokens[position] = lead + new + trail
    return " ".join(tokens)


def pick_utterances(data, count: int) -> list[str]:
    """``count`` utterances, one from each speaker in turn (each speaker's in id order)."""
    per_speaker = list(data.spk2utt.values())
    chosen, round_ = [], 0
    while len(chosen) < count and round_ < max(len(u) for u in per_speaker):
        chosen += [utts[round_] for utts in per_speaker if round_ < len(utts)]
        round_ += 1
    return chosen[:count]


def output_spans(spans) -> list[tuple[int, int]]:
    """``[(start, end)]`` frames of each generated span in the edited recording."""
    out, offset = [], 0
    for span in spans:
        start = span.start_frame + offset
        out.append((start, start + span.new_frames))
        offset += span.new_frames - (span.end_frame - span.start_frame)
    return out


def preservation(original: np.ndarray, edited: np.ndarray, spans) -> float:
    """Max |edited - original| over the samples outside every span and its crossfade frame on each side
    (``maskgct.edit.splice``: one 20 ms crossfade before and after each span); inf if the kept lengths
    disagree."""
    worst, previous_out, previous_in = 0.0, 0, 0
    bounds = output_spans(spans) + [None]
    for span, placed in zip(list(spans) + [None], bounds, strict=True):
        if placed is None:
            kept_out, kept_in = edited[previous_out * ACOUSTIC_HOP :], original[previous_in * ACOUSTIC_HOP :]
        else:
            stop_out, stop_in = placed[0] - 1, span.start_frame - 1
            kept_out = edited[previous_out * ACOUSTIC_HOP : stop_out * ACOUSTIC_HOP]
            kept_in = original[previous_in * ACOUSTIC_HOP : stop_in * ACOUSTIC_HOP]
        if len(kept_out) != len(kept_in):
            return float("inf")
        if len(kept_out):
            worst = max(worst, float(np.abs(kept_out - kept_in).max()))
        if placed is not None:
            previous_out, previous_in = placed[1] + 1, span.end_frame + 1
    return worst


def regions(spans, placed, times, old: list[str], context_words: int, after: bool):
    """Per span, ``(start_s, end_s, reference words)`` of the region to transcribe: the span (in the edited
    recording if ``after``, else in the original) with ``context_words`` whole words on each side (their
    times from the transcript's alignment, shifted by the edits before them), padded by ``PAD_SECONDS``."""
    out = []
    for span, (a, b) in zip(spans, placed, strict=True):
        if not after:
            a, b = span.start_frame, span.end_frame
        shift_before = (a - span.start_frame) / FRAME_RATE
        shift_after = (b - span.end_frame) / FRAME_RATE
        i1, i2 = span.old_range
        left = list(range(max(0, i1 - context_words), i1))
        right = list(range(i2, min(len(old), i2 + context_words)))
        start = min([a / FRAME_RATE] + [times[i][0] + shift_before for i in left])
        end = max([b / FRAME_RATE] + [times[i][1] + shift_after for i in right])
        middle = span.new_words if after else span.old_words
        words = [old[i] for i in left] + list(middle) + [old[i] for i in right]
        out.append((start - PAD_SECONDS, end + PAD_SECONDS, words))
    return out


def cut(wav24: np.ndarray, pieces) -> np.ndarray:
    """The audio of the regions, one after another."""
    clips = []
    for start, end, _ in pieces:
        a, b = max(0, round(start * SAMPLE_RATE)), min(len(wav24), round(end * SAMPLE_RATE))
        clips.append(wav24[a:b])
    return np.concatenate(clips)


def heard(hypothesis: str, words: list[str]) -> float:
    """The fraction of ``words`` that occur in the hypothesis (normalised as for WER)."""
    said = set(normalize_text(hypothesis))
    wanted = normalize_text(" ".join(words))
    return sum(w in said for w in wanted) / len(wanted)


def spectrogram(wav24: np.ndarray) -> np.ndarray:
    window = torch.hann_window(1024)
    spec = torch.stft(torch.from_numpy(wav24), 1024, 256, window=window, return_complex=True).abs()
    return (20 * torch.log10(spec + 1e-5)).numpy()


def plot_edit(path: Path, original, edited, old_spans, new_spans, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 1, figsize=(11, 6), sharex=True, constrained_layout=True)
    for axis, wav, spans, name in (
        (axes[0], original, old_spans, "before"),
        (axes[1], edited, new_spans, "after"),
    ):
        seconds = len(wav) / SAMPLE_RATE
        axis.imshow(
            spectrogram(wav),
            origin="lower",
            aspect="auto",
            extent=(0, seconds, 0, SAMPLE_RATE / 2000),
            vmin=-60,
            vmax=40,
            cmap="magma",
        )
        for a, b in spans:
            axis.axvline(a / FRAME_RATE, color="cyan", linewidth=1)
            axis.axvline(b / FRAME_RATE, color="cyan", linewidth=1, linestyle="--")
        axis.set_ylabel("kHz")
        axis.set_title(name, loc="left", fontsize=9)
    axes[1].set_xlim(0, max(len(original), len(edited)) / SAMPLE_RATE)
    axes[1].set_xlabel("seconds (cyan: the edited span, start solid / end dashed)")
    figure.suptitle(title, fontsize=9)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def mean(values) -> float:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default="checkpoints/default")
    parser.add_argument("--data-dir", default="egs/synth/tts1/data/test")
    parser.add_argument("--count", type=int, default=6, help="edits (utterances)")
    parser.add_argument("--out", default="/tmp/bench_edit")
    parser.add_argument(
        "--context-words", type=int, default=1, help="whole words either side of the transcribed region"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", default="reference", choices=["reference", "fast"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--plots", type=int, default=2, help="edits to draw spectrograms of")
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be >= 1")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    data = read_datadir(args.data_dir)
    started = time.perf_counter()
    model = MaskGCT.from_pretrained(args.checkpoint, args.device)
    asr, encoder = load_asr(), load_speaker_encoder()
    print(f"models loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    def transcribe(wav24: np.ndarray) -> str:
        return asr.transcribe(load_speech(wav24, SAMPLE_RATE))

    def embed(wav24: np.ndarray) -> np.ndarray:
        return encoder.embed(load_speech(wav24, SAMPLE_RATE))

    rows = []
    for index, utt in enumerate(pick_utterances(data, args.count)):
        path, text = data.audio_path(utt), data.text[utt]
        new_text = make_edit(text, index)
        row = {"utt": utt, "text": text, "new_text": new_text}
        started = time.perf_counter()
        try:
            result = edit_speech(model, str(path), text, new_text, seed=args.seed + index, mode=args.mode)
        except InputError as error:
            row["error"] = str(error)
            print(f"{utt}: not edited: {error}", file=sys.stderr)
            rows.append(row)
            continue
        row["edit_seconds"] = time.perf_counter() - started
        original, edited = load_audio(path, SAMPLE_RATE), result.audio
        sf.write(out / f"{utt}.edited.wav", edited, SAMPLE_RATE)
        placed = output_spans(result.spans)
        old_spans = [(s.start_frame, s.end_frame) for s in result.spans]
        new_words = " ".join(w for s in result.spans for w in s.new_words)
        old_words = " ".join(w for s in result.spans for w in s.old_words)
        old = words_of(text)
        times = word_times(old, result.alignment)
        after = regions(result.spans, placed, times, old, args.context_words, True)
        before = regions(result.spans, placed, times, old, args.context_words, False)
        region, region_before = cut(edited, after), cut(original, before)
        region_ref = " ".join(w for piece in after for w in piece[2])
        region_anchor_ref = " ".join(w for piece in before for w in piece[2])
        row.update(
            spans=[
                {
                    "old_words": s.old_words,
                    "new_words": s.new_words,
                    "old_s": [s.start_s, s.end_s],
                    "new_s": [a / FRAME_RATE, b / FRAME_RATE],
                }
                for s, (a, b) in zip(result.spans, placed, strict=True)
            ],
            region_ref=region_ref,
            region_anchor_ref=region_anchor_ref,
            region_hyp=transcribe(region),
            region_anchor_hyp=transcribe(region_before),
            whole_hyp=transcribe(edited),
            anchor_hyp=transcribe(original),
        )
        row["region_wer"] = error_counts(row["region_hyp"], region_ref).rate
        row["region_anchor_wer"] = error_counts(row["region_anchor_hyp"], region_anchor_ref).rate
        row["new_heard"] = heard(row["region_hyp"], new_words.split())
        row["old_heard"] = heard(row["region_anchor_hyp"], old_words.split())
        row["whole_wer"] = error_counts(row["whole_hyp"], new_text).rate
        row["anchor_wer"] = error_counts(row["anchor_hyp"], text).rate
        whole = embed(original)
        # Similarity of the generated frames alone (no context words: those are the original's audio).
        generated = cut(edited, [(a / FRAME_RATE, b / FRAME_RATE, None) for a, b in placed])
        replaced = cut(original, [(s.start_s, s.end_s, None) for s in result.spans])
        row["region_sim"] = cosine(embed(generated), whole)
        row["region_anchor_sim"] = cosine(embed(replaced), whole)
        row["preserved_max_abs"] = preservation(original, edited, result.spans)
        if index < args.plots:
            png = out / f"{utt}.spectrogram.png"
            title = f"{utt}: {old_words!r} -> {new_words!r} ({args.checkpoint})"
            plot_edit(png, original, edited, old_spans, placed, title)
            row["spectrogram"] = str(png)
        rows.append(row)
        print(
            f"{utt}: {old_words!r} -> {new_words!r}: region WER {row['region_wer']:.2f} "
            f"(heard {row['region_hyp']!r}), {row['edit_seconds']:.1f} s",
            file=sys.stderr,
        )

    report = render(rows, args)
    print(report)
    (out / "report.md").write_text(report + "\n")
    (out / "results.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1) + "\n")
    return 0 if any("error" not in r for r in rows) else 1


def render(rows: list[dict], args) -> str:
    done = [r for r in rows if "error" not in r]
    lines = [
        f"# Speech editing: {args.checkpoint} on {args.data_dir} ({len(done)} of {len(rows)} edited)",
        "",
        f"Region: the edited span with {args.context_words} whole word(s) either side, transcribed and "
        "scored against those words; anchor: the same region of the original with the old words. Heard: the "
        "fraction of the new (anchor: old) words in the region's transcript. SIM: the generated span alone "
        "(anchor: the replaced span of the original) vs the whole original. Preserved: max |Δ| outside the "
        "spans and their crossfades.",
        "",
        "| utt | edit (old → new) | region WER | anchor | heard | anchor | whole WER | anchor "
        "| region SIM | anchor | preserved max abs | region transcript |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['utt']} | not edited: {r['error']} |" + " |" * 10)
            continue
        old = " ".join(w for s in r["spans"] for w in s["old_words"])
        new = " ".join(w for s in r["spans"] for w in s["new_words"])
        lines.append(
            f"| {r['utt']} | {old} → {new} | {r['region_wer']:.2f} | {r['region_anchor_wer']:.2f} "
            f"| {r['new_heard']:.2f} | {r['old_heard']:.2f} "
            f"| {r['whole_wer']:.2f} | {r['anchor_wer']:.2f} | {r['region_sim']:.3f} "
            f"| {r['region_anchor_sim']:.3f} | {r['preserved_max_abs']:.3g} "
            f"| {r['region_hyp']!r} (said: {r['region_ref']!r}) |"
        )
    keys = ["region_wer", "region_anchor_wer", "new_heard", "old_heard", "whole_wer", "anchor_wer"]
    keys += ["region_sim", "region_anchor_sim"]
    means = {k: mean(r[k] for r in done) for k in keys}
    worst = max((r["preserved_max_abs"] for r in done), default=float("nan"))
    lines.append(
        f"| **mean** | | {means['region_wer']:.2f} | {means['region_anchor_wer']:.2f} "
        f"| {means['new_heard']:.2f} | {means['old_heard']:.2f} "
        f"| {means['whole_wer']:.2f} | {means['anchor_wer']:.2f} | {means['region_sim']:.3f} "
        f"| {means['region_anchor_sim']:.3f} | {worst:.3g} (max) | |"
    )
    plots = [r["spectrogram"] for r in done if "spectrogram" in r]
    if plots:
        lines += ["", "Spectrograms (before / after): " + ", ".join(plots)]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
