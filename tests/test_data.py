"""Data layer: data dirs, validation, sharded token dumps, extraction (rejects, resume, jobs), batches."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from test_data_fakes import fake_extractor

from maskgct.data.datadir import DataDir, DataDirError, read_datadir, validate_datadir, write_datadir
from maskgct.data.datamodule import (
    AudioDataModule,
    FrameBatchSampler,
    TokenDataModule,
    TokenDataset,
    collate_tokens,
)
from maskgct.data.extract import TokenExtractorConfig, extract
from maskgct.data.shards import DumpError, ShardWriter, TokenDump

REPO = Path(__file__).resolve().parents[1]


def make_datadir(root: Path, n_spk: int = 2, n_utt: int = 3, seconds: float = 0.6, rate: int = 16000) -> Path:
    data = DataDir({}, {}, {})
    rng = np.random.default_rng(0)
    for s in range(n_spk):
        for u in range(n_utt):
            utt = f"spk{s}-{u:03d}"
            path = root / "wavs" / f"{utt}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            length = int(seconds * rate * (1 + 0.5 * u))
            sf.write(path, 0.1 * rng.standard_normal(length).astype(np.float32), rate)
            data.wav_scp[utt], data.text[utt], data.utt2spk[utt] = str(path), f"word {u} of {s}", f"spk{s}"
    write_datadir(root / "data", data)
    return root / "data"


def test_datadir_round_trip_and_validate(tmp_path):
    data_dir = make_datadir(tmp_path)
    data, problems, warnings = validate_datadir(data_dir)
    assert problems == [] and warnings == []
    assert data.spk2utt == {
        "spk0": ["spk0-000", "spk0-001", "spk0-002"],
        "spk1": ["spk1-000", "spk1-001", "spk1-002"],
    }
    assert (data_dir / "spk2utt").read_text().splitlines()[0] == "spk0 spk0-000 spk0-001 spk0-002"


@pytest.mark.parametrize(
    "file,edit,message",
    [
        ("text", lambda s: "\n".join(reversed(s.splitlines())) + "\n", "not sorted"),
        ("utt2spk", lambda s: s.replace("spk1-002 spk1\n", ""), "differ"),
        ("spk2utt", lambda s: s.replace(" spk1-002", ""), "spk2utt does not match"),
        ("wav.scp", lambda s: s + s.splitlines()[-1] + "\n", "duplicate key"),
    ],
)
def test_datadir_format_errors(tmp_path, file, edit, message):
    data_dir = make_datadir(tmp_path)
    path = data_dir / file
    path.write_text(edit(path.read_text()))
    with pytest.raises(DataDirError, match=message):
        read_datadir(data_dir)


def corrupt(data_dir: Path) -> None:
    """A corrupt wav for spk0-001, an empty transcript for spk1-000."""
    data = read_datadir(data_dir)
    Path(data.wav_scp["spk0-001"]).write_bytes(b"RIFF not really a wave file")
    text = (data_dir / "text").read_text().replace("spk1-000 word 0 of 1", "spk1-000")
    (data_dir / "text").write_text(text)


def test_validate_cli_reports_bad_utterances(tmp_path):
    data_dir = make_datadir(tmp_path)
    corrupt(data_dir)
    run = subprocess.run(
        [sys.executable, "-m", "maskgct.data", "validate", str(data_dir)], capture_output=True, text=True
    )
    assert run.returncode == 1
    assert (
        "spk0-001 cannot read audio file" in run.stderr and "warning: spk1-000 empty transcript" in run.stderr
    )
    missing = subprocess.run(
        [sys.executable, "-m", "maskgct.data", "validate", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and missing.stderr.startswith("error: data dir not found")


def test_shards_random_access(tmp_path):
    rng = np.random.default_rng(1)
    written = {}
    writer = ShardWriter(tmp_path, "job000", shard_bytes=400)  # tiny shards: several files
    for i in range(7):
        arrays = {
            "phone_ids": rng.integers(0, 1000, 5 + i),
            "semantic": rng.integers(0, 8192, 20 + i),
            "acoustic": rng.integers(0, 1024, (21 + i, 12)),
        }
        writer.add(f"u{i}", "s", arrays)
        written[f"u{i}"] = arrays
    writer.flush()
    assert len(list(tmp_path.glob("*.safetensors"))) > 2
    dump = TokenDump(tmp_path)
    assert len(dump) == 7
    for index in (6, 0, 3):
        item = dump[index]
        for field in ("phone_ids", "semantic", "acoustic"):
            np.testing.assert_array_equal(item[field], written[item["utt"]][field])


def test_several_dumps_read_as_one_set(tmp_path):
    """A corpus and a second one extracted beside it (the default model's ``extra_voices``) train as one."""
    first, second = make_datadir(tmp_path / "a"), make_datadir(tmp_path / "b", n_spk=1, n_utt=2)
    extract(first, tmp_path / "dump", factory=fake_extractor, factory_arg=0)
    extract(second, tmp_path / "extra", factory=fake_extractor, factory_arg=0)
    one, extra = TokenDump(tmp_path / "dump"), TokenDump(tmp_path / "extra")
    both = TokenDump([tmp_path / "dump", str(tmp_path / "extra")])
    assert len(both) == len(one) + len(extra) == 8
    expected = {(d[i]["utt"], d[i]["semantic"].tobytes()) for d in (one, extra) for i in range(len(d))}
    assert {(both[i]["utt"], both[i]["semantic"].tobytes()) for i in range(len(both))} == expected
    assert (
        sum(
            b["semantic"].shape[0]
            for b in TokenDataModule(
                [str(tmp_path / "dump"), str(tmp_path / "extra")], max_frames=200
            ).train_dataloader()
        )
        == 8
    )
    with pytest.raises(DumpError, match="no shards"):
        TokenDump([tmp_path / "dump", tmp_path / "a"])


def test_extract_accounts_for_every_utterance(tmp_path):
    data_dir = make_datadir(tmp_path)
    corrupt(data_dir)
    summary = extract(data_dir, tmp_path / "dump", factory=fake_extractor, factory_arg=0, nj=1)
    assert summary["utterances"] == 6 and summary["written"] == 4 and summary["rejected"] == 2
    rejected = (tmp_path / "dump" / "rejected.txt").read_text().splitlines()
    assert rejected[0].startswith("spk0-001 cannot read audio file")
    assert rejected[1] == "spk1-000 empty transcript"
    assert sorted(TokenDump(tmp_path / "dump").entries[i].utt for i in range(4)) == [
        "spk0-000",
        "spk0-002",
        "spk1-001",
        "spk1-002",
    ]


def test_extract_resumes_and_runs_parallel_jobs(tmp_path):
    data_dir = make_datadir(tmp_path, n_spk=2, n_utt=4)
    dump = tmp_path / "dump"
    extract(data_dir, dump, factory=fake_extractor, factory_arg=0, nj=2, shard_bytes=1)
    first = {p.name: p.stat().st_mtime_ns for p in dump.glob("*.safetensors")}
    assert {name.split("-")[0] for name in first} == {"job000", "job001"}
    # Simulate a kill of job 1 after its first shard: drop its done marker and its later shards.
    (dump / "logs" / "job001.done").unlink()
    for name in sorted(first)[-2:]:
        (dump / name).unlink()
        (dump / name.replace(".safetensors", ".jsonl")).unlink()
    summary = extract(data_dir, dump, factory=fake_extractor, factory_arg=0, nj=2, shard_bytes=1)
    assert summary["written"] == 8
    after = {p.name: p.stat().st_mtime_ns for p in dump.glob("*.safetensors")}
    assert set(after) == set(first)
    untouched = sorted(first)[:-2]
    assert all(after[name] == first[name] for name in untouched)  # finished work is not redone
    with pytest.raises(ValueError, match="same --nj"):
        extract(data_dir, dump, factory=fake_extractor, factory_arg=0, nj=3)


def test_extract_refuses_to_resume_with_retrained_models(tmp_path):
    data_dir = make_datadir(tmp_path, n_spk=1, n_utt=2)
    tokenizer = tmp_path / "tokenizer"
    tokenizer.mkdir()
    (tokenizer / "semantic_codec.safetensors").write_bytes(b"first")
    config = TokenExtractorConfig(semantic_codec=str(tokenizer))
    dump = tmp_path / "dump"
    extract(data_dir, dump, factory=fake_extractor, factory_arg=config)
    (tokenizer / "semantic_codec.safetensors").write_bytes(b"first")  # rewritten, same contents: resumes
    assert extract(data_dir, dump, factory=fake_extractor, factory_arg=config)["written"] == 2
    (tokenizer / "semantic_codec.safetensors").write_bytes(b"retrained")
    with pytest.raises(ValueError, match="retrained"):
        extract(data_dir, dump, factory=fake_extractor, factory_arg=config)


def test_frame_batches_bucket_and_cover_once():
    lengths = np.random.default_rng(0).integers(10, 200, 300).tolist()
    sampler = FrameBatchSampler(lengths, max_frames=1000, bucket_size=100, seed=3)
    batches = [[i for i, _ in batch] for batch in sampler]
    assert sorted(i for b in batches for i in b) == list(range(300))
    for batch in batches:
        assert len(batch) == 1 or max(lengths[i] for i in batch) * len(batch) <= 1000
    # Bucketing: the padding is small compared with random batching.
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    assert padded < 1.15 * sum(lengths)
    sampler.set_epoch(1)
    assert [[i for i, _ in b] for b in sampler] != batches
    # Distributed: two ranks split the same order, each with the same number of batches.
    ranks = [
        FrameBatchSampler(lengths, 1000, bucket_size=100, seed=3, num_replicas=2, rank=r) for r in (0, 1)
    ]
    seen = [[i for b in r for i, _ in b] for r in ranks]
    assert len(ranks[0]) == len(ranks[1]) and not set(seen[0]) & set(seen[1]) - set(seen[0][:0])
    assert set(seen[0]) | set(seen[1]) == set(range(300))
    # Resume: skipping k batches continues the same sequence.
    sampler.set_epoch(0)
    sampler.skip_batches(5)
    assert [[i for i, _ in b] for b in sampler] == batches[5:]


def test_token_batches_follow_the_contract(tmp_path):
    data_dir = make_datadir(tmp_path)
    extract(data_dir, tmp_path / "dump", factory=fake_extractor, factory_arg=0)
    module = TokenDataModule(str(tmp_path / "dump"), max_frames=200)
    batch = next(iter(module.train_dataloader()))
    b, t = batch["semantic"].shape
    assert batch["phone_ids"].dtype == torch.long and batch["acoustic"].shape == (b, t, 12)
    assert batch["semantic_mask"].shape == (b, t) and batch["phone_mask"].shape == batch["phone_ids"].shape
    assert (batch["phone_ids"][batch["phone_mask"] == 0] == 1023).all()
    assert (batch["semantic"][batch["semantic_mask"] == 0] == 0).all()
    items = [TokenDataset(tmp_path / "dump")[i] for i in range(2)]
    single = collate_tokens(items)
    assert single["utt_ids"] == [items[0]["utt"], items[1]["utt"]]


def test_audio_batches_are_fixed_segments(tmp_path):
    data_dir = make_datadir(tmp_path, rate=22050)
    module = AudioDataModule(str(data_dir), sample_rate=24000, segment_seconds=0.5, batch_size=2)
    loader = module.train_dataloader()
    batch = next(iter(loader))
    assert batch["wav"].shape == (2, 12000) and batch["wav"].dtype == torch.float32
    assert (batch["wav_lengths"] <= 12000).all() and batch["wav"].abs().max() > 0
    again = next(iter(module.train_dataloader()))
    assert torch.equal(batch["wav"], again["wav"])  # crops depend on (seed, epoch, index) only


def test_libritts_prep_on_a_fake_tree(tmp_path):

    rng = np.random.default_rng(0)
    for spk, chapter in (("103", "1241"), ("1034", "121119")):
        folder = tmp_path / "LibriTTS" / "train-clean-100" / spk / chapter
        folder.mkdir(parents=True)
        for k in range(2):
            stem = f"{spk}_{chapter}_000001_00000{k}"
            sf.write(folder / f"{stem}.wav", 0.1 * rng.standard_normal(24000).astype(np.float32), 24000)
            (folder / f"{stem}.normalized.txt").write_text(f"Hello  number {k}.\n")
            (folder / f"{stem}.original.txt").write_text(f"Hello #{k}.\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "maskgct.data",
            "libritts",
            str(tmp_path / "LibriTTS"),
            str(tmp_path / "train"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    data, problems, _ = validate_datadir(tmp_path / "train")
    assert problems == [] and list(data.spk2utt) == ["103", "1034"]
    assert data.text["103-1241-000001-000000"] == "Hello number 0."
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "maskgct.data",
            "libritts",
            str(tmp_path),
            str(tmp_path / "x"),
            "--subsets",
            "train",
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "unknown LibriTTS subset" in bad.stderr


def test_synth_corpus_from_espeak_and_piper(tmp_path):
    from maskgct.data.synth import ESPEAK_VOICES, PIPER_VOICES, build_corpus

    voices = [ESPEAK_VOICES[0], ESPEAK_VOICES[8], ESPEAK_VOICES[9], PIPER_VOICES[0]]
    sets = build_corpus(tmp_path, voices, utts_per_speaker=2, dev_per_speaker=1)
    assert set(sets["test"].spk2utt) == {"espeak_sc_f1", "espeak_carib_m6"}
    assert set(sets["train"].spk2utt) == {"espeak_us_m1", "piper_joe"}
    for name in ("train", "dev", "test"):
        data, problems, _ = validate_datadir(tmp_path / name)
        assert problems == []
    wav, rate = sf.read(sets["train"].wav_scp["piper_joe-" + sets["train"].utt_ids[-1].split("-")[1]])
    assert rate == 22050 and len(wav) > rate * 0.5
    summary = json.dumps({k: len(v.utt2spk) for k, v in sets.items()})
    assert summary == '{"train": 2, "dev": 2, "test": 4}'


def test_w2v_bert_stand_in_learns_phones(tmp_path, one_thread):
    from maskgct.codecs.w2v_bert import W2vBertFeatures
    from maskgct.data.recipe import init_w2v_bert
    from maskgct.data.synth import ESPEAK_VOICES, build_corpus
    from maskgct.train.w2v_bert_ctc import train_w2v_bert_ctc

    build_corpus(tmp_path, ESPEAK_VOICES[:2], utts_per_speaker=4, dev_per_speaker=0, heldout=())
    folder = init_w2v_bert(tmp_path / "w2v_bert")
    result = train_w2v_bert_ctc(folder, tmp_path / "train", layer=2, steps=40, lr=5e-3, batch_size=8)
    assert result["last_loss"] < 0.4 * result["first_loss"], result
    # Only the layers up to the trained one are kept, and the folder loads as a w2v-BERT.
    assert W2vBertFeatures.from_folder(folder, 2).num_layers_total == 2
