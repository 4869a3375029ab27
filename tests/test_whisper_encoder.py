"""Whisper tiny.en front end: model.bin reader, encoder vs CTranslate2, log-mel vs faster-whisper, tokenizer
folders, token counts, bad input, and the stats / make-tokenizer / training entry points."""

import json
import struct
from pathlib import Path

import ctranslate2
import numpy as np
import pytest
import soundfile as sf
import torch
from faster_whisper.feature_extractor import FeatureExtractor
from hydra.utils import instantiate
from omegaconf import OmegaConf

from maskgct.audio import AudioError, to_mono
from maskgct.checkpoint import CheckpointError, save_network
from maskgct.codecs.ctranslate2 import read_ctranslate2, resolve_whisper
from maskgct.codecs.feature_stats import load_stats, save_stats
from maskgct.codecs.semantic import TOKENIZER_FILE, WHISPER_STATS_FILE, SemanticTokenizer, main
from maskgct.codecs.semantic_codec import SemanticCodec, SemanticCodecConfig
from maskgct.codecs.whisper_encoder import WhisperEncoder
from maskgct.codecs.whisper_features import MIN_SAMPLES, WhisperFeatures, WhisperLogMel, num_tokens
from maskgct.data.__main__ import main as data_main
from maskgct.data.datadir import DataDir, write_datadir
from maskgct.data.synth import ESPEAK_VOICES, EspeakSynth
from maskgct.train.semantic_codec import SemanticCodecTask

