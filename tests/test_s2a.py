"""S2A: parity with the Amphion reference fixtures, official layout, coarse-to-fine sampling, errors."""

import json

import pytest
import torch
from safetensors.torch import load_file

from maskgct.checkpoint import CheckpointError
from maskgct.s2a import S2A, S2AConfig, s2a_generate
from maskgct.sampler import Decoding, SamplingOptions, gumbel_noise, top_k_filter


def load_model(fixtures, kind):
    block = json.loads((fixtures / "tiny_config.json").read_text())["model"]["s2a_model"][f"s2a_{kind}"]
    return S2A.from_amphion(block, load_file(fixtures / f"s2a_{kind}.safetensors"), f"s2a_{kind}.safetensors")


@pytest.fixture(scope="module")
def models(fixtures):
    return load_model(fixtures, "1layer"), load_model(fixtures, "full")


CASES = [
    ("s2a_forward_1layer", 0),
    ("s2a_forward_full_layer1", 1),
    ("s2a_forward_full_layer6", 1),
    ("s2a_forward_full_layer11", 1),
]


@pytest.mark.parametrize("name,which", CASES)
def test_forward_and_masking_match_reference(models, reference_case, one_thread, name, which):
    model = models[which]
    case, meta = reference_case(name)
    layer = int(case["mask_layer"])
    with torch.no_grad():
        cond = model.condition(case["cond_code"], layer)
        hidden = model.hidden_states(case["xt"], case["t"], cond, case["x_mask"])
        logits = model.to_logits[layer](hidden)
        torch.manual_seed(meta["seed"])
        q = model.config.num_quantizer
        xt, mask, prompt_len, _, drawn = model.mask_tokens(case["x0"][..., :q], case["t"])
    assert (hidden - case["hidden"]).abs().max() <= 1e-5
    assert (logits - case["logits"]).abs().max() <= 1e-5
    assert int(drawn) == layer and torch.equal(prompt_len, case["prompt_len"])
    assert torch.equal(mask, case["mask"]) and (xt - case["xt"]).abs().max() <= 1e-6


@pytest.mark.parametrize("mode", ["reference", "fast"])
def test_coarse_to_fine_sampling_reproduces_reference(models, reference_case, one_thread, mode):
    case, meta = reference_case("s2a_sample")
    torch.manual_seed(meta["seed"])
    decoding = Decoding(meta["cfg"], meta["rescale_cfg"], meta["temp"], meta["filter_thres"], mode)
    codes = s2a_generate(
        *models, case["combine_semantic_code"], case["acoustic_prompt_codes"], meta["n_timesteps"], decoding
    )
    assert torch.equal(codes, case["predict_full"])


@pytest.mark.parametrize("kind", ["1layer", "full"])
def test_official_layout_loads_strictly(fixtures, kind):
    full = json.loads((fixtures / "maskgct_full_config.json").read_text())["model"]["s2a_model"][
        f"s2a_{kind}"
    ]
    shapes = json.loads((fixtures / "keys_full" / f"s2a_model_{kind}.json").read_text())
    summary = json.loads((fixtures / "keys_full" / "summary.json").read_text())[f"s2a_model_{kind}"]
    assert shapes["diff_estimator.embed_tokens.weight"] == [0, 256]
    with torch.device("meta"):
        state = {key: torch.empty(shape) for key, shape in shapes.items()}
        model = S2A.from_amphion(full, state)
    assert sum(p.numel() for p in model.parameters()) == summary["n_params"]


def test_loader_checks_the_empty_leftover(fixtures):
    block = json.loads((fixtures / "tiny_config.json").read_text())["model"]["s2a_model"]["s2a_full"]
    state = load_file(fixtures / "s2a_full.safetensors")
    with pytest.raises(CheckpointError, match="embed_tokens.weight' should be empty"):
        S2A.from_amphion(block, state | {"diff_estimator.embed_tokens.weight": torch.zeros(2, 256)})
    with pytest.raises(CheckpointError, match="to_logits.11.weight"):
        S2A.from_amphion(block, {k: v for k, v in state.items() if k != "to_logits.11.weight"})
    with pytest.raises(ValueError, match="mask_layer_schedule"):
        S2AConfig(mask_layer_schedule="cosine")


