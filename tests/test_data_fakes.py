"""A stand-in token extractor for the data tests, importable cheaply by spawned extraction jobs."""

import numpy as np

from maskgct.data.extract import Rejected, Utterance


def fake_extractor(_config):
    """Phones from the characters, 'semantic' and 'acoustic' ids from 20 ms frame energies."""

    def run(item: Utterance) -> dict:
        if not item.text.strip():
            raise Rejected("empty transcript")
        wav = item.audio(16000)
        frames = wav[: len(wav) // 320 * 320].reshape(-1, 320)
        semantic = (np.abs(frames).mean(1) * 1000).astype(np.int64) % 8192
        return {
            "phone_ids": np.array([ord(c) % 1000 for c in item.text]),
            "semantic": semantic,
            "acoustic": np.repeat(semantic[:, None] % 1024, 12, axis=1),
        }

    return run
