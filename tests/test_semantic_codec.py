"""Semantic tokenizer: fixture parity, truncation, batching, bad input, the statistics command."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from maskgct.audio import AudioError, load_audio
from maskgct.checkpoint import CheckpointError, check_state_dict, read_safetensors
from maskgct.codecs.feature_stats import load_stats
from maskgct.codecs.semantic import SemanticTokenizer, main
from maskgct.codecs.semantic_codec import SemanticCodec, SemanticCodecConfig
from maskgct.codecs.w2v_bert import W2vBertFeatures, num_tokens
from maskgct.convert import convert_network
from maskgct.data.datadir import DataDir, write_datadir

TINY_LAYER = 3  # the tiny stand-in's semantic layer (hidden_states[3] of 4), see the fixture README §5


@pytest.fixture(scope="module")
def tokenizer(fixtures):
    """The official pieces, the codec through the converter: w2v-BERT folder, statistics, codec weights."""
    block = json.loads((fixtures / "tiny_config.json").read_text())["model"]["semantic_codec"]
    weights = fixtures / "semantic_codec.safetensors"
    codec = convert_network("semantic_codec", block, read_safetensors(weights), str(weights))
    w2v_bert = fixtures / "w2v_bert_tiny"
    features = W2vBertFeatures.from_folder(w2v_bert, TINY_LAYER, fixtures / "w2v_stats_tiny.safetensors")
    return SemanticTokenizer(features, codec, str(w2v_bert))


@pytest.fixture(scope="module")
def case(fixtures):
    return load_file(str(fixtures / "cases" / "semantic.safetensors"))


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    """A deterministic harmonic signal with a moving pitch and amplitude (not silence, not white noise)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    pitch = 120 + 40 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t)
    phase = 2 * np.pi * np.cumsum(pitch) / 16000
    wav = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.3 + 0.2 * np.sin(2 * np.pi * 3 * t))
    return (0.3 * wav + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_parity_with_reference(tokenizer, case, one_thread):
    wav = case["wav_16k"].numpy()
    input_features, attention_mask = tokenizer.features.input_features([wav])
    hidden = tokenizer.features.hidden_states(input_features, attention_mask)
    feat_norm = tokenizer.features.normalise(hidden)
    with torch.no_grad():
        encoder_out = tokenizer.codec.encode(feat_norm)
        codes, quantized = tokenizer.codec.quantize(feat_norm)
        z_e = tokenizer.codec.quantizer.quantizers[0].in_project(encoder_out)
    deltas = {
        "input_features": (input_features - case["input_features"]).abs().max(),
        "hidden": (hidden - case["w2v_hidden_states_3"]).abs().max(),
        "feat_norm": (feat_norm - case["feat_norm"]).abs().max(),
        "codec_encoder_out": (encoder_out.transpose(1, 2) - case["codec_encoder_out"]).abs().max(),
        "vq_z_e": (z_e - case["vq_z_e"]).abs().max(),
        "quantized_emb": (quantized.transpose(1, 2) - case["quantized_emb"]).abs().max(),
    }
    assert all(d <= 1e-5 for d in deltas.values()), deltas
    assert torch.equal(attention_mask, case["attention_mask"])
    assert torch.equal(codes, case["semantic_codes"])
    assert torch.equal(tokenizer.tokenize(wav), case["semantic_codes"][0])
    assert tokenizer.num_encoder_layers_total == 4 and tokenizer.output_layer == TINY_LAYER


def test_truncated_model_equals_full_model(fixtures, tokenizer, case, one_thread):
    full = W2vBertFeatures.from_folder(fixtures / "w2v_bert_tiny", output_layer=4)
    assert len(full.model.encoder.layers) == 4 and len(tokenizer.features.model.encoder.layers) == TINY_LAYER
    input_features, attention_mask = full.input_features([case["wav_16k"].numpy()])
    with torch.no_grad():
        out = full.model(input_features, attention_mask=attention_mask, output_hidden_states=True)
    truncated = tokenizer.features.hidden_states(input_features, attention_mask)
    assert len(out.hidden_states) == 5
    assert torch.equal(out.hidden_states[TINY_LAYER], truncated)
    assert torch.equal(out.last_hidden_state, case["w2v_hidden_states_4"])


def test_official_statistics_load(fixtures):
    mean, var = load_stats(fixtures / "w2v_bert_2_stats.safetensors")
    assert mean.shape == var.shape == (1024,)
    assert float(var.min()) > 0.07 and float(mean.min()) < -1.9


def test_official_key_layout_maps_onto_full_size_codec(fixtures):
    shapes = json.loads((fixtures / "keys_full" / "semantic_codec.json").read_text())
    block = json.loads((fixtures / "maskgct_full_config.json").read_text())["model"]["semantic_codec"]
    config = SemanticCodecConfig.from_amphion(block)
    assert (config.codebook_size, config.hidden_size, config.vocos_num_layers) == (8192, 1024, 12)
    with torch.device("meta"):
        codec = SemanticCodec(config)
        state = {key: torch.empty(shape) for key, shape in shapes.items()}
    folded = {}
    for key, value in state.items():  # weight-norm pairs become one weight of v's shape
        if key.endswith(".weight_g"):
            continue
        folded[key.removesuffix("_v") if key.endswith(".weight_v") else key] = value
    assert len(shapes) == 239
    check_state_dict(codec, folded, "keys_full/semantic_codec.json")
    assert sum(p.numel() for p in codec.parameters()) == 44_289_808 - 8 - 1024  # less the two weight_g


def test_batched_tokens_equal_one_at_a_time(tokenizer, case, one_thread):
    wavs = [_speechlike(s, seed) for seed, s in enumerate((0.73, 1.31, 0.4))] + [case["wav_16k"].numpy()]
    batched = tokenizer.tokenize_batch(wavs)
    for wav, ids in zip(wavs, batched, strict=True):
        assert ids.shape == (num_tokens(len(wav)),)
        assert torch.equal(ids, tokenizer.tokenize(wav))
    assert torch.equal(batched[-1], case["semantic_codes"][0])


def test_bad_and_unusual_input(tokenizer, case, tmp_path, fixtures):
    silence = tokenizer.tokenize(np.zeros(16000, np.float32))
    assert silence.shape == (num_tokens(16000),) == (49,) and int(silence.max()) < 512
    assert tokenizer.tokenize(np.zeros(560, np.float32)).shape == (1,)
    with pytest.raises(AudioError, match="too short"):
        tokenizer.tokenize(np.zeros(559, np.float32))
    with pytest.raises(AudioError, match="NaN"):
        tokenizer.tokenize(np.full(16000, np.nan, np.float32))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.raises(AudioError, match="cannot read"):
        load_audio(broken, 16000)
    # Wrong rate: the 22.05 kHz original is resampled exactly as librosa.load does.
    wav_22k, rate = sf.read(fixtures / "prompt.wav", dtype="float32")
    assert rate == 22050
    assert torch.equal(tokenizer.tokenize(wav_22k, sample_rate=rate), case["semantic_codes"][0])
    assert torch.equal(
        tokenizer.tokenize(load_audio(fixtures / "prompt.wav", 16000)), case["semantic_codes"][0]
    )
    # Stereo with identical channels mixes to the same mono signal, from an array or from a file.
    wav = case["wav_16k"].numpy()
    assert torch.equal(tokenizer.tokenize(np.stack([wav, wav])), case["semantic_codes"][0])
    sf.write(tmp_path / "stereo.wav", np.stack([wav_22k, wav_22k], axis=1), rate, subtype="FLOAT")
    assert torch.equal(
        tokenizer.tokenize(load_audio(tmp_path / "stereo.wav", 16000)), case["semantic_codes"][0]
    )


def test_save_and_load_pretrained(tokenizer, case, tmp_path, fixtures):
    tokenizer.save_pretrained(tmp_path / "tok", source=str(fixtures / "w2v_bert_tiny"))
    loaded = SemanticTokenizer.from_pretrained(tmp_path / "tok")
    assert loaded.codec.decoder is None and loaded.output_layer == TINY_LAYER
    assert torch.equal(loaded.tokenize(case["wav_16k"].numpy()), case["semantic_codes"][0])
    with pytest.raises(CheckpointError, match="not a semantic tokenizer folder"):
        SemanticTokenizer.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="w2v-BERT folder not found"):
        W2vBertFeatures.from_folder(tmp_path / "nowhere", 3)
    with pytest.raises(CheckpointError, match="outside 1..4"):
        W2vBertFeatures.from_folder(fixtures / "w2v_bert_tiny", 5)


