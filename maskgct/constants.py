"""The facts of the MaskGCT design that many modules share: sample rates, the token frame rate, the phone
vocabulary, the 30 s training window and the official duration rule.

Every rate and count here is the official release's (MASKGCT_FACTS §1-3); a module that needs one imports
it from here instead of writing the number again.
"""

from __future__ import annotations

SAMPLE_RATE = 24000  # the acoustic codec's waveform (prompt encoding and output audio)
SEMANTIC_SAMPLE_RATE = 16000  # the semantic front end's input (w2v-BERT, whisper)
FRAME_RATE = 50  # semantic and acoustic tokens per second
SEMANTIC_HOP = SEMANTIC_SAMPLE_RATE // FRAME_RATE  # 320 samples of 16 kHz audio per token
ACOUSTIC_HOP = SAMPLE_RATE // FRAME_RATE  # 480 samples of 24 kHz audio per token

# The phone vocabulary of the release: ids 0..1022 are phones, 1023 pads a batch.
PHONE_VOCAB_SIZE = 1024
PHONE_PAD_ID = 1023

# The models were trained on prompt + target of at most 30 s.
MAX_SECONDS = 30.0
# The limits of one synthesis request (README "Errors and limits"), each refused with a message saying so:
# the text (OpenAI's limit for one speech request), the chunks a long text is cut into (each a full pass of
# the models) and the output's planned duration (an explicit --duration included).
MAX_TEXT_CHARS = 4096
MAX_CHUNKS = 100
MAX_OUTPUT_SECONDS = 600.0
# Audio whose peak is below this (-80 dBFS) carries no voice: not a prompt, not training data.
SILENCE_PEAK = 1e-4


def rule_frames(prompt_samples: int, n_prompt_phones: int, n_target_phones: int) -> float:
    """The official duration rule: target frames for ``n_target_phones`` after a prompt of
    ``prompt_samples`` of 16 kHz audio and ``n_prompt_phones`` phones, not yet rounded.

    The reference's ``len(wav_16k) * n_target / n_prompt / 16000 * 50``, evaluated in float64 left to right
    as it is: the operation order decides the rounding, and the frame count is ``int`` of it.
    """
    return prompt_samples * n_target_phones / n_prompt_phones / SEMANTIC_SAMPLE_RATE * FRAME_RATE
