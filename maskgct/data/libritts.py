"""LibriTTS → a Kaldi data dir.

LibriTTS stores ``<subset>/<speaker>/<chapter>/<speaker>_<chapter>_<p>_<s>.wav`` beside
``.normalized.txt`` (the text we train on) and ``.original.txt``. Utterance ids become
``<speaker>-<chapter>-<p>-<s>``: '-' sorts before digits, so sorting utterances also sorts their speakers
(with '_', speaker 1034's utterances would sort before speaker 103's).
"""

from __future__ import annotations

from pathlib import Path

from maskgct.data.datadir import DataDir, write_datadir

SUBSETS = (
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
)


def prepare_libritts(
    src: str | Path, out_dir: str | Path, subsets: list[str], normalized: bool = True
) -> DataDir:
    """Write one data dir for the union of ``subsets`` found under ``src``; return it.

    Utterances without their transcript file are skipped (LibriTTS dropped a few); an empty transcript is
    kept, so that extraction lists it as rejected with its reason.
    """
    src = Path(src)
    suffix = ".normalized.txt" if normalized else ".original.txt"
    data = DataDir({}, {}, {})
    for subset in subsets:
        if subset not in SUBSETS:
            raise ValueError(f"unknown LibriTTS subset {subset!r}; expected one of {', '.join(SUBSETS)}")
        root = src / subset
        if not root.is_dir():
            raise ValueError(f"{root} not found: download the subset or point at the folder that holds it")
        for wav in sorted(root.glob("*/*/*.wav")):
            text_file = wav.with_name(wav.stem + suffix)
            if not text_file.is_file():
                continue
            speaker = wav.parent.parent.name
            utt = wav.stem.replace("_", "-")
            if not utt.startswith(f"{speaker}-"):
                raise ValueError(f"{wav}: file name does not start with its speaker folder {speaker!r}")
            data.wav_scp[utt] = str(wav.resolve())
            data.text[utt] = " ".join(text_file.read_text(encoding="utf-8").split())
            data.utt2spk[utt] = speaker
    if not data.utt2spk:
        raise ValueError(f"no LibriTTS utterances under {src} for {','.join(subsets)}")
    write_datadir(out_dir, data)
    return data