def test_generate_rejects_bad_input(models):
    _, full = models
    semantic, prompt = torch.randint(0, 512, (1, 10)), torch.randint(0, 64, (1, 6, 12))
    decoding = SamplingOptions().s2a()
    with pytest.raises(ValueError, match="one entry per layer"):
        full.generate(semantic, prompt, [1] * 3, decoding)
    with pytest.raises(ValueError, match="longer than the acoustic prompt"):
        full.generate(semantic[:, :6], prompt, [1] * 12, decoding)
    with pytest.raises(ValueError, match="acoustic_prompt must lie in"):
        full.generate(semantic, prompt + 64, [1] * 12, decoding)


def test_infill_samples_the_training_forward_with_the_suffix_after_the_target(models):
    """One unguided step of the 1-layer model against its training forward (parity-tested above) on
    ``[prompt | masked | suffix]`` codes, conditioned on the semantic tokens of all three."""
    one_layer, _ = models
    g = torch.Generator().manual_seed(0)
    semantic = torch.randint(0, 512, (2, 15), generator=g)
    prompt, suffix = (
        torch.randint(0, 64, (2, 5, 12), generator=g),
        torch.randint(0, 64, (2, 4, 12), generator=g),
    )

    def run(suffix):
        decoding = Decoding(0.0, 0.0, 1.0, 0.98, "reference", torch.Generator().manual_seed(5))
        return one_layer.generate(semantic, prompt, [1], decoding, acoustic_suffix=suffix)

    out = run(suffix)
    with torch.no_grad():
        masked = one_layer.mask_emb.weight[:1][None].expand(2, 6, -1)
        emb = one_layer.token_emb[0]
        x = torch.cat([emb(prompt[..., 0]), masked, emb(suffix[..., 0])], dim=1)
        logits = one_layer(x, torch.ones(2), one_layer.condition(semantic, 0), 0)[:, 5:11]
        filtered = top_k_filter(logits, 0.98)
    expected = (filtered / 0.2 + gumbel_noise(filtered, torch.Generator().manual_seed(5))).argmax(dim=-1)
    assert out.shape == (2, 6, 1) and torch.equal(out[..., 0], expected)
    assert not torch.equal(run((suffix + 3) % 64), out)


@pytest.mark.parametrize("mode", ["reference", "fast"])
def test_an_empty_suffix_is_the_prefix_only_path(models, reference_case, one_thread, mode):
    case, meta = reference_case("s2a_sample")
    torch.manual_seed(meta["seed"])
    decoding = Decoding(meta["cfg"], meta["rescale_cfg"], meta["temp"], meta["filter_thres"], mode)
    prompt = case["acoustic_prompt_codes"]
    codes = s2a_generate(
        *models, case["combine_semantic_code"], prompt, meta["n_timesteps"], decoding, prompt[:, :0]
    )
    assert torch.equal(codes, case["predict_full"])


def test_coarse_to_fine_infill_agrees_across_modes(models):
    """Both models with a suffix, guided; fast mode reuses the conditional MLP rows of the target only."""
    g = torch.Generator().manual_seed(1)
    semantic = torch.randint(0, 512, (1, 20), generator=g)
    prompt, suffix = (
        torch.randint(0, 64, (1, 6, 12), generator=g),
        torch.randint(0, 64, (1, 5, 12), generator=g),
    )
    steps = SamplingOptions().for_layers(12).s2a_steps
    runs = [
        s2a_generate(
            *models,
            semantic,
            prompt,
            steps,
            SamplingOptions().s2a(mode, torch.Generator().manual_seed(2)),
            suffix,
        )
        for mode in ("reference", "fast")
    ]
    assert runs[0].shape == (1, 9, 12) and torch.equal(runs[0], runs[1])
    with pytest.raises(ValueError, match="prompt .* and suffix .* together"):
        models[1].generate(
            semantic[:, :11], prompt, [1] * 12, SamplingOptions().s2a(), acoustic_suffix=suffix
        )