# Measured on these utterances: torch vs CTranslate2 float32 differ by at most 6e-5 (outputs reach ~11;
# both compute in float32 from the same fp16-stored weights, so only summation order differs).
ENCODER_ATOL = 5e-4
# Our log-mel vs faster-whisper's numpy one: at most 1.5e-5 measured (float32 FFT rounding).
MEL_ATOL = 1e-4
WIDTH = 384  # tiny.en
CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture(scope="module")
def speech() -> list[np.ndarray]:
    """Two espeak-ng utterances at 16 kHz (≈2-3 s each): speech-like spectra for the numeric comparisons."""
    synth = EspeakSynth()
    texts = ("The quick brown fox jumps over the lazy dog.", "Please call Stella and ask her to bring these.")
    return [to_mono(*synth(voice, text), 16000) for voice, text in zip(ESPEAK_VOICES[:2], texts, strict=True)]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread for this module (the machines have two cores, shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def features() -> WhisperFeatures:
    return WhisperFeatures.from_package("tiny.en")


@pytest.fixture(scope="module")
def stats_file(tmp_path_factory, features, speech) -> str:
    hidden, mask = features(speech, normalise=False)
    valid = hidden[mask]
    path = tmp_path_factory.mktemp("stats") / "whisper_stats.safetensors"
    save_stats(path, valid.mean(0), valid.var(0))
    return str(path)


def _codec(seed: int = 0) -> SemanticCodec:
    torch.manual_seed(seed)
    config = SemanticCodecConfig(
        codebook_size=64, hidden_size=WIDTH, codebook_dim=8, vocos_dim=32, vocos_intermediate_dim=64,
        vocos_num_layers=1,
    )  # fmt: skip
    return SemanticCodec(config).eval()


def test_reader_reads_only_the_encoder():
    spec, variables = read_ctranslate2(resolve_whisper("tiny.en") / "model.bin")
    assert spec == "WhisperSpec"
    assert variables and all(name.startswith("encoder/") for name in variables)
    assert variables["encoder/conv1/weight"].shape == (WIDTH, 80, 3)
    assert variables["encoder/conv1/weight"].dtype == torch.float16
    assert variables["encoder/position_encodings/encodings"].shape == (1500, WIDTH)
    assert int(variables["encoder/num_heads"]) == 6
    # whisper's key projection has no bias: CTranslate2 stores zeros in the fused q|k|v bias.
    for i in range(4):
        bias = variables[f"encoder/layer_{i}/self_attention/linear_0/bias"]
        assert bias.shape == (3 * WIDTH,) and not bias[WIDTH : 2 * WIDTH].any()


def _write_model_bin(path, variables, aliases=(), version=6, spec="WhisperSpec"):
    """A CTranslate2 model.bin written by hand (the format of OFFLINE_MODELS.md)."""
    codes = {torch.float32: 0, torch.int8: 1, torch.int16: 2, torch.int32: 3, torch.float16: 4}

    def string(text):
        raw = text.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    out = struct.pack("<I", version) + string(spec) + struct.pack("<II", 1, len(variables))
    for name, tensor in variables.items():
        raw = tensor.contiguous().numpy().tobytes()
        out += string(name) + struct.pack(f"<B{tensor.dim()}I", tensor.dim(), *tensor.shape)
        out += struct.pack("<BI", codes[tensor.dtype], len(raw)) + raw
    out += struct.pack("<I", len(aliases)) + b"".join(string(a) + string(t) for a, t in aliases)
    path.write_bytes(out)
    return path


def test_reader_format_and_bad_files(tmp_path):
    weights = {
        "decoder/big": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "encoder/a": torch.tensor([1.5, -2.0], dtype=torch.float16),
        "encoder/n": torch.tensor(7, dtype=torch.int16),
        "encoder/w": torch.arange(12, dtype=torch.int32).reshape(3, 4),
    }
    path = _write_model_bin(tmp_path / "model.bin", weights, aliases=[("encoder/b", "encoder/a")])
    spec, variables = read_ctranslate2(path)
    assert spec == "WhisperSpec" and sorted(variables) == ["encoder/a", "encoder/b", "encoder/n", "encoder/w"]
    for name in ("encoder/a", "encoder/n", "encoder/w"):
        assert variables[name].dtype == weights[name].dtype and torch.equal(variables[name], weights[name])
    assert torch.equal(variables["encoder/b"], weights["encoder/a"])

    full = path.read_bytes()
    (tmp_path / "short.bin").write_bytes(full[: len(full) - 20])
    with pytest.raises(CheckpointError, match="truncated"):
        read_ctranslate2(tmp_path / "short.bin")
    with pytest.raises(CheckpointError, match="version 5"):
        read_ctranslate2(_write_model_bin(tmp_path / "v5.bin", weights, version=5))
    with pytest.raises(CheckpointError, match="not found"):
        read_ctranslate2(tmp_path / "nothing.bin")
    (tmp_path / "t5").mkdir()
    _write_model_bin(tmp_path / "t5" / "model.bin", weights, spec="T5Spec")
    with pytest.raises(CheckpointError, match="not a whisper model"):
        WhisperEncoder.from_ctranslate2(tmp_path / "t5")
    # A whisper file missing most of its encoder names the first tensor it lacks.
    with pytest.raises(CheckpointError, match="missing variable 'encoder/conv1/weight'"):
        WhisperEncoder.from_ctranslate2(path)


def test_encoder_matches_ctranslate2(speech):
    folder = resolve_whisper("tiny.en")
    encoder = WhisperEncoder.from_ctranslate2(folder)
    assert (encoder.config.width, encoder.config.heads, encoder.config.layers) == (WIDTH, 6, 4)
    ct2 = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32", intra_threads=1)
    extractor = FeatureExtractor(feature_size=80)
    for wav in speech:
        mel = extractor(wav, padding=0)  # (80, L // 160), the framing WhisperLogMel uses
        expected = np.array(ct2.encode(ctranslate2.StorageView.from_array(mel[None]), to_cpu=True))
        with torch.no_grad():
            ours = encoder(torch.from_numpy(mel)[None]).numpy()
        assert ours.shape == expected.shape == (1, num_tokens(len(wav)), WIDTH)
        np.testing.assert_allclose(ours, expected, rtol=0, atol=ENCODER_ATOL)

    # Stopping after block 2: only two blocks are built, and the output is the raw residual stream there.
    truncated = WhisperEncoder.from_ctranslate2(folder, output_layer=2)
    assert len(truncated.blocks) == 2 and truncated.norm is None
    mel = torch.from_numpy(extractor(speech[0], padding=0))[None]
    with torch.no_grad():
        x = torch.nn.functional.gelu(encoder.conv1(mel))
        x = torch.nn.functional.gelu(encoder.conv2(x)).transpose(1, 2)
        x = x + encoder.positions[: x.shape[1]]
        x = encoder.blocks[1](encoder.blocks[0](x))
        assert torch.allclose(truncated(mel), x, atol=1e-6)
    with pytest.raises(ValueError, match="outside 1..4"):
        WhisperEncoder.from_ctranslate2(folder, output_layer=5)


def test_log_mel_matches_faster_whisper(speech):
    mel = WhisperLogMel()
    extractor = FeatureExtractor(feature_size=80)
    for wav in speech:
        ours = mel(torch.from_numpy(wav))[0].numpy()
        assert ours.shape == (80, len(wav) // 160)
        np.testing.assert_allclose(ours, extractor(wav, padding=0), rtol=0, atol=MEL_ATOL)
        # faster-whisper's default appends 160 zeros (one frame more). The frames agree except the last
        # one or two, whose 400-sample windows reach past the audio: zeros there, a reflection here.
        padded = extractor(wav)
        assert padded.shape[1] == ours.shape[1] + 1
        np.testing.assert_allclose(ours[:, :-2], padded[:, : ours.shape[1] - 2], rtol=0, atol=MEL_ATOL)
    # Rows of an equal-length batch are floored (max - 8) each on its own, as single utterances.
    n = min(len(w) for w in speech)
    pair = torch.from_numpy(np.stack([speech[0][:n], 0.01 * speech[1][:n]]))
    batched = mel(pair)
    assert torch.allclose(batched[1], mel(pair[1])[0], atol=1e-6)


def test_token_count_is_50_hz_and_batches_equal_single_runs(features, speech):
    rng = np.random.default_rng(0)
    lengths = [MIN_SAMPLES, 559, 16000, 16321, 40007]
    wavs = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]
    hidden, mask = features(wavs, normalise=False)
    counts = mask.sum(1).tolist()
    assert counts == [num_tokens(n) for n in lengths] == [1, 2, 50, 51, 125]
    assert all(abs(c - n / 320) <= 1 for c, n in zip(counts, lengths, strict=True))
    assert hidden.shape == (5, 125, WIDTH) and not hidden[0, 1:].any()
    # Each utterance is encoded on its own: batching changes nothing.
    for i, wav in enumerate(wavs[2:4], start=2):
        alone, _ = features([wav], normalise=False)
        assert torch.equal(hidden[i, : counts[i]], alone[0])


def test_bad_input_is_a_clear_error(features):
    with pytest.raises(AudioError, match=r"utterance 1: audio too short for whisper \(399 samples"):
        features([np.zeros(16000, np.float32), np.zeros(MIN_SAMPLES - 1, np.float32)], normalise=False)
    with pytest.raises(AudioError, match="too long for whisper"):
        features([np.zeros(30 * 16000 + 1, np.float32)], normalise=False)
    with pytest.raises(RuntimeError, match="no normalisation statistics"):
        features([np.ones(16000, np.float32)])
    with pytest.raises(CheckpointError, match="not one of"):
        WhisperFeatures.from_package("large-v3")
    with pytest.raises(CheckpointError, match="outside 1..4"):
        WhisperFeatures.from_package("tiny.en", output_layer=0)


def test_tokenizer_folder_round_trip(tmp_path, features, speech, stats_file):
    layer2 = WhisperFeatures.from_package("tiny.en", output_layer=2, stats_file=stats_file)
    assert layer2.num_layers_total == 0 and layer2.output_layer == 2 and layer2.hidden_size == WIDTH
    tokenizer = SemanticTokenizer(layer2, _codec(), "tiny.en")
    assert tokenizer.frontend == "whisper" and tokenizer.num_encoder_layers_total == 0
    tokens = tokenizer.tokenize_batch(speech)
    assert [len(t) for t in tokens] == [num_tokens(len(w)) for w in speech]
    assert all(torch.equal(t, tokenizer.tokenize(w)) for t, w in zip(tokens, speech, strict=True))

    tokenizer.save_pretrained(tmp_path / "tok")
    meta = json.loads((tmp_path / "tok" / TOKENIZER_FILE).read_text())
    assert meta == {"frontend": "whisper", "whisper": "tiny.en", "output_layer": 2}
    assert (tmp_path / "tok" / WHISPER_STATS_FILE).is_file()
    loaded = SemanticTokenizer.from_pretrained(tmp_path / "tok")
    assert loaded.frontend == "whisper" and loaded.output_layer == 2
    for before, after in zip(tokens, loaded.tokenize_batch(speech), strict=True):
        assert torch.equal(before, after)

    meta["frontend"] = "hubert"
    (tmp_path / "tok" / TOKENIZER_FILE).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="unknown front end 'hubert'"):
        SemanticTokenizer.from_pretrained(tmp_path / "tok")
    with pytest.raises(CheckpointError, match="whisper gives 384"):
        SemanticTokenizer(layer2, SemanticCodec(SemanticCodecConfig(hidden_size=64, vocos_num_layers=1)), "x")


