"""Evaluation: WER/CER, speaker similarity, DNSMOS, duration ratio and RTF, offline by default.

``python -m maskgct.eval --meta meta.lst --gen-dir DIR --out REPORT_DIR`` or, from Python,
``evaluate(meta_path, gen_dir, out_dir)``; single measurements with ``wer(wav, text)`` and
``speaker_similarity(wav_a, wav_b)``. The heavy libraries load only when a metric needs them.
"""

from maskgct.eval.asr import WhisperASR, wer
from maskgct.eval.meta import MetaEntry, MetaError, meta_from_datadir, read_meta, write_meta
from maskgct.eval.runner import METRICS, EvalError, evaluate
from maskgct.eval.speaker import speaker_similarity
from maskgct.eval.wer import NORMALISERS, error_counts, normalize_text

__all__ = [
    "METRICS",
    "EvalError",
    "MetaEntry",
    "MetaError",
    "NORMALISERS",
    "WhisperASR",
    "error_counts",
    "evaluate",
    "meta_from_datadir",
    "normalize_text",
    "read_meta",
    "speaker_similarity",
    "wer",
    "write_meta",
]
