"""The shared iterative decoder: schedule, filtering, guidance, draw order."""

import math

import torch

from maskgct.sampler import Decoding, decode_layer, guide, remask_counts, time_grid, top_k_filter


def test_remask_schedule_matches_reference_counts():
    # MASKGCT_FACTS 4.2 (T=900, 25 steps) and the fixtures' T=40, 10 steps trace.
    assert remask_counts(25, 900, 1, "cpu")[:6] == [898, 892, 884, 871, 855, 836]
    assert remask_counts(25, 900, 1, "cpu")[-3:] == [112, 56, 0]
    assert [40] + remask_counts(10, 40, 1, "cpu")[:-1] == [40, 39, 38, 35, 32, 28, 23, 18, 12, 6]
    assert time_grid(4) == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_top_k_keeps_ceil_two_percent():
    logits = torch.randn(2, 3, 1024)
    kept = torch.isfinite(top_k_filter(logits, 0.98)).sum(-1)
    assert math.ceil(0.02 * 1024) == 21 and (kept == 21).all()


def test_per_sample_guidance_decouples_the_batch():
    cond, uncond = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    cond[1] *= 10
    alone = guide(cond[:1], uncond[:1], 2.5, 0.75, per_sample=False)
    assert torch.allclose(guide(cond, uncond, 2.5, 0.75, per_sample=True)[:1], alone, atol=1e-6)
    assert not torch.allclose(guide(cond, uncond, 2.5, 0.75, per_sample=False)[:1], alone, atol=1e-3)


def test_decode_fixes_tokens_and_draws_in_reference_order():
    """A fixed network: tokens once unmasked never change; the generator is advanced by exactly
    (B,T,V) + (B,T) uniforms per sampled step and (B,T) at the greedy last step."""
    batch, length, vocab, steps = 2, 6, 5, 3
    table = torch.randn(length, vocab)
    seen = []

    def hidden_fn(seq, mask, t):
        seen.append((seq.clone(), mask.clone()))
        return table.expand(batch, -1, -1) + 0.1 * seq[..., None], None

    gen = torch.Generator().manual_seed(0)
    decoding = Decoding(cfg=0.0, rescale_cfg=0.75, temperature=1.0, filter_thres=0.5, generator=gen)
    out = decode_layer(hidden_fn, lambda h: h, batch, length, steps, decoding, "cpu")
    for (seq_a, mask_a), (seq_b, _) in zip(seen, seen[1:], strict=False):
        assert torch.equal(seq_a[~mask_a], seq_b[~mask_a])
    assert torch.equal(out[~seen[-1][1]], seen[-1][0][~seen[-1][1]])
    expected = torch.Generator().manual_seed(0)
    for shape in [(batch, length, vocab), (batch, length)] * (steps - 1) + [(batch, length)]:
        torch.zeros(shape).uniform_(0, 1, generator=expected)
    assert torch.equal(gen.get_state(), expected.get_state())