def test_stats_and_make_tokenizer_commands(tmp_path, speech, capsys):
    data = tmp_path / "data"
    wav_scp = {}
    for i, wav in enumerate([*speech, np.zeros(100, np.float32)]):
        sf.write(tmp_path / f"u{i}.wav", wav, 16000)
        wav_scp[f"u{i}"] = str(tmp_path / f"u{i}.wav")
    write_datadir(data, DataDir(wav_scp, dict.fromkeys(wav_scp, "a"), dict.fromkeys(wav_scp, "u")))
    stats = tmp_path / "stats.safetensors"
    assert main(["stats", "--data-dir", str(data), "--whisper", "tiny.en", "--out", str(stats)]) == 0
    mean, var = load_stats(stats)
    assert mean.shape == var.shape == (WIDTH,)
    assert "skipped u2: too short" in capsys.readouterr().err

    save_network(_codec(), tmp_path / "codec", "semantic_codec")
    args = ["make-tokenizer", str(tmp_path / "tok"), "--whisper", "tiny.en", "--stats", str(stats)]
    assert data_main([*args, "--codec", str(tmp_path / "codec")]) == 0
    meta = json.loads((tmp_path / "tok" / TOKENIZER_FILE).read_text())
    assert meta == {"frontend": "whisper", "whisper": "tiny.en", "output_layer": 4}
    tokens = SemanticTokenizer.from_pretrained(tmp_path / "tok").tokenize(speech[0])
    assert tokens.shape == (num_tokens(len(speech[0])),)


