"""Recipe glue: the steps between trainings that turn trained networks into tools the next stage uses.

* ``init_w2v_bert``: a small random-weight w2v-BERT folder. With no network the real w2v-bert-2.0 cannot be
  fetched; a real run points at it. ``maskgct.train.w2v_bert_ctc`` then teaches it phones, so that its
  features are phonetic, as w2v-bert-2.0's layer 17 is.
* ``make_tokenizer``: w2v-BERT (or whisper) + statistics + trained semantic codec → a ``SemanticTokenizer``
  folder.
* ``assemble``: tokenizer, acoustic (or mel) codec, T2S and both S2A models → one ``MaskGCT.from_pretrained``
  folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from maskgct.constants import SEMANTIC_SAMPLE_RATE


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
        feature_size=80, num_mel_bins=80, sampling_rate=SEMANTIC_SAMPLE_RATE, stride=2, padding_value=1.0
    ).save_pretrained(out_dir)
    return out_dir


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
