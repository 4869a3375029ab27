"""Freezing parts of a network for fine-tuning: ``freeze=[...]``, ``freeze_layers=N`` (``conf/train.yaml``).

A frozen parameter has ``requires_grad = False``: it gets no gradient, and the tasks build their
optimisers from ``trainable(...)`` only, so AdamW neither moves it nor decays it and keeps no state for
it. The freeze is applied every time a run is built (``requires_grad`` is not saved), so a resumed run
freezes what the run it continues froze and its optimiser state matches.

``freeze`` names parts of the task's network: a submodule path (``diff_estimator.cond_mlp``, ``encoder``)
or one of the ``ALIASES``. ``freeze_layers=N`` freezes the first N transformer layers (T2S, S2A, duration).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from torch import nn

from maskgct.checkpoint import CheckpointError

ALIASES = {
    # Token and phone tables of the transformers (not a codec's codebooks, which are its quantizer).
    "embeddings": "every nn.Embedding outside a quantizer",
    # A codec's residual VQ: frozen with its encoder, a fine-tuned decoder keeps reading the same codes.
    "quantizer": "the codec's residual VQ (quantizer, or decoder.quantizer in the GAN codec)",
}


def resolve(net: nn.Module, part: str) -> list[nn.Module]:
    """The modules of ``net`` that ``part`` (an alias or a submodule path) names."""
    if part == "embeddings":
        found = [m for n, m in net.named_modules() if isinstance(m, nn.Embedding) and "quantizer" not in n]
    elif part == "quantizer":
        found = [m for n, m in net.named_modules() if n in ("quantizer", "decoder.quantizer")]
    else:
        try:
            found = [net.get_submodule(part)]
        except AttributeError:
            found = []
    if not found:
        children = ", ".join(name for name, _ in net.named_children())
        raise CheckpointError(
            f"freeze: {type(net).__name__} has no part {part!r} "
            f"(aliases: {', '.join(ALIASES)}; submodules: {children})"
        )
    return found


def first_layers(net: nn.Module, count: int) -> list[nn.Module]:
    """The first ``count`` layers of the network's transformer (``diff_estimator.layers``)."""
    layers = getattr(getattr(net, "diff_estimator", None), "layers", None)
    if layers is None:
        raise CheckpointError(f"freeze_layers: {type(net).__name__} has no transformer layers")
    if not 0 <= count <= len(layers):
        raise CheckpointError(f"freeze_layers={count}: {type(net).__name__} has {len(layers)} layers")
    return list(layers[:count])


def apply_freeze(module: nn.Module, parts: Sequence[str] = (), layers: int = 0) -> int:
    """Freeze ``parts`` and the first ``layers`` layers of ``module.net``; returns the frozen parameter
    count. A task whose whole network would be frozen, or that restarts dead codes of a frozen quantizer
    (which would change the codes), is refused."""
    if not parts and not layers:
        return 0
    net = module.net
    frozen = [m for part in parts for m in resolve(net, part)] + (first_layers(net, layers) if layers else [])
    if "quantizer" in parts and getattr(module.hparams, "restart_after", 0) > 0:
        raise CheckpointError("freeze: a frozen quantizer keeps its codes; set task.restart_after=0")
    for sub in frozen:
        sub.requires_grad_(False)
    if not trainable(net):
        raise CheckpointError(f"freeze: nothing of {type(net).__name__} is left to train")
    return sum(p.numel() for p in net.parameters() if not p.requires_grad)


def trainable(parameters: nn.Module | Iterable[nn.Parameter]) -> list[nn.Parameter]:
    """The parameters that train (``requires_grad``): what an optimiser is built from."""
    if isinstance(parameters, nn.Module):
        parameters = parameters.parameters()
    return [p for p in parameters if p.requires_grad]
