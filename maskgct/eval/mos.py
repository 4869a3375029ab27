"""DNSMOS P.835 (speech, background, overall) and P.808 quality scores, from the speechmos wheel."""

from __future__ import annotations

import numpy as np

from maskgct.eval.audio import SAMPLE_RATE


def dnsmos(wav16k: np.ndarray) -> dict[str, float]:
    """Float(L,) at 16 kHz → ``{"ovrl", "sig", "bak", "p808"}`` mean opinion scores (1-5).

    Clips shorter than DNSMOS's 9 s window are repeated to fill it, as the official script does.
    """
    from speechmos import dnsmos as speechmos_dnsmos

    # speechmos refuses samples outside [-1, 1]; generated audio can overshoot slightly.
    scores = speechmos_dnsmos.run(np.clip(wav16k, -1.0, 1.0), SAMPLE_RATE)
    return {
        "ovrl": float(scores["ovrl_mos"]),
        "sig": float(scores["sig_mos"]),
        "bak": float(scores["bak_mos"]),
        "p808": float(scores["p808_mos"]),
    }
