"""The shared transformer block: padding, attention back-ends, time embedding."""

import torch

from maskgct.transformer import DiffTransformer, TransformerConfig, timestep_embedding


def stack():
    torch.manual_seed(0)
    net = DiffTransformer(TransformerConfig(hidden_size=32, num_layers=2, num_heads=4))
    for norm in [m for m in net.modules() if hasattr(m, "to_weight")]:
        torch.nn.init.normal_(norm.to_weight.weight, std=0.1)  # make the time condition matter
    return net.eval()


def test_padded_rows_match_unpadded_runs(one_thread):
    net = stack()
    x, t = torch.randn(2, 9, 32), torch.tensor([0.3, 0.7])
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 6:] = 0
    with torch.no_grad():
        for attention in ("eager", "sdpa"):
            batched = net(x, t, mask, attention)
            alone = net(x[1:, :6], t[1:], None, attention)
            assert (batched[1, :6] - alone[0]).abs().max() < 1e-5
            assert (batched[0] - net(x[:1], t[:1], None, attention)[0]).abs().max() < 1e-5


def test_sdpa_is_close_to_eager_and_time_matters(one_thread):
    net = stack()
    x = torch.randn(1, 7, 32)
    with torch.no_grad():
        eager = net(x, torch.tensor([0.5]))
        assert (net(x, torch.tensor([0.5]), attention="sdpa") - eager).abs().max() < 1e-5
        assert (net(x, torch.tensor([0.9])) - eager).abs().max() > 1e-3


def test_timestep_embedding_is_sin_then_cos():
    emb = timestep_embedding(torch.tensor([0.0, 1.0]), 8)
    assert torch.equal(emb[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    assert torch.allclose(
        emb[1, :4], torch.sin(torch.exp(torch.arange(4) * -(torch.log(torch.tensor(1e4)) / 3)))
    )
