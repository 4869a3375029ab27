"""Batched decoding of requests of different lengths: each equals its request alone (reference mode)."""

import pytest
import torch

from maskgct.batching import s2a_generate_batch, t2s_generate_batch
from maskgct.checkpoint import load_network
from maskgct.s2a import s2a_generate
from maskgct.sampler import Decoding, SamplingOptions, decode_layer

# (phones, prompt frames, target frames): a one-frame target stops re-masking after its first step.
SHAPES = [(9, 7, 11), (14, 3, 6), (5, 12, 1), (11, 9, 17)]
SEEDS = [1, 2, 3, 4]


@pytest.fixture(scope="module")
def nets(tiny_checkpoint):
    return {name: load_network(tiny_checkpoint, name) for name in ("t2s", "s2a_1layer", "s2a_full")}


def generators(seeds):
    return [torch.Generator().manual_seed(seed) for seed in seeds]


def requests(nets):
    g = torch.Generator().manual_seed(0)
    vocab = nets["t2s"].config.cond_codebook_size
    phones = [torch.randint(0, 363, (p,), generator=g) for p, _, _ in SHAPES]
    prompts = [torch.randint(0, vocab, (tp,), generator=g) for _, tp, _ in SHAPES]
    return phones, prompts, [t for _, _, t in SHAPES]


@pytest.mark.parametrize("steps", [4, 1])
def test_t2s_batch_equals_each_request_alone(nets, steps):
    t2s, options = nets["t2s"], SamplingOptions()
    phones, prompts, lengths = requests(nets)
    batched = t2s_generate_batch(
        t2s, phones, prompts, lengths, steps, options.t2s("reference", generators(SEEDS))
    )
    for p, s, n, seed, got in zip(phones, prompts, lengths, SEEDS, batched, strict=True):
        alone = t2s.generate(p[None], s[None], n, steps, options.t2s("reference", generators([seed])[0]))
        assert torch.equal(got, alone[0])
    # Fast mode: one padded SDPA forward for the batch; floats differ by ~1e-6 from alone, tokens nearly all
    # agree (multi-step decoding lets one flipped near-tie move later steps, so not all).
    fast = t2s_generate_batch(t2s, phones, prompts, lengths, steps, options.t2s("fast", generators(SEEDS)))
    agree = [(f == b).float().mean() for f, b in zip(fast, batched, strict=True)]
    assert [len(f) for f in fast] == lengths and sum(agree) / len(agree) >= 0.75


def test_s2a_batch_equals_each_request_alone(nets):
    one, full = nets["s2a_1layer"], nets["s2a_full"]
    vocab, codebook = full.config.cond_codebook_size, full.config.codebook_size
    g = torch.Generator().manual_seed(5)
    semantic = [torch.randint(0, vocab, (tp + t,), generator=g) for _, tp, t in SHAPES]
    acoustic = [torch.randint(0, codebook, (tp, 12), generator=g) for _, tp, _ in SHAPES]
    options = SamplingOptions()
    steps = [3, 2] + [1] * 10
    batched = s2a_generate_batch(
        one, full, semantic, acoustic, steps, options.s2a("reference", generators(SEEDS))
    )
    for s, a, seed, got in zip(semantic, acoustic, SEEDS, batched, strict=True):
        alone = s2a_generate(
            one, full, s[None], a[None], steps, options.s2a("reference", generators([seed])[0])
        )
        assert torch.equal(got, alone[0])
    fast = s2a_generate_batch(one, full, semantic, acoustic, steps, options.s2a("fast", generators(SEEDS)))
    assert [f.shape for f in fast] == [b.shape for b in batched]


def test_rows_of_different_lengths_need_their_own_generators():
    decoding = Decoding(0.0, 0.75, 1.0, 0.98)
    with pytest.raises(ValueError, match="one generator per row"):
        decode_layer(lambda s, m, t: (None, None), lambda h: h, 2, 5, 2, decoding, "cpu", [5, 3])
    per_row = Decoding(0.0, 0.75, 1.0, 0.98, generator=generators([1]))
    with pytest.raises(ValueError, match="one generator and one length"):
        decode_layer(lambda s, m, t: (None, None), lambda h: h, 2, 5, 2, per_row, "cpu", [5, 3])


def test_the_gpu_guidance_pass_equals_two_padded_passes(nets):
    """Fast mode on GPU runs a padded batch's conditional and unconditional passes as one forward."""
    est = nets["t2s"].diff_estimator
    g = torch.Generator().manual_seed(3)
    width = est.config.hidden_size
    cond, uncond = torch.randn(2, 9, width, generator=g), torch.randn(2, 5, width, generator=g)
    cond_padding = torch.arange(9)[None] < torch.tensor([[9], [7]])
    uncond_padding = torch.arange(5)[None] < torch.tensor([[5], [3]])
    t = torch.tensor([0.3, 0.8])
    with torch.no_grad():
        time_emb = est.time_embedding(t)
        both = est.guidance_pass(cond, uncond, t, time_emb, cond_padding, uncond_padding)
        alone = est(cond, t, cond_padding, "sdpa", time_emb), est(uncond, t, uncond_padding, "sdpa", time_emb)
    torch.testing.assert_close(both[:2][cond_padding], alone[0][cond_padding], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(both[2:, :5][uncond_padding], alone[1][uncond_padding], atol=1e-5, rtol=1e-5)
