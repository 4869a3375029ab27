"""Training the acoustic codec: the mel loss falls, resuming continues identically, exports load back."""

import lightning as L
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from maskgct.audio import load_audio
from maskgct.checkpoint import load_network, save_network
from maskgct.codecs.acoustic_codec import AcousticCodec
from maskgct.train.__main__ import CONF_DIR
from maskgct.train.acoustic_codec import AcousticCodecTask

TINY = yaml.safe_load(open(f"{CONF_DIR}/model/acoustic_codec_tiny.yaml"))


class Segments(torch.utils.data.Dataset):
    """One batch of fixed segments of the prompt, always the same (no shuffling, no randomness)."""

    def __init__(self, wav: torch.Tensor, starts: list[int], length: int):
        self.items = [wav[start : start + length] for start in starts]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return {"wav": self.items[index]}


@pytest.fixture(scope="module")
def prompt(fixtures):
    return torch.from_numpy(load_audio(fixtures / "prompt.wav", 24000))


def trainer(max_epochs: int, **kwargs) -> L.Trainer:
    return L.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def mel_loss(task: AcousticCodecTask, wav: torch.Tensor) -> float:
    task.eval()
    with torch.no_grad():
        recon, _, _ = task.reconstruct(wav[:, None])
        loss = task.mel_loss(recon, wav[:, None]).item()
    task.train()
    return loss


def test_training_lowers_the_mel_loss(prompt, one_thread):
    torch.manual_seed(0)
    # Reconstruction first, the discriminators join for the last 20 steps (both paths run).
    # Seen: after/before = 0.25 for seeds 0-2 in 100 steps (0.34-0.66 in 60 steps, hence 100).
    task = AcousticCodecTask(TINY, lr=3e-3, adversarial_start=80)
    data = Segments(prompt, [9600], 4800)
    before = mel_loss(task, data.items[0][None])
    fit = trainer(100, enable_checkpointing=False)
    fit.fit(task, torch.utils.data.DataLoader(data, batch_size=1))
    after = mel_loss(task, data.items[0][None])
    assert int(task.generator_steps) == 100
    assert {"train/loss", "train/discriminator_loss", "train/feature_matching_loss"} <= set(
        fit.callback_metrics
    )
    assert after / before < 0.5, (before, after)


def test_resume_continues_identically(prompt, tmp_path, one_thread):
    # Batch of 2 with quantizer dropout 0.5: one item uses a random number of stages, so the RNG matters.
    loader = torch.utils.data.DataLoader(Segments(prompt, [4800, 19200], 2400), batch_size=2)
    torch.manual_seed(1)
    straight = AcousticCodecTask(TINY, lr=1e-3, adversarial_start=2)
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, every_n_epochs=1)
    trainer(5, callbacks=[checkpoints]).fit(straight, loader)

    torch.manual_seed(2)  # a different init: everything must come from the checkpoint
    resumed = AcousticCodecTask(TINY, lr=1e-3, adversarial_start=2)
    middle = sorted(tmp_path.glob("epoch=2-*.ckpt"))
    assert len(middle) == 1
    trainer(5, enable_checkpointing=False).fit(resumed, loader, ckpt_path=str(middle[0]))

    assert int(resumed.generator_steps) == int(straight.generator_steps) == 5
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_export_folds_weight_norm_and_loads_back(prompt, tmp_path, one_thread):
    torch.manual_seed(0)
    task = AcousticCodecTask(TINY)
    assert any("parametrizations" in key for key in task.net.state_dict())
    exported = task.export_network()
    assert not any("parametrizations" in key for key in exported.state_dict())
    wav = prompt[None, None, :9600]
    task.net.eval()
    codes = task.net.encode(wav)
    assert torch.equal(exported.encode(wav), codes)

    save_network(exported, tmp_path / "whole", "acoustic_codec")
    whole = load_network(tmp_path / "whole", "acoustic_codec")
    task.export(tmp_path / "pretrained")
    pretrained = AcousticCodec.from_pretrained(tmp_path / "pretrained")
    for codec in (whole, pretrained):
        assert torch.equal(codec.encode(wav), codes)
        assert torch.allclose(codec.decode(codes), task.net.decode(codes), atol=1e-6)


def test_hydra_configs_build_tiny_and_official():
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        for size in ("tiny", "official"):
            cfg = compose("train", overrides=["task=acoustic_codec", f"model=acoustic_codec_{size}", "~data"])
            with torch.device("meta"):
                task = instantiate(cfg.task, model=OmegaConf.to_container(cfg.model), _recursive_=False)
            assert isinstance(task, AcousticCodecTask)
            if size == "official":
                encoder_params = sum(p.numel() for p in task.net.encoder.parameters())
                decoder_params = sum(p.numel() for p in task.net.decoder.parameters())
                # The official counts, where each weight-norm pair is g (one per out channel) + v.
                assert encoder_params == 42_540_224
                assert decoder_params == 128_196_162


def test_fan_in_init_spreads_the_codes(prompt, one_thread):
    # The reference init (std 0.02) leaves the tiny encoder's output a constant offset: one code per stage.
    wav = prompt[None, None, :48000]
    distinct = {}
    for gain in (None, 1.0):
        torch.manual_seed(0)
        task = AcousticCodecTask(TINY, encoder_init_gain=gain).eval()
        with torch.no_grad():
            codes = task.net.encode(wav)[0]
        distinct[gain] = min(len(codes[:, stage].unique()) for stage in range(codes.shape[1]))
    assert distinct[None] <= 2, distinct
    assert distinct[1.0] >= 16, distinct


def test_dead_codes_restart_from_encoder_frames(prompt, one_thread):
    torch.manual_seed(0)
    # restart_after=1: after one step every code the batch did not choose is re-drawn from its stage's z_e.
    task = AcousticCodecTask(TINY, lr=1e-3, adversarial_start=10, restart_after=1)
    before = [q.codebook.weight.detach().clone() for q in task.net.decoder.quantizer.quantizers]
    fit = trainer(1, enable_checkpointing=False)
    fit.fit(task, torch.utils.data.DataLoader(Segments(prompt, [4800, 19200], 4800), batch_size=2))
    restarted = 0
    for stage, quantizer in enumerate(task.net.decoder.quantizer.quantizers):
        indices, z_e = task._stage_outputs[stage]
        frames = z_e.transpose(1, 2).reshape(-1, z_e.shape[1])
        unused = torch.ones(quantizer.codebook.num_embeddings, dtype=torch.bool)
        unused[indices.unique()] = False
        for code in unused.nonzero().flatten():
            assert (quantizer.codebook.weight[code] == frames).all(1).any(), (stage, code)
        # The chosen codes only took an optimiser step.
        assert not torch.equal(quantizer.codebook.weight[~unused], before[stage][~unused])
        restarted += int(unused.sum())
    assert 0 < restarted == fit.callback_metrics["train/codes_restarted"]
    assert set(task.code_last_used.flatten().tolist()) == {-1, 0}
    assert 0 < fit.callback_metrics["train/codes_used"] < 1