def test_codec_training_on_whisper_features(stats_file):
    model = dict(
        codebook_size=64, hidden_size=WIDTH, codebook_dim=8, vocos_dim=32, vocos_intermediate_dim=64,
        vocos_num_layers=1, with_decoder=True,
    )  # fmt: skip
    # Through the task config, as `python -m maskgct.train task=semantic_codec task.whisper=tiny.en ...`.
    task_cfg = OmegaConf.load(CONF / "task" / "semantic_codec.yaml")
    task_cfg = OmegaConf.merge(task_cfg, {"whisper": "tiny.en", "stats": stats_file, "warmup_steps": 1})
    task = instantiate(task_cfg, model=model, _recursive_=False)
    assert isinstance(task, SemanticCodecTask)
    gen = torch.Generator().manual_seed(0)
    batch = {
        "utt_ids": ["a", "b"],
        "wav": 0.1 * torch.randn(2, 8000, generator=gen),
        "wav_lengths": torch.tensor([8000, 6000]),
    }
    features, mask = task.batch_features(batch)
    assert features.shape == (2, 25, WIDTH) and mask.sum(1).tolist() == [num_tokens(8000), num_tokens(6000)]
    assert not features[1, 19:].any()
    loss = task.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss) and task.net.encoder[1].weight.grad is not None
    assert not any(k.startswith(("w2v", "whisper")) for k in task.state_dict())
    with pytest.raises(ValueError, match="not both"):
        SemanticCodecTask(model=model, w2v_bert="x", whisper="tiny.en")
