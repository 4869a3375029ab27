"""``python -m maskgct.data align``: each phone's frame added to an extracted dump, shard by shard."""

import numpy as np
import soundfile as sf

from maskgct.data.__main__ import main
from maskgct.data.datadir import DataDir, write_datadir
from maskgct.data.shards import PHONE_FRAMES, ShardWriter, TokenDump, add_field, read_index
from maskgct.data.synth import ESPEAK_VOICES, EspeakSynth
from maskgct.text import ids_to_symbols, text_to_ids

SENTENCES = {
    "spk0-000": "the old man gave his daughter a horse",
    "spk0-001": "please call stella and ask her to bring these things",
    "spk0-002": "a sentence far too long for the tenth of a second it is given",  # cannot be aligned
}


def _corpus(root):
    """A data dir of espeak recordings and a dump of their phones (semantic: zeros, 50 Hz) in two shards."""
    synth, data = EspeakSynth(), DataDir({}, {}, {})
    writer = ShardWriter(root / "dump", "job000", shard_bytes=1)  # one utterance per shard
    for utt, text in SENTENCES.items():
        wav, rate = synth(ESPEAK_VOICES[0], text)
        if utt.endswith("2"):
            wav = wav[: rate // 10]
        path = root / "wavs" / f"{utt}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, wav, rate)
        data.wav_scp[utt], data.text[utt], data.utt2spk[utt] = str(path), text, "spk0"
        writer.add(utt, "spk0", {"phone_ids": text_to_ids(text), "semantic": np.zeros(len(wav) * 50 // rate)})
    writer.flush()
    write_datadir(root / "data", data)
    return root / "dump", root / "data"


def test_align_adds_each_phones_frame_and_resumes(tmp_path, capsys):
    dump, data = _corpus(tmp_path)
    before = TokenDump(dump, ("phone_ids", "semantic"))
    assert main(["align", str(dump), str(data)]) == 0
    assert "2 utterances aligned, 1 not (0 shards were already)" in capsys.readouterr().out
    aligned = TokenDump(dump, ("phone_ids", "semantic", PHONE_FRAMES))
    for i, utt in enumerate(SENTENCES):
        item = aligned[i]
        assert item["utt"] == utt and np.array_equal(item["phone_ids"], before[i]["phone_ids"])
        frames = item[PHONE_FRAMES]
        assert frames.shape == item["phone_ids"].shape
        if utt.endswith("2"):
            assert (frames == -1).all()
            continue
        assert (np.diff(frames) >= 0).all() and 0 <= frames[0] < 20 and frames[-1] < len(item["semantic"])
        assert frames[-1] > 0.7 * len(item["semantic"])  # the phones span the recording
        # One frame per phone of the dump, word boundaries ("_") included.
        phones = ids_to_symbols(item["phone_ids"].tolist())
        assert len(phones) == len(frames) and phones.count("_") == len(SENTENCES[utt].split()) - 1
    # A rerun does nothing more.
    assert main(["align", str(dump), str(data)]) == 0
    assert "0 utterances aligned, 0 not (3 shards were already)" in capsys.readouterr().out


def test_a_kill_between_shard_and_index_loses_nothing(tmp_path):
    dump, _ = _corpus(tmp_path)
    name, rows = read_index(dump)[0]
    old_index = (dump / f"{name}.jsonl").read_text()
    before = TokenDump(dump, ("phone_ids", "semantic"))[0]
    add_field(dump, name, rows, PHONE_FRAMES, [np.arange(len(before["phone_ids"]))])
    (dump / f"{name}.jsonl").write_text(old_index)  # as if killed before the index was replaced
    after = TokenDump(dump, ("phone_ids", "semantic"))[0]
    assert all(np.array_equal(before[f], after[f]) for f in ("phone_ids", "semantic"))


def test_align_errors(tmp_path, capsys):
    dump, data = _corpus(tmp_path)
    assert main(["align", str(tmp_path / "nowhere"), str(data)]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    (data / "text").write_text("spk0-000 a\n")
    (data / "utt2spk").write_text("spk0-000 spk0\n")
    (data / "wav.scp").write_text(f"spk0-000 {tmp_path / 'wavs' / 'spk0-000.wav'}\n")
    (data / "spk2utt").write_text("spk0 spk0-000\n")
    assert main(["align", str(dump), str(data)]) == 2
    assert "spk0-001 is not in" in capsys.readouterr().err