def _data_dir(tmp_path, case):
    """A data dir with three usable utterances and three that must be rejected."""
    audio = tmp_path / "audio"
    audio.mkdir()
    files = {
        "spk1-a": (case["wav_16k"].numpy(), 16000),
        "spk1-b": (_speechlike(0.9, 7), 16000),
        "spk1-c": (_speechlike(1.7, 8), 16000),
        "spk2-short": (_speechlike(0.02, 9), 16000),
        "spk2-silent": (np.zeros(16000, np.float32), 16000),
    }
    wav_scp = {}
    for utt, (wav, rate) in files.items():
        sf.write(audio / f"{utt}.wav", wav, rate, subtype="FLOAT")
        wav_scp[utt] = str(audio / f"{utt}.wav")
    wav_scp["spk2-unreadable"] = str(audio / "missing.wav")
    utt2spk = {utt: utt.split("-")[0] for utt in wav_scp}
    write_datadir(tmp_path / "data", DataDir(wav_scp, dict.fromkeys(wav_scp, "a"), utt2spk))
    return tmp_path / "data"


def test_stats_command(tokenizer, case, tmp_path, fixtures, capsys):
    data = _data_dir(tmp_path, case)
    stats = tmp_path / "stats.safetensors"
    args = ["stats", "--data-dir", str(data), "--w2v-bert", str(fixtures / "w2v_bert_tiny"), "--layer", "3"]
    assert main([*args, "--out", str(stats), "--batch-size", "2"]) == 0
    mean, var = load_stats(stats)
    skipped = capsys.readouterr().err
    for utt, reason in (
        ("spk2-short", "too short"),
        ("spk2-silent", "silent"),
        ("spk2-unreadable", "not found"),
    ):
        assert f"skipped {utt}: " in skipped and reason in skipped.split(f"skipped {utt}: ")[1].split("\n")[0]
    frames = []
    for utt in ("spk1-a", "spk1-b", "spk1-c"):
        hidden, mask = tokenizer.features([_read(data, utt)], normalise=False)
        frames.append(hidden[mask])
    frames = torch.cat(frames).double()
    assert torch.allclose(mean.double(), frames.mean(0), atol=1e-5)
    assert torch.allclose(var.double(), frames.var(0, unbiased=False), rtol=1e-4, atol=1e-6)

    capsys.readouterr()
    args = [
        "stats",
        "--data-dir",
        str(tmp_path / "nope"),
        "--w2v-bert",
        str(fixtures / "w2v_bert_tiny"),
        "--layer",
        "3",
    ]
    assert main([*args, "--out", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "data dir not found" in err and "Traceback" not in err
    assert not (tmp_path / "x.safetensors").exists()


def _read(data, utt):
    path = dict(line.split(" ", 1) for line in (data / "wav.scp").read_text().splitlines())[utt]
    return sf.read(path, dtype="float32")[0]
