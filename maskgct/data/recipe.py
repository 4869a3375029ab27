"""Recipe glue: the steps between trainings that turn trained networks into tools the next stage uses.

* ``init_w2v_bert``: a small random-weight w2v-BERT folder. With no network the real w2v-bert-2.0 cannot be
  fetched; a real run points at it.
* ``train_w2v_bert_ctc``: teach such a stand-in phones (CTC on a data dir's transcripts) so that its
  features are phonetic, as w2v-bert-2.0's layer 17 is. Random conformer features are not: quantised, they
  change code almost every frame (3.7 % of frames repeat the previous code on the synthetic corpus), which
  no text-to-semantic model can learn to predict.
* ``make_tokenizer``: w2v-BERT (or whisper) + statistics + trained semantic codec → a ``SemanticTokenizer``
  folder.
* ``assemble``: tokenizer, acoustic (or mel) codec, T2S and both S2A models → one ``MaskGCT.from_pretrained``
  folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch


def init_w2v_bert(out_dir: str | Path, hidden_size: int = 64, num_layers: int = 4, seed: int = 0) -> Path:
    """Write a random w2v-BERT (HF folder: config.json, model.safetensors, preprocessor_config.json)."""
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertConfig, Wav2Vec2BertModel

    config = Wav2Vec2BertConfig(
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden_size,
        output_hidden_size=hidden_size,
        feature_projection_input_dim=160,
        left_max_position_embeddings=64,
        right_max_position_embeddings=8,
        add_adapter=False,
    )
    torch.manual_seed(seed)
    model = Wav2Vec2BertModel(config).eval()
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    # w2v-bert-2.0's front end: 80 log-mel bins stacked in pairs (160 inputs), 16 kHz.
    SeamlessM4TFeatureExtractor(
        feature_size=80, num_mel_bins=80, sampling_rate=16000, stride=2, padding_value=1.0
    ).save_pretrained(out_dir)
    return out_dir


def train_w2v_bert_ctc(
    folder: str | Path,
    data_dir: str | Path,
    layer: int,
    steps: int,
    lr: float = 5e-3,
    batch_size: int = 16,
    seed: int = 0,
    language: str = "en",
) -> dict[str, float]:
    """Train the w2v-BERT in ``folder`` (HF format, overwritten) with a CTC phone classifier on the output
    of conformer layer ``layer``; the layers above it and the classifier are not kept. Returns the first and
    last logged CTC loss and the final greedy phone error rate on (up to 256 of) the training data."""
    from transformers import Wav2Vec2BertModel

    from maskgct.codecs.w2v_bert import feature_extractor
    from maskgct.data.datadir import read_datadir
    from maskgct.data.extract import utterances
    from maskgct.eval.asr import count_errors
    from maskgct.t2s import PHONE_VOCAB_SIZE
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
    fbanks = [
        extractor(item.audio(16000), sampling_rate=16000, return_tensors="pt")["input_features"][0]
        for item in items
    ]
    head = torch.nn.Linear(model.config.hidden_size, PHONE_VOCAB_SIZE + 1)  # last class: CTC blank
    params = [*model.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.1)

    def batch_logits(indices):
        lengths = torch.tensor([len(fbanks[i]) for i in indices])
        feats = torch.nn.utils.rnn.pad_sequence([fbanks[i] for i in indices], True, extractor.padding_value)
        mask = (torch.arange(feats.shape[1])[None] < lengths[:, None]).long()
        hidden = model(feats, attention_mask=mask).last_hidden_state
        return head(hidden).log_softmax(-1), lengths

    model.train()
    losses = []
    for _ in range(steps):
        indices = torch.randint(len(items), (batch_size,)).tolist()
        log_probs, lengths = batch_logits(indices)
        targets = [torch.tensor(phones[i]) for i in indices]
        loss = torch.nn.functional.ctc_loss(
            log_probs.transpose(0, 1),
            torch.cat(targets),
            lengths,
            torch.tensor([len(t) for t in targets]),
            blank=PHONE_VOCAB_SIZE,
            zero_infinity=True,
        )
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    model.eval()
    errors = words = 0
    with torch.no_grad():
        scored = min(len(items), 256)  # a sample is enough to report
        for start in range(0, scored, batch_size):
            indices = list(range(start, min(start + batch_size, scored)))
            log_probs, lengths = batch_logits(indices)
            for i, row, length in zip(indices, log_probs.argmax(-1), lengths, strict=True):
                best = torch.unique_consecutive(row[:length])
                best = best[best != PHONE_VOCAB_SIZE].tolist()
                counts = count_errors([str(p) for p in phones[i]], [str(p) for p in best])
                errors, words = errors + counts.errors, words + counts.reference_length
    model.save_pretrained(folder, safe_serialization=True)
    last = losses[-10:]
    return {"first_loss": losses[0], "last_loss": sum(last) / len(last), "phone_error_rate": errors / words}


def make_tokenizer(
    w2v_bert: str | Path | None,
    stats: str | Path,
    codec_dir: str | Path,
    layer: int | None,
    out_dir: str | Path,
    whisper: str | None = None,
):
    """Assemble a ``SemanticTokenizer.from_pretrained`` folder from exactly one front end: a w2v-BERT
    folder (copied inside when it is local) or a whisper model (``tiny.en`` is only named: its weights
    install with the package; a CTranslate2 folder is copied inside). ``layer`` ``None``: the front end's
    default (17 for w2v-BERT, the last for whisper)."""
    from maskgct.checkpoint import copy_w2v_bert
    from maskgct.codecs.ctranslate2 import PACKAGES
    from maskgct.codecs.semantic import SemanticTokenizer, load_features
    from maskgct.codecs.semantic_codec import SemanticCodec

    out_dir = Path(out_dir)
    features = load_features(w2v_bert, whisper, layer, stats)  # checks the pieces before writing
    source = whisper if whisper is not None else w2v_bert
    pointer = str(Path(source))
    out_dir.mkdir(parents=True, exist_ok=True)
    if Path(source).is_dir() and pointer not in PACKAGES:
        if whisper is None:
            pointer = copy_w2v_bert(source, out_dir)
        else:
            shutil.copytree(source, out_dir / "whisper", dirs_exist_ok=True)
            pointer = "whisper"
    codec = SemanticCodec.load(codec_dir, "semantic_codec", with_decoder=False)
    SemanticTokenizer(features, codec, pointer).save_pretrained(out_dir, pointer)
    return out_dir


def assemble(
    out_dir: str | Path,
    tokenizer_dir: str | Path,
    acoustic_codec_dir: str | Path,
    t2s_dir: str | Path,
    s2a_1layer_dir: str | Path,
    s2a_full_dir: str | Path,
    duration_dir: str | Path | None = None,
    half: bool = False,
) -> Path:
    """Copy the trained pieces (the duration model is optional) into one checkpoint folder and check that
    ``MaskGCT`` loads it. The acoustic codec is whichever ``acoustic_codec_dir`` holds (an ``AcousticCodec``
    or a ``MelCodec``); the other kind's files are removed from ``out_dir`` so that it names one codec.
    ``half``: the networks' weights are stored as float16 (what the repository ships)."""
    from maskgct.api import MaskGCT
    from maskgct.checkpoint import write_config
    from maskgct.codecs.acoustic_codec import DECODER_NAME, ENCODER_NAME, codec_networks
    from maskgct.codecs.mel_codec import NAME as MEL_CODEC_NAME

    out_dir = Path(out_dir)
    shutil.copytree(tokenizer_dir, out_dir, dirs_exist_ok=True)
    codec = codec_networks(acoustic_codec_dir)
    for name in {ENCODER_NAME, DECODER_NAME, MEL_CODEC_NAME} - set(codec):
        for suffix in (".json", ".safetensors"):
            (out_dir / f"{name}{suffix}").unlink(missing_ok=True)
    for source, names in (
        (acoustic_codec_dir, codec),
        (t2s_dir, ("t2s",)),
        (s2a_1layer_dir, ("s2a_1layer",)),
        (s2a_full_dir, ("s2a_full",)),
        *([(duration_dir, ("duration",))] if duration_dir else []),
    ):
        for name in names:
            for suffix in (".json", ".safetensors"):
                file = Path(source) / f"{name}{suffix}"
                if not file.is_file():
                    raise ValueError(f"{file} not found: train and export that network first")
                shutil.copy(file, out_dir / file.name)
    if half:
        networks = (*codec, "t2s", "s2a_1layer", "s2a_full", *(("duration",) if duration_dir else ()))
        for name in (*networks, "semantic_codec"):
            to_float16(out_dir / f"{name}.safetensors")
    write_config(out_dir, codec, None, "maskgct recipe")
    MaskGCT.from_pretrained(out_dir)
    return out_dir


def to_float16(path: Path) -> None:
    """Rewrite a network's safetensors file with its float32 tensors as float16 (half the size; the networks
    load them back into float32). Statistics files are left alone."""
    from safetensors.torch import save_file

    from maskgct.checkpoint import read_safetensors

    state = read_safetensors(path)
    state = {k: v.half() if v.dtype == torch.float32 else v for k, v in state.items()}
    save_file(state, str(path))
