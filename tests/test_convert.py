"""The official-checkpoint converter: full-size layouts (meta tensors), strictness, statistics, CLI."""

import json

import pytest
import torch
from pipeline_support import build_snapshot
from safetensors.torch import load_file, save_file

from maskgct.checkpoint import CheckpointError, read_safetensors
from maskgct.convert import AMPHION_FILES, OFFICIAL_CONFIG, convert_network, main, model_block

KEYS_FULL = {
    "semantic_codec": "semantic_codec.json",
    "acoustic_encoder": "acoustic_codec_encoder.json",
    "acoustic_decoder": "acoustic_codec_decoder.json",
    "t2s": "t2s_model.json",
    "s2a_1layer": "s2a_model_1layer.json",
    "s2a_full": "s2a_model_full.json",
}
PARAMETERS = {"t2s": 746_399_744, "s2a_1layer": 330_348_544, "s2a_full": 353_439_744}


@pytest.mark.parametrize("name", list(KEYS_FULL))
def test_every_official_key_is_accepted_at_full_size(fixtures, name):
    shapes = json.loads((fixtures / "keys_full" / KEYS_FULL[name]).read_text())
    state = {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}
    if name == "acoustic_decoder":  # the one buffer whose value is checked
        state["model.head.istft.window"] = torch.hann_window(1920)
    net = convert_network(name, model_block(OFFICIAL_CONFIG, name), state, name)
    assert all(p.is_meta for p in net.parameters())
    if name in PARAMETERS:
        assert sum(p.numel() for p in net.parameters()) == PARAMETERS[name]


def test_conversion_is_strict_about_every_tensor(fixtures):
    block = model_block(json.loads((fixtures / "tiny_config.json").read_text())["model"], "t2s")
    state = load_file(fixtures / "t2s.safetensors")
    missing = {k: v for k, v in state.items() if k != "to_logit.bias"}
    with pytest.raises(CheckpointError, match="missing tensor 'to_logit.bias'"):
        convert_network("t2s", block, missing, "t2s")
    with pytest.raises(CheckpointError, match="unexpected tensor 'extra.weight'"):
        convert_network("t2s", block, {**state, "extra.weight": torch.zeros(1)}, "t2s")
    with pytest.raises(CheckpointError, match="'mask_emb.weight' has shape"):
        convert_network("t2s", block, {**state, "mask_emb.weight": torch.zeros(2, 64)}, "t2s")
    encoder = load_file(fixtures / "acoustic_encoder.safetensors")
    del encoder["block.0.weight_g"]
    with pytest.raises(CheckpointError, match="block.0.weight_v"):
        convert_network("acoustic_encoder", OFFICIAL_CONFIG["acoustic_codec"]["encoder"], encoder, "enc")
    semantic = load_file(fixtures / "semantic_codec.safetensors")
    semantic_block = model_block(
        json.loads((fixtures / "tiny_config.json").read_text())["model"], "semantic_codec"
    )
    del semantic["decoder.1.bias"]  # unused at inference, but the file must still be complete
    with pytest.raises(CheckpointError, match="decoder.1.bias"):
        convert_network("semantic_codec", semantic_block, semantic, "semantic")


def test_cli_converts_with_pt_statistics_and_reports_bad_layouts(fixtures, tmp_path, capsys):
    src = build_snapshot(fixtures, tmp_path / "src")
    stats = load_file(fixtures / "w2v_stats_tiny.safetensors")
    torch.save({"mean": stats["mean"], "var": stats["var"]}, tmp_path / "stats.pt")
    args = ["amphion", str(src), str(tmp_path / "out"), "--w2v-bert", str(fixtures / "w2v_bert_tiny"),
            "--w2v-stats", str(tmp_path / "stats.pt"), "--config", str(fixtures / "tiny_config.json"),
            "--semantic-layer", "3", "--no-copy-w2v-bert"]  # fmt: skip
    assert main(args) == 0
    written = load_file(tmp_path / "out" / "w2v_bert_stats.safetensors")
    assert torch.equal(written["mean"], stats["mean"]) and torch.equal(written["var"], stats["var"])
    pointer = json.loads((tmp_path / "out" / "semantic_tokenizer.json").read_text())
    assert pointer == {"w2v_bert": str((fixtures / "w2v_bert_tiny").resolve()), "output_layer": 3}
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["format"] == "maskgct" and config["amphion_config"]["t2s_model"]["hidden_size"] == 64
    capsys.readouterr()

    (src / AMPHION_FILES["s2a_full"]).unlink()
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {src}: missing s2a_model/s2a_model_full/model.safetensors "
        "(expected the official snapshot layout)"
    )
    build_snapshot(fixtures, src)
    state = load_file(src / AMPHION_FILES["s2a_full"])
    state["diff_estimator.norm.to_weight.bias"] = torch.zeros(3)
    save_file(state, src / AMPHION_FILES["s2a_full"])
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress lines of the first networks
    assert err.startswith("error: ") and "s2a_model_full/model.safetensors: tensor" in err
    assert "'diff_estimator.norm.to_weight.bias' has shape (3,), the model expects (64,)" in err
    build_snapshot(fixtures, src)
    assert main([*args[:-3], "--semantic-layer", "9", "--no-copy-w2v-bert"]) == 2
    assert "output layer 9 outside 1..4" in capsys.readouterr().err


def test_small_w2v_bert_is_copied_into_the_checkpoint(tiny_checkpoint):
    out = tiny_checkpoint
    assert json.loads((out / "semantic_tokenizer.json").read_text())["w2v_bert"] == "w2v_bert"
    assert (out / "w2v_bert" / "model.safetensors").is_file()


def test_safetensors_reader_matches_the_library_and_refuses_broken_files(fixtures, tmp_path):
    path = fixtures / "t2s.safetensors"
    ours, theirs = read_safetensors(path), load_file(path)
    assert ours.keys() == theirs.keys()
    assert all(ours[k].dtype == theirs[k].dtype and torch.equal(ours[k], theirs[k]) for k in theirs)
    key = next(iter(theirs))
    assert list(read_safetensors(path, keep=lambda k: k == key)) == [key]
    converted = read_safetensors(path, dtypes={key: torch.bfloat16})[key]
    assert converted.dtype == torch.bfloat16 and torch.equal(converted, theirs[key].bfloat16())
    data = path.read_bytes()
    for name, content in (("cut", data[:-100]), ("garbage", b"RIFF" + bytes(100)), ("empty", b"")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match="unreadable safetensors file"):
            read_safetensors(tmp_path / name)
