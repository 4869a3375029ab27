"""Teach a small w2v-BERT stand-in phones: CTC on a data dir's transcripts, read from one conformer layer.

With no network the real w2v-bert-2.0 cannot be fetched, and a random stand-in's features are not phonetic:
quantised, they change code almost every frame (3.7 % of frames repeat the previous code on the synthetic
corpus), which no text-to-semantic model can learn to predict. A linear CTC head on conformer layer
``layer`` (the semantic layer) fixes that in a few hundred steps; the layers above it and the head are not
kept. ``python -m maskgct.data init-w2v-bert --ctc-data DIR`` runs it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from maskgct.constants import PHONE_VOCAB_SIZE, SEMANTIC_SAMPLE_RATE
from maskgct.progress import ProgressLines

BLANK = PHONE_VOCAB_SIZE  # the CTC blank: one class after the phones
SCORED_UTTERANCES = 256  # the phone error rate is reported on (up to) this many training utterances
# Progress lines on stderr: every this many training steps (with the mean loss of those steps), and every
# PROGRESS_EVERY * batch size utterances while the log-mel features are computed.
PROGRESS_EVERY = 25


def train_w2v_bert_ctc(
    folder: str | Path,
    data_dir: str | Path,
    layer: int,
    steps: int,
    lr: float = 5e-3,
    batch_size: int = 16,
    seed: int = 0,
    language: str = "en",
    progress_every: int = PROGRESS_EVERY,
) -> dict[str, float]:
    """Train the w2v-BERT in ``folder`` (HF format, overwritten) with a CTC phone classifier on the output
    of conformer layer ``layer``. Returns the first and last logged CTC loss and the final greedy phone
    error rate on (up to 256 of) the training data. ``progress_every`` 0: no progress lines."""
    from transformers import Wav2Vec2BertModel

    from maskgct.codecs.w2v_bert import feature_extractor
    from maskgct.data.datadir import read_datadir
    from maskgct.data.extract import utterances
    from maskgct.text import texts_to_ids

    torch.manual_seed(seed)
    folder = Path(folder)
    model = Wav2Vec2BertModel.from_pretrained(folder)
    model.config.num_hidden_layers = layer
    model.encoder.layers = model.encoder.layers[:layer]
    extractor = feature_extractor(folder)
    items = utterances(read_datadir(data_dir))
    phones = texts_to_ids([item.text for item in items], language)
    # The log-mel front end once per utterance (it normalises each utterance on its own, so padding later
    # gives what a padded batch through the extractor gives).
    rate = SEMANTIC_SAMPLE_RATE
    progress = ProgressLines("w2v-BERT CTC features", len(items), "utterances", progress_every * batch_size)
    fbanks = []
    for item in items:
        fbanks.append(
            extractor(item.audio(rate), sampling_rate=rate, return_tensors="pt")["input_features"][0]
        )
        progress.update(len(fbanks))
    head = torch.nn.Linear(model.config.hidden_size, PHONE_VOCAB_SIZE + 1)

    def batch_logits(indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities ``(B, T, V + 1)`` and frame counts ``(B,)`` of a padded batch."""
        lengths = torch.tensor([len(fbanks[i]) for i in indices])
        feats = torch.nn.utils.rnn.pad_sequence([fbanks[i] for i in indices], True, extractor.padding_value)
        mask = (torch.arange(feats.shape[1])[None] < lengths[:, None]).long()
        hidden = model(feats, attention_mask=mask).last_hidden_state
        return head(hidden).log_softmax(-1), lengths

    losses = _train(model, head, batch_logits, phones, steps, lr, batch_size, progress_every)
    error_rate = _phone_error_rate(batch_logits, phones, batch_size)
    model.save_pretrained(folder, safe_serialization=True)
    last = losses[-10:]
    return {"first_loss": losses[0], "last_loss": sum(last) / len(last), "phone_error_rate": error_rate}


def _train(model, head, batch_logits, phones, steps: int, lr: float, batch_size: int, progress_every: int):
    """``steps`` AdamW steps (one-cycle schedule, gradients clipped at 1) on random batches; the losses."""
    progress = ProgressLines("w2v-BERT CTC training", steps, "steps", progress_every)
    params = [*model.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.1)
    model.train()
    losses = []
    for _ in range(steps):
        indices = torch.randint(len(phones), (batch_size,)).tolist()
        log_probs, lengths = batch_logits(indices)
        targets = [torch.tensor(phones[i]) for i in indices]
        loss = torch.nn.functional.ctc_loss(
            log_probs.transpose(0, 1),
            torch.cat(targets),
            lengths,
            torch.tensor([len(t) for t in targets]),
            blank=BLANK,
            zero_infinity=True,
        )
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        recent = losses[-progress_every:] if progress_every else losses
        progress.update(len(losses), f", loss {sum(recent) / len(recent):.3f}")
    model.eval()
    return losses


@torch.no_grad()
def _phone_error_rate(batch_logits, phones: list[list[int]], batch_size: int) -> float:
    """Greedy CTC decoding of the first training utterances, scored against their phones."""
    from maskgct.eval.asr import error_counts

    errors = total = 0
    scored = min(len(phones), SCORED_UTTERANCES)
    for start in range(0, scored, batch_size):
        indices = list(range(start, min(start + batch_size, scored)))
        log_probs, lengths = batch_logits(indices)
        for i, row, length in zip(indices, log_probs.argmax(-1), lengths, strict=True):
            best = torch.unique_consecutive(row[:length])
            best = best[best != BLANK].tolist()
            counts = error_counts([str(p) for p in best], [str(p) for p in phones[i]])
            errors, total = errors + counts.errors, total + counts.reference_length
    return errors / total
