"""Recipe glue: the steps between trainings that turn trained networks into tools the next stage uses.

* ``init_w2v_bert``: a small random-weight w2v-BERT folder. With no network the real w2v-bert-2.0 cannot be
  fetched; a fixed random conformer over the same log-mel input still gives the semantic codec a stable,
  speech-dependent feature to quantise (that is all the demo needs; a real run points at w2v-bert-2.0).
* ``make_tokenizer``: w2v-BERT + statistics + trained semantic codec → a ``SemanticTokenizer`` folder.
* ``assemble``: tokenizer, acoustic codec, T2S and both S2A models → one ``MaskGCT.from_pretrained`` folder.
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


def make_tokenizer(
    w2v_bert: str | Path, stats: str | Path, codec_dir: str | Path, layer: int, out_dir: str | Path
):
    """Assemble a ``SemanticTokenizer.from_pretrained`` folder (w2v-BERT copied inside when it is local)."""
    from maskgct.codecs.semantic import SemanticCodec, SemanticTokenizer, W2vBertFeatures

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    w2v_bert = Path(w2v_bert)
    pointer = str(w2v_bert)
    if w2v_bert.is_dir():
        shutil.copytree(w2v_bert, out_dir / "w2v_bert", dirs_exist_ok=True)
        pointer = "w2v_bert"
    features = W2vBertFeatures.from_folder(w2v_bert, layer, stats)
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
) -> Path:
    """Copy the trained pieces (the duration model is optional) into one checkpoint folder and check that
    ``MaskGCT`` loads it."""
    from maskgct.api import MaskGCT, write_config

    out_dir = Path(out_dir)
    shutil.copytree(tokenizer_dir, out_dir, dirs_exist_ok=True)
    for source, names in (
        (acoustic_codec_dir, ("acoustic_encoder", "acoustic_decoder")),
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
    write_config(out_dir, None, "maskgct recipe")
    MaskGCT.from_pretrained(out_dir)
    return out_dir
