"""Acoustic codec: reference parity, the official key layout, save/load, the CLI and bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from maskgct.audio import load_audio
from maskgct.checkpoint import CheckpointError, check_state_dict, read_safetensors
from maskgct.codecs.__main__ import main as cli
from maskgct.codecs.acoustic_codec import AcousticCodec
from maskgct.codecs.acoustic_decoder import (
    WINDOW_KEY,
    AcousticDecoder,
    AcousticDecoderConfig,
    amphion_state_dict,
)
from maskgct.codecs.acoustic_encoder import AcousticEncoder, AcousticEncoderConfig
from maskgct.codecs.modules import fold_weight_norm
from maskgct.convert import convert_network, model_block

REPO = Path(__file__).resolve().parents[1]


def load_tiny(fixtures: Path) -> AcousticCodec:
    """The official-layout fixtures through the converter."""
    config = json.loads((fixtures / "tiny_config.json").read_text())["model"]
    nets = []
    for name in ("acoustic_encoder", "acoustic_decoder"):
        weights = fixtures / f"{name}.safetensors"
        nets.append(convert_network(name, model_block(config, name), read_safetensors(weights), str(weights)))
    return AcousticCodec(*nets).eval()


@pytest.fixture(scope="module")
def case(fixtures):
    return load_file(str(fixtures / "cases" / "acoustic.safetensors"))


@pytest.fixture(scope="module")
def tiny_dir(fixtures, tmp_path_factory):
    """A tiny codec folder in our format, converted from the official-layout fixtures."""
    directory = tmp_path_factory.mktemp("tiny_codec")
    load_tiny(fixtures).save_pretrained(directory)
    return directory


def test_matches_reference(fixtures, case, one_thread):
    codec = load_tiny(fixtures)
    wav = case["wav_24k"][None, None]
    with torch.no_grad():
        latent = codec.encoder(wav)
        quantized, codes, _, _, all_quantized = codec.decoder.quantize(latent)
        embedding = codec.decoder.embed_codes(codes)
        decoded = codec.decoder(embedding)
    # The latent reaches ~99: float32 convolutions summed in another order (oneDNN picks kernels by CPU: the
    # reference matches within 1e-5 on AMD EPYC, 6.5e-5 on Intel Xeon) differ by ~1e-6 of that.
    reference_latent = case["encoder_latent"]
    assert (latent - reference_latent).abs().max() < 1e-6 * reference_latent.abs().max()
    assert torch.equal(codes, case["acoustic_codes"])
    assert (quantized - case["quantized_out"]).abs().max() < 1e-5
    assert (all_quantized - case["all_quantized"]).abs().max() < 1e-5
    assert (embedding - case["vq2emb"]).abs().max() < 1e-5
    assert decoded.shape == (1, 1, 100 * 480)
    assert (decoded - case["decoded_wav"]).abs().max() < 1e-5
    # The public API gives the same.
    assert torch.equal(codec.encode(wav), case["acoustic_codes"])
    assert (codec.decode(case["acoustic_codes"]) - case["decoded_wav"]).abs().max() < 1e-5


def test_official_keys_map_onto_the_official_size(fixtures):
    config = json.loads((fixtures / "maskgct_full_config.json").read_text())["model"]["acoustic_codec"]
    summary = json.loads((fixtures / "keys_full" / "summary.json").read_text())
    with torch.device("meta"):
        encoder = AcousticEncoder(AcousticEncoderConfig.from_amphion(config["encoder"]))
        decoder = AcousticDecoder(AcousticDecoderConfig.from_amphion(config["decoder"]))
    for name, net in (("encoder", encoder), ("decoder", decoder)):
        shapes = json.loads((fixtures / "keys_full" / f"acoustic_codec_{name}.json").read_text())
        assert (
            sum(int(np.prod(s)) for s in shapes.values())
            == summary[f"acoustic_codec_{name}"]["n_state_numel"]
        )
        state = {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}
        if name == "decoder":
            state[WINDOW_KEY] = torch.hann_window(1920)  # its value is checked, so it must be real
            state = amphion_state_dict(state, decoder.config.n_fft, name)
        else:
            state = fold_weight_norm(state)
        check_state_dict(net, state, name)  # every key, every shape, nothing missing or left over
    assert encoder.hop_length == 480 and decoder.config.in_channels == 256


def test_save_and_load_round_trip(fixtures, case, tiny_dir):
    reloaded = AcousticCodec.from_pretrained(tiny_dir)
    assert sorted(p.name for p in tiny_dir.iterdir()) == [
        "acoustic_decoder.json",
        "acoustic_decoder.safetensors",
        "acoustic_encoder.json",
        "acoustic_encoder.safetensors",
    ]
    assert WINDOW_KEY not in load_file(str(tiny_dir / "acoustic_decoder.safetensors"))
    original = load_tiny(fixtures)
    for key, value in original.state_dict().items():
        assert torch.equal(value, reloaded.state_dict()[key]), key


def test_amphion_loader_rejects_a_bad_window_or_missing_keys(fixtures, tmp_path):
    state = load_file(str(fixtures / "acoustic_decoder.safetensors"))
    bad = dict(state, **{WINDOW_KEY: torch.hann_window(1920, periodic=False)})
    with pytest.raises(CheckpointError, match="Hann"):
        amphion_state_dict(bad, 1920, "bad")
    del state["model.head.out.bias"]
    block = model_block(json.loads((fixtures / "tiny_config.json").read_text())["model"], "acoustic_decoder")
    with pytest.raises(CheckpointError, match="model.head.out.bias"):
        convert_network("acoustic_decoder", block, state, "decoder.safetensors")


def test_cli_round_trip_resamples_any_input(fixtures, case, tiny_dir, tmp_path, one_thread):
    codes_file, wav_file = tmp_path / "prompt.codes.safetensors", tmp_path / "prompt.wav"
    assert cli(["encode", str(fixtures / "prompt.wav"), str(codes_file), "--model", str(tiny_dir)]) == 0
    codes = load_file(str(codes_file))["codes"]
    assert torch.equal(codes, case["acoustic_codes"][0])  # 22.05 kHz file → 24 kHz exactly as the reference
    assert cli(["decode", str(codes_file), str(wav_file), "--model", str(tiny_dir)]) == 0
    decoded, rate = sf.read(wav_file, dtype="float32")
    assert rate == 24000 and decoded.shape == (100 * 480,)
    assert np.abs(decoded - case["decoded_wav"][0, 0].numpy()).max() < 1e-5

    # Stereo at another rate: channels averaged, resampled to 24 kHz; fewer code layers on request.
    stereo = tmp_path / "stereo.wav"
    mono = load_audio(fixtures / "prompt.wav", 16000)
    sf.write(stereo, np.stack([mono, 0.5 * mono], axis=1), 16000, subtype="FLOAT")
    assert cli(["encode", str(stereo), str(codes_file), "--model", str(tiny_dir), "--n-quantizers", "4"]) == 0
    codes = load_file(str(codes_file))["codes"]
    expected = AcousticCodec.from_pretrained(tiny_dir).encode(
        torch.from_numpy(load_audio(stereo, 24000))[None, None]
    )
    assert torch.equal(codes, expected[0, :, :4])
    assert cli(["decode", str(codes_file), str(wav_file), "--model", str(tiny_dir)]) == 0
    assert sf.info(wav_file).frames == codes.shape[0] * 480


def test_bad_input_gives_one_clear_error(fixtures, tiny_dir, tmp_path, capsys):
    codec = AcousticCodec.from_pretrained(tiny_dir)
    for wav, message in (
        (torch.zeros(1, 1, 0), "too short"),
        (torch.zeros(1, 1, 479), "too short"),
        (torch.full((1, 1, 4800), float("nan")), "NaN"),
        (torch.zeros(1, 4800), r"\(B, 1, L\)"),
    ):
        with pytest.raises(ValueError, match=message):
            codec.encode(wav)
    with pytest.raises(ValueError, match="out of range"):
        codec.decode(torch.full((1, 5, 12), 64))
    with pytest.raises(ValueError, match="1 ≤ N ≤ 12"):
        codec.decode(torch.zeros(1, 5, 13, dtype=torch.long))

    files = {
        "empty.wav": np.zeros(0, np.float32),
        "short.wav": np.zeros(100, np.float32),
        "nan.wav": np.full(4800, np.nan, np.float32),
    }
    for name, samples in files.items():
        sf.write(tmp_path / name, samples, 24000, subtype="FLOAT")
    (tmp_path / "garbage.wav").write_bytes(b"not audio at all")
    for name in [*files, "garbage.wav", "missing.wav"]:
        assert (
            cli(["encode", str(tmp_path / name), str(tmp_path / "out.safetensors"), "--model", str(tiny_dir)])
            == 2
        )
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert (
        cli(["decode", str(tmp_path / "garbage.wav"), str(tmp_path / "o.wav"), "--model", str(tiny_dir)]) == 2
    )
    assert capsys.readouterr().err.startswith("error: ")
    assert cli(["decode", str(tmp_path / "x.codes"), str(tmp_path / "o.wav"), "--model", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err


def test_module_entry_point_reports_errors_without_traceback(tiny_dir, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "maskgct.codecs",
            "encode",
            str(tmp_path / "none.wav"),
            str(tmp_path / "out.safetensors"),
            "--model",
            str(tiny_dir),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip().startswith("error: audio file not found") and "Traceback" not in result.stderr
    )
