"""Several requests of different lengths decoded together: T2S and S2A over a padded batch.

Request i has a prefix of K_i conditioning rows (T2S: phones and prompt tokens; S2A: the prompt's codes)
and a target of T_i frames. The batch holds each row's ``[prefix | target]`` left-aligned and padded to
the longest (so every row keeps positions 0.. and sees the rotary phases it sees alone), with a key mask
over the padding; the targets form a (B, max T) block for the sampler. Each request brings its own
random generator, and ``maskgct.sampler.decode_layer`` keeps each row's guidance statistics, draws and
re-mask schedule to its own rows.

* fast mode: one padded forward per pass for the whole batch (the throughput path).
* reference mode: each row's own unpadded passes, the official computation: a padded eager pass is not
  bit-identical to the unpadded one (~2e-6 at the default model's size on a Xeon: other GEMM blocking), and
  reference mode promises the reference's tokens. Everything else is the batched path, so each request's
  tokens equal ``T2S.generate`` / ``S2A.generate`` of it alone with the same generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from maskgct.s2a import S2A
from maskgct.sampler import Decoding, decode_layer, guided_passes
from maskgct.t2s import T2S
from maskgct.transformer import DiffTransformer

if TYPE_CHECKING:  # maskgct.api imports this module
    from maskgct.api import MaskGCT, Plan


def pad_rows(rows: Sequence[torch.Tensor], length: int) -> torch.Tensor:
    """[(1, n_i, C)] -> (B, length, C), zero-padded at the end."""
    return torch.cat([F.pad(r, (0, 0, 0, length - r.shape[1])) for r in rows])


class PaddedRows:
    """The layout of one padded batch: prefixes [(1, K_i, C)] and target lengths T_i.

    ``static`` (B, L, C) holds the prefixes; ``positions`` Long(B, T) the target rows' positions (padding
    entries repeat the last one); ``valid`` Bool(B, T) and ``padding`` Bool(B, L) mark the real rows.
    """

    def __init__(self, prefixes: Sequence[torch.Tensor], lengths: Sequence[int]):
        self.prefixes, self.lengths = list(prefixes), list(lengths)
        starts = [p.shape[1] for p in self.prefixes]
        device = self.prefixes[0].device
        self.target_len = max(self.lengths)
        total = [k + n for k, n in zip(starts, self.lengths, strict=True)]
        self.static = pad_rows(self.prefixes, max(total))
        frames = torch.arange(self.target_len, device=device)
        lengths_t = torch.tensor(self.lengths, device=device)
        self.valid = frames[None] < lengths_t[:, None]
        self.positions = torch.tensor(starts, device=device)[:, None] + torch.minimum(
            frames[None], lengths_t[:, None] - 1
        )
        self.padding = (
            torch.arange(max(total), device=device)[None] < torch.tensor(total, device=device)[:, None]
        )

    def assemble(self, target: torch.Tensor) -> torch.Tensor:
        """(B, T, C) target rows -> (B, L, C) conditional input: the prefixes with the targets after them."""
        x = self.static.clone()
        batch_rows = torch.arange(len(self.lengths), device=x.device)[:, None].expand_as(self.positions)
        x[batch_rows[self.valid], self.positions[self.valid]] = target[self.valid].to(x.dtype)
        return x


def padded_hidden_fn(est: DiffTransformer, rows: PaddedRows, target_fn, decoding: Decoding, cond_extra=None,
                     uncond_extra=None):  # fmt: skip
    """The sampler's ``hidden_fn`` for a padded batch. ``target_fn(seq, mask)`` -> (B, T, C) target rows;
    cond_extra [(1, L_i, C)] is added to each row's whole conditional input and uncond_extra [(1, T_i, C)]
    to its unconditional one (S2A's condition; None for T2S)."""
    extra = None if cond_extra is None else pad_rows(cond_extra, rows.static.shape[1])
    uncond_add = None if uncond_extra is None else pad_rows(uncond_extra, rows.target_len)

    def hidden_fn(seq, mask, t):
        target = target_fn(seq, mask)
        if decoding.mode != "reference":
            cond_input = rows.assemble(target) if extra is None else rows.assemble(target) + extra
            uncond_input = target if uncond_add is None else target + uncond_add
            return guided_passes(est, cond_input, uncond_input, t, rows.positions, slice(None), decoding,
                                 rows.padding, rows.valid)  # fmt: skip
        conds, unconds = [], []
        for i, (prefix, n) in enumerate(zip(rows.prefixes, rows.lengths, strict=True)):
            own = target[i : i + 1, :n]
            cond_input = torch.cat([prefix, own], dim=1)
            uncond_input = own
            if extra is not None:
                cond_input, uncond_input = cond_input + cond_extra[i], own + uncond_extra[i]
            k = prefix.shape[1]
            cond, uncond = guided_passes(est, cond_input, uncond_input, t[i : i + 1], slice(k, k + n),
                                         slice(0, n), decoding)  # fmt: skip
            conds.append(cond)
            unconds.append(uncond)
        return pad_rows(conds, rows.target_len), (
            None if unconds[0] is None else pad_rows(unconds, rows.target_len)
        )

    return hidden_fn


@torch.no_grad()
def t2s_generate_batch(
    model: T2S,
    phone_ids: Sequence[torch.Tensor],
    prompt_semantic: Sequence[torch.Tensor],
    target_lens: Sequence[int],
    steps: int,
    decoding: Decoding,
) -> list[torch.Tensor]:
    """T2S for several requests: phone_ids [Long(P_i,)], prompt_semantic [Long(Tp_i,)], target_lens T_i;
    ``decoding.generator``: one generator per request. Returns [Long(T_i,)], each (in reference mode)
    equal to ``model.generate`` of that request alone with its generator."""
    batch = len(phone_ids)
    if not batch == len(prompt_semantic) == len(target_lens) == len(decoding.generator):
        raise ValueError("one phone sequence, prompt, target length and generator per request")
    est = model.diff_estimator
    prefixes = [
        torch.cat([est.cond_mlp(model.phone_emb(p[None])), model.cond_emb(s[None])], dim=1)
        for p, s in zip(phone_ids, prompt_semantic, strict=True)
    ]
    rows = PaddedRows(prefixes, target_lens)
    mask_token = model.mask_emb.weight[:1][:, None, :]
    cum = torch.zeros(batch, rows.target_len, model.config.hidden_size, device=rows.static.device)

    def target_fn(seq, mask):
        mask = mask[..., None]
        return cum + mask * mask_token + (~mask) * model.cond_emb(seq)

    hidden_fn = padded_hidden_fn(est, rows, target_fn, decoding)
    device = rows.static.device
    seq = decode_layer(
        hidden_fn, model.to_logit, batch, rows.target_len, steps, decoding, device, target_lens
    )
    return [seq[i, :n] for i, n in enumerate(target_lens)]


@torch.no_grad()
def s2a_generate_batch_layers(
    model: S2A,
    semantic: Sequence[torch.Tensor],
    acoustic_prompt: Sequence[torch.Tensor],
    steps: Sequence[int],
    decoding: Decoding,
    first_layers: Sequence[torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """``S2A.generate`` for several requests: semantic [Long(L_i,)] (prompt ++ target), acoustic_prompt
    [Long(Ta_i, >= Q)], first_layers [Long(T_i, g)] or None. Returns [Long(T_i, Q)]."""
    num_q, batch = model.config.num_quantizer, len(semantic)
    lengths = [len(s) - len(p) for s, p in zip(semantic, acoustic_prompt, strict=True)]
    if min(lengths) < 1:
        raise ValueError("each semantic sequence must be longer than its acoustic prompt")
    est, device = model.diff_estimator, semantic[0].device
    prefixes = [sum(emb(p[None, :, q]) for q, emb in enumerate(model.token_emb)) for p in acoustic_prompt]
    rows = PaddedRows(prefixes, lengths)
    codes = torch.zeros(batch, rows.target_len, num_q, dtype=torch.long, device=device)
    cum = torch.zeros(batch, rows.target_len, model.config.hidden_size, device=device)
    done = 0
    if first_layers is not None:
        done = first_layers[0].shape[-1]
        for i, layers in enumerate(first_layers):
            codes[i, : lengths[i], :done] = layers
        for q in range(done):
            cum = cum + model.token_emb[q](codes[:, :, q])
    conds = [model.cond_emb(s[None]) for s in semantic]
    mask_token = model.mask_emb.weight[:1][:, None, :]
    for layer in range(done, num_q):
        embedding = model.token_emb[layer]
        layer_emb = model.layer_emb(torch.tensor([layer], device=device)).unsqueeze(1)
        cond_h = [est.cond_mlp(c + layer_emb) for c in conds]
        if decoding.mode == "reference":
            uncond_h = [
                est.cond_mlp((c + layer_emb)[:, len(p) :])
                for c, p in zip(conds, acoustic_prompt, strict=True)
            ]
        else:
            uncond_h = [h[:, len(p) :] for h, p in zip(cond_h, acoustic_prompt, strict=True)]
        above = mask_token * float(num_q - 1 - layer)

        def target_fn(seq, mask, embedding=embedding, above=above, cum=cum):
            mask = mask[..., None]
            return cum + mask * mask_token + (~mask) * embedding(seq) + above

        hidden_fn = padded_hidden_fn(est, rows, target_fn, decoding, cond_h, uncond_h)
        seq = decode_layer(
            hidden_fn, model.to_logits[layer], batch, rows.target_len, steps[layer], decoding, device, lengths
        )
        cum = cum + embedding(seq)
        codes[..., layer] = seq
    return [codes[i, :n] for i, n in enumerate(lengths)]


@torch.no_grad()
def s2a_generate_batch(
    s2a_1layer: S2A,
    s2a_full: S2A,
    semantic: Sequence[torch.Tensor],
    acoustic_prompt: Sequence[torch.Tensor],
    steps: Sequence[int],
    decoding: Decoding,
) -> list[torch.Tensor]:
    """``s2a_generate`` for several requests (lists as in ``s2a_generate_batch_layers``): [Long(T_i, Q)]."""
    layer0 = s2a_generate_batch_layers(s2a_1layer, semantic, acoustic_prompt, list(steps[:1]), decoding)
    return s2a_generate_batch_layers(s2a_full, semantic, acoustic_prompt, list(steps), decoding, layer0)


def clone_plans(tts: MaskGCT, plans: Sequence[Plan]) -> list[np.ndarray]:
    """``MaskGCT.clone_batch``'s batched path: planned one-chunk requests with the same mode and decoding
    options, T2S and S2A each in one padded batch, then each request's audio."""
    device, first = tts.device, plans[0]
    # One random stream per request: its seeded one, else one drawn from the global generator.
    generators = [
        p.generator or torch.Generator(device).manual_seed(int(torch.randint(2**62, ()))) for p in plans
    ]
    prompts = [p.prompt for p in plans]
    with tts._precision(first.mode):
        phones = [
            torch.tensor(prompt.phone_ids + plan.pieces[0][0], device=device)
            for prompt, plan in zip(prompts, plans, strict=True)
        ]
        targets = t2s_generate_batch(
            tts.t2s, phones, [p.semantic for p in prompts], [p.pieces[0][1] for p in plans],
            first.options.t2s_steps, first.options.t2s(first.mode, generators),
        )  # fmt: skip
        semantic = [torch.cat([p.semantic, s]) for p, s in zip(prompts, targets, strict=True)]
        codes = s2a_generate_batch(
            tts.s2a_1layer, tts.s2a_full, semantic, [p.acoustic for p in prompts], first.options.s2a_steps,
            first.options.s2a(first.mode, generators),
        )  # fmt: skip
    from maskgct.api import frame_semantic  # api imports this module

    return [tts.decode(c, frame_semantic(p, t)) for c, t, p in zip(codes, targets, prompts, strict=True)]
