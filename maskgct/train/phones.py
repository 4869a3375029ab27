"""New phones for a new language: ``extra_phones=FILE`` (``conf/train.yaml``).

The phone tables of T2S and the duration model have ``PHONE_VOCAB_SIZE`` rows (1023 phone ids + the pad
id), and the official vocabulary (``maskgct/text/phones.json``) uses the first 363: the rows after it were
never trained. New phones take the ids after the official ones in file order, so no tensor changes shape,
a fine-tuned model still loads with ``from_pretrained`` and the official phones keep their rows
bit-identical. Each new row starts from something the model already understands instead of a random
vector it never saw in training:

    # FILE: one new phone a line, optionally with an existing phone whose row it copies
    ħ   h
    ʕ
    ɛ̃   ɛ

A phone without a model row starts from the mean row of the official phones. The extended list (official
+ new, index = id) is written beside the exported model as ``phones.json``, in the package file's format.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from maskgct.checkpoint import CheckpointError
from maskgct.constants import PHONE_PAD_ID
from maskgct.text.inventory import phone_list, phone_to_id

PHONES_FILE = "phones.json"


def read_extra_phones(path: str | Path) -> list[tuple[str, str | None]]:
    """``[(new phone, model phone or None), ...]`` from ``path``; ``#`` starts a comment."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"extra_phones: {path} not found")
    known, entries = phone_to_id(), []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) > 2:
            raise CheckpointError(f"extra_phones: {path}:{number}: expected 'PHONE [MODEL_PHONE]'")
        phone, model = fields[0], fields[1] if len(fields) == 2 else None
        if phone in known or phone in (p for p, _ in entries):
            raise CheckpointError(f"extra_phones: {path}:{number}: {phone!r} is already in the vocabulary")
        if model is not None and model not in known:
            raise CheckpointError(f"extra_phones: {path}:{number}: {model!r} is not an official phone")
        entries.append((phone, model))
    free = PHONE_PAD_ID - len(phone_list())
    if len(entries) > free:
        raise CheckpointError(f"extra_phones: {path} lists {len(entries)} phones; {free} ids are free")
    return entries


@torch.no_grad()
def extend_phone_table(table: nn.Embedding, entries: list[tuple[str, str | None]]) -> list[int]:
    """Initialise the rows of the new phones in ``table (PHONE_VOCAB_SIZE, C)``; returns their ids.

    The mean is taken before any row is written, so it is the official phones' whatever the order.
    """
    official = len(phone_list())
    mean = table.weight[:official].mean(dim=0)
    ids = list(range(official, official + len(entries)))
    for index, (_, model) in zip(ids, entries, strict=True):
        table.weight[index] = mean if model is None else table.weight[phone_to_id()[model]]
    return ids


def phone_table(net: nn.Module) -> nn.Embedding:
    """The phone table of T2S / the duration model (``phone_emb``)."""
    table = getattr(net, "phone_emb", None)
    if not isinstance(table, nn.Embedding):
        raise CheckpointError(f"extra_phones: {type(net).__name__} embeds no phones (T2S and duration do)")
    return table


def write_phone_list(directory: str | Path, entries: list[tuple[str, str | None]]) -> Path:
    """``directory/phones.json``: the official phones followed by the new ones (index = id)."""
    phones = [*phone_list(), *(phone for phone, _ in entries)]
    out = Path(directory) / PHONES_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    comment = f"MaskGCT phone vocabulary + {len(entries)} new phones: the list index is the phone id."
    out.write_text(json.dumps({"comment": comment, "phones": phones}, ensure_ascii=False, indent=1) + "\n")
    return out
