"""A prompt as a user gives it → audio and phones the models can use.

Two things users trip on are handled here instead of refused:

* A recording longer than ``MAX_PROMPT_SECONDS`` is trimmed at a pause in the second half of the allowed
  length. The models saw prompts of at most 40 % of a 30 s utterance in training (MASKGCT_FACTS §4.6),
  and a long prompt leaves little of the 30 s window for the output. With an English transcript the
  forced aligner (``maskgct.align``) finds its words, the cut goes in the last pause between two of them
  and the transcript is cut with it. Otherwise the cut goes in the quietest 0.2 s (the latest of equally
  quiet ones, to keep the most voice), and the kept part is transcribed.
* A missing transcript is made offline by whisper tiny.en, the evaluator's ASR (``maskgct.eval.asr``),
  imported only then. An explicit transcript stays the better path: whisper's tiny model mishears words,
  and every misheard phone misleads T2S.

Each change is described in ``PreparedPrompt.notes``, for the command line and the server to pass on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from maskgct.constants import ACOUSTIC_HOP, FRAME_RATE, SEMANTIC_HOP, SEMANTIC_SAMPLE_RATE
from maskgct.request import InputError, load_prompt, phones_of

MAX_PROMPT_SECONDS = 15.0
# A cut is scored by the mean energy of this many 20 ms frames around it: wide enough to be a pause
# between words, not a stop closure inside one.
PAUSE_FRAMES = 10
ASR_NAME = "whisper tiny.en"


@dataclass
class PreparedPrompt:
    """wav16 / wav24: mono float32 (L16,) / (L24,) at 16 / 24 kHz, cut at the same instant when trimmed;
    phone_ids: the transcript's phones; transcript: the text they came from (None for phone ids given);
    notes: what was done to the prompt, one sentence each."""

    wav16: np.ndarray
    wav24: np.ndarray
    phone_ids: list[int]
    transcript: str | None
    notes: list[str] = field(default_factory=list)


def prepare_prompt(
    prompt,
    prompt_text: str | None,
    prompt_phone_ids: Sequence[int] | None,
    language: str,
    sample_rate: int | None,
) -> PreparedPrompt:
    """Load the prompt (a file, or an array at ``sample_rate``), trim it if too long, transcribe it if no
    transcript (``prompt_text`` or ``prompt_phone_ids``) is given."""
    given = prompt_text is not None or prompt_phone_ids is not None
    # A bad transcript is refused before any audio is read.
    phone_ids = phones_of(prompt_text, prompt_phone_ids, language, "prompt") if given else None
    wav16, wav24 = load_prompt(prompt, sample_rate)
    notes = []
    seconds = len(wav16) / SEMANTIC_SAMPLE_RATE
    if seconds > MAX_PROMPT_SECONDS:
        cut = word_cut(wav16, prompt_text, language) if prompt_text is not None else None
        frames = cut[0] if cut else pause_cut(wav16, MAX_PROMPT_SECONDS)
        wav16, wav24 = wav16[: frames * SEMANTIC_HOP], wav24[: frames * ACOUSTIC_HOP]
        notes.append(
            f"the prompt is {seconds:.1f} s, longer than {MAX_PROMPT_SECONDS:g} s: trimmed at a pause to "
            f"{len(wav16) / SEMANTIC_SAMPLE_RATE:.1f} s"
        )
        if cut:
            prompt_text = cut[1]
            phone_ids = phones_of(prompt_text, None, language, "prompt")
            notes.append(f"its transcript was cut at the same word gap: {prompt_text!r}")
        elif given:
            notes.append(
                "its transcript could not be aligned with the recording to cut it there, so the kept part "
                "was transcribed"
            )
            prompt_text, phone_ids = None, None
    if phone_ids is None:
        prompt_text = transcribe(wav16, language)
        phone_ids = phones_of(prompt_text, None, language, "prompt")
        if not given:
            notes.append(
                f"no prompt text given: {ASR_NAME} heard {prompt_text!r} (a transcript you give is better)"
            )
    return PreparedPrompt(wav16, wav24, phone_ids, prompt_text, notes)


def word_cut(wav16: np.ndarray, transcript: str, language: str) -> tuple[int, str] | None:
    """Where to cut a recording longer than ``MAX_PROMPT_SECONDS`` that ``transcript`` describes: the frame
    (20 ms) in the middle of the last pause of 0.2 s or more between two words (else the widest gap) in the
    second half of the allowed length, and the words before it. None where the aligner cannot tell
    (another language, no gap there, or a transcript that does not match the audio)."""
    from maskgct.align import MATCH_THRESHOLD, AlignmentError, align_words

    try:
        alignment = align_words(wav16, SEMANTIC_SAMPLE_RATE, transcript, language)
    except AlignmentError:
        return None
    if alignment.score < MATCH_THRESHOLD:
        return None
    words = alignment.words
    gaps = [
        (after.start_s - before.end_s, i, round((before.end_s + after.start_s) / 2 * FRAME_RATE))
        for i, (before, after) in enumerate(zip(words[:-1], words[1:], strict=True))
    ]
    limit = MAX_PROMPT_SECONDS * FRAME_RATE
    fitting = [gap for gap in gaps if limit / 2 <= gap[2] <= limit]
    if not fitting:
        return None
    pauses = [gap for gap in fitting if gap[0] >= PAUSE_FRAMES / FRAME_RATE]
    # The latest pause keeps the most voice; words that all run together meet at the widest gap.
    _, i, frame = max(pauses, key=lambda gap: gap[1]) if pauses else max(fitting)
    return frame, " ".join(transcript.split()[: words[i].index + 1])


def pause_cut(wav16: np.ndarray, max_seconds: float) -> int:
    """Where to cut a recording that is longer than ``max_seconds``: a frame boundary (20 ms frames of
    16 kHz audio) in its quietest 0.2 s between half of ``max_seconds`` and ``max_seconds``."""
    limit = int(max_seconds * SEMANTIC_SAMPLE_RATE) // SEMANTIC_HOP
    frames = len(wav16) // SEMANTIC_HOP
    energy = np.square(wav16[: frames * SEMANTIC_HOP].astype(np.float64)).reshape(frames, SEMANTIC_HOP)
    energy = energy.mean(axis=1)
    # score[i]: mean energy of frames [i - 5, i + 5), the pause a cut at boundary i falls in.
    half = PAUSE_FRAMES // 2
    sums = np.concatenate([[0.0], np.cumsum(np.pad(energy, half, mode="edge"))])
    score = sums[PAUSE_FRAMES:] - sums[:-PAUSE_FRAMES]  # boundaries 0..frames
    window = score[limit // 2 : limit + 1]
    return limit - int(np.argmin(window[::-1]))  # the latest of the quietest


def transcribe(wav16: np.ndarray, language: str) -> str:
    """The prompt's words as whisper tiny.en hears them; an ``InputError`` where it cannot help."""
    if language != "en":
        raise InputError(
            f"the prompt text is missing and {ASR_NAME} only transcribes English: give the transcript "
            f"of the {language!r} prompt"
        )
    from maskgct.eval.asr import load_asr  # whisper loads only when a transcript is missing

    text = load_asr().transcribe(wav16, language)
    if not any(ch.isalnum() for ch in text):
        raise InputError(f"{ASR_NAME} heard no words in the prompt: give the transcript of the prompt audio")
    return text
