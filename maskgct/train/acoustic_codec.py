"""Training the acoustic codec (``task=acoustic_codec``) as a GAN, DAC-style.

Batches: ``{"wav": Float(B, L) 24 kHz, ...}``, fixed-length segments (cropped here to whole frames).

Each step (manual optimisation, two optimisers):

1. discriminator: least-squares loss, real vs generated audio (from ``adversarial_start`` generator steps);
2. generator (encoder + residual VQ with quantizer dropout + vocoder):
   ``mel_weight · multi-scale mel L1 + adversarial_weight · LS-GAN + feature_matching_weight · FM
   + commitment_weight · commitment + codebook_weight · codebook loss`` (the VQ losses already carry the
   model's ``commitment`` / ``codebook_loss_weight`` factors), logged as ``train/loss``.

``self.net`` is the ``AcousticCodec`` with its convolutions weight-normalised (``apply_weight_norm``), so its
state dict has parametrisation keys; ``export_network()`` gives the folded copy that ``save_network`` and
``AcousticCodec.save_pretrained`` write (``export(dir)`` does the latter). The RNG states travel in the
lightning checkpoint (``ResumableRng``), so a resumed run draws the same quantizer-dropout numbers as an
unbroken one.
Note that lightning counts ``global_step`` per optimiser step, i.e. twice per batch once the discriminator
trains; ``generator_steps`` counts batches.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.nn.utils import parametrize

from maskgct.checkpoint import load_strict
from maskgct.codecs.acoustic_codec import SAMPLE_RATE, AcousticCodec, AcousticCodecConfig
from maskgct.codecs.discriminators import DiscriminatorConfig, Discriminators
from maskgct.codecs.losses import (
    MultiScaleMelLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from maskgct.codecs.modules import apply_weight_norm
from maskgct.train.freeze import trainable
from maskgct.train.rng import ResumableRng

# Codebook usage (``train/codes_used``) counts the codes chosen at least once in this many generator steps.
USAGE_WINDOW = 50


def _fan_in_init(module: nn.Module, gain: float) -> None:
    """Draw every conv weight from N(0, gain²/fan_in) with zero bias.

    The reference init (truncated normal, std 0.02) shrinks the signal at every conv by about
    ``0.02²·fan_in``; with the tiny config's 8-64 channels the waveform is ~1e-3 of the encoder output by the
    last block, the output is a constant offset, every frame has the same direction and L2-normalised code
    lookup picks one code per stage. A fan-in scaled init keeps the waveform in the latent from step 0.
    """
    for conv in module.modules():
        if isinstance(conv, nn.Conv1d):
            nn.init.normal_(conv.weight, std=gain / conv.weight[0].numel() ** 0.5)
            nn.init.zeros_(conv.bias)


@torch.no_grad()
def track_codebooks(
    quantizers, stage_outputs: dict, code_last_used: torch.Tensor, step: int, restart_after: int
) -> tuple[torch.Tensor, int]:
    """Note the codes this batch chose (``stage_outputs[stage] = (indices, z_e)``), and restart the codes idle
    for ``restart_after`` steps (if > 0) from random ``z_e`` frames of their stage in this batch.

    Returns each stage's share of codes chosen in the last ``USAGE_WINDOW`` steps ``(N,)`` and the number of
    codes restarted. Shared by the GAN codec and the mel codec tasks.
    """
    restarted = 0
    for stage, quantizer in enumerate(quantizers):
        indices, z_e = stage_outputs[stage]
        code_last_used[stage, indices.flatten().unique()] = step
        if restart_after <= 0:
            continue
        # Every `restart_after` idle steps, so a restarted code that is still never chosen is retried
        # while its idle time keeps counting (and `codes_used` reports only codes actually chosen).
        idle = step - code_last_used[stage]
        dead = ((idle >= restart_after) & (idle % restart_after == 0)).nonzero().flatten()
        if len(dead) == 0:
            continue
        frames = z_e.transpose(1, 2).reshape(-1, z_e.shape[1])
        picks = torch.randint(0, frames.shape[0], (len(dead),), device=frames.device)
        quantizer.codebook.weight[dead] = frames[picks].to(quantizer.codebook.weight.dtype)
        restarted += len(dead)
    recent = (code_last_used >= 0) & (code_last_used > step - USAGE_WINDOW)
    return recent.float().mean(1), restarted


class AcousticCodecTask(ResumableRng, L.LightningModule):
    """LightningModule for the acoustic codec.

    ``model``: ``{"encoder": {...}, "decoder": {...}, "discriminator": {...}}`` (conf/model/acoustic_codec_*).
    """

    def __init__(
        self,
        model: dict,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.8, 0.99),
        lr_gamma: float = 0.999996,
        grad_clip: float = 1000.0,
        mel_window_lengths: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048),
        mel_n_mels: tuple[int, ...] = (5, 10, 20, 40, 80, 160, 320),
        mel_weight: float = 15.0,
        adversarial_weight: float = 1.0,
        feature_matching_weight: float = 2.0,
        commitment_weight: float = 1.0,
        codebook_weight: float = 1.0,
        adversarial_start: int = 0,
        restart_after: int = 0,
        encoder_init_gain: float | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        # hydra passes a DictConfig; plain containers keep the exported JSON config serialisable.
        model = OmegaConf.to_container(OmegaConf.create(model), resolve=True)
        codec_config = AcousticCodecConfig(encoder=model.get("encoder", {}), decoder=model.get("decoder", {}))
        codec = AcousticCodec(codec_config)
        if encoder_init_gain is not None:
            _fan_in_init(codec.encoder, encoder_init_gain)
        self.net = apply_weight_norm(codec)
        self.discriminator = Discriminators(DiscriminatorConfig(**model.get("discriminator", {})))
        self.mel_loss = MultiScaleMelLoss(SAMPLE_RATE, list(mel_window_lengths), list(mel_n_mels))
        # Batches seen by the generator; a buffer so it is saved and restored with the weights.
        self.register_buffer("generator_steps", torch.zeros((), dtype=torch.long))
        # Per stage and code: the generator step that last chose it, -1 if none yet (usage, dead codes).
        quantizers = self.net.decoder.quantizer.quantizers
        codebook_size = quantizers[0].codebook.num_embeddings
        self.register_buffer("code_last_used", torch.full((len(quantizers), codebook_size), -1))
        # Each stage's latest (indices (B, T), z_e (B, D, T)), recorded by forward hooks: the residual VQ
        # returns only the codes, and dead codes are restarted from the projected residuals z_e.
        self._stage_outputs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for stage, quantizer in enumerate(quantizers):
            quantizer.register_forward_hook(self._recorder(stage))

    def _recorder(self, stage: int):
        def record(module, inputs, outputs):
            self._stage_outputs[stage] = (outputs[3].detach(), outputs[4].detach())

        return record

    def _track_codebooks(self) -> None:
        used, restarted = track_codebooks(
            self.net.decoder.quantizer.quantizers, self._stage_outputs, self.code_last_used,
            int(self.generator_steps), self.hparams.restart_after,
        )  # fmt: skip
        self.log_dict(
            {
                "train/codes_used": used.mean(),
                "train/codes_used_min": used.min(),
                "train/codes_restarted": restarted,
            }
        )

    def configure_optimizers(self):
        hp = self.hparams
        # Frozen parts (maskgct.train.freeze, e.g. the encoder and quantizer) are left out.
        opt_g = torch.optim.AdamW(trainable(self.net), lr=hp.lr, betas=tuple(hp.betas))
        opt_d = torch.optim.AdamW(trainable(self.discriminator), lr=hp.lr, betas=tuple(hp.betas))
        schedulers = [torch.optim.lr_scheduler.ExponentialLR(opt, hp.lr_gamma) for opt in (opt_g, opt_d)]
        return [opt_g, opt_d], schedulers

    def _segment(self, batch: dict) -> torch.Tensor:
        wav = batch["wav"]
        if wav.ndim != 2:
            raise ValueError(f"batch['wav'] must be (B, L), got shape {tuple(wav.shape)}")
        hop = self.net.hop_length
        length = wav.shape[-1] // hop * hop
        if length == 0:
            raise ValueError(f"training segments must be at least {hop} samples long")
        return wav[:, None, :length].float()

    def reconstruct(self, wav: torch.Tensor):
        """``wav (B, 1, L)`` → ``(reconstruction (B, 1, L), commitment (B,), codebook loss (B,))``."""
        quantized, _, commit_loss, codebook_loss, _ = self.net.decoder.quantize(self.net.encoder(wav))
        return self.net.decoder(quantized), commit_loss, codebook_loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        sched_g, sched_d = self.lr_schedulers()
        wav = self._segment(batch)
        recon, commit_loss, codebook_loss = self.reconstruct(wav)
        adversarial = int(self.generator_steps) >= hp.adversarial_start

        if adversarial:
            with self.toggled_optimizer(opt_d):
                loss_d = discriminator_loss(self.discriminator(wav), self.discriminator(recon.detach()))
                opt_d.zero_grad()
                self.manual_backward(loss_d)
                self.clip_gradients(opt_d, gradient_clip_val=hp.grad_clip, gradient_clip_algorithm="norm")
                opt_d.step()
                sched_d.step()
            self.log("train/discriminator_loss", loss_d)

        with self.toggled_optimizer(opt_g):
            mel_loss = self.mel_loss(recon, wav)
            vq_loss = hp.commitment_weight * commit_loss.mean() + hp.codebook_weight * codebook_loss.mean()
            loss = hp.mel_weight * mel_loss + vq_loss
            if adversarial:
                real, fake = self.discriminator(wav), self.discriminator(recon)
                adv_loss = generator_adversarial_loss(fake)
                fm_loss = feature_matching_loss(real, fake)
                loss = loss + hp.adversarial_weight * adv_loss + hp.feature_matching_weight * fm_loss
                self.log_dict({"train/adversarial_loss": adv_loss, "train/feature_matching_loss": fm_loss})
            opt_g.zero_grad()
            self.manual_backward(loss)
            self.clip_gradients(opt_g, gradient_clip_val=hp.grad_clip, gradient_clip_algorithm="norm")
            opt_g.step()
            sched_g.step()
        self._track_codebooks()
        self.generator_steps += 1
        self.log("train/loss", loss, prog_bar=True)
        self.log_dict({"train/mel_loss": mel_loss, "train/vq_loss": vq_loss})
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        wav = self._segment(batch)
        recon, _, _ = self.reconstruct(wav)
        mel_loss = self.mel_loss(recon, wav)
        self.log("val/mel_loss", mel_loss, prog_bar=True)
        return mel_loss

    def export_network(self) -> AcousticCodec:
        """A copy of the codec with weight norm folded (plain ``.weight`` keys), in eval mode, on the CPU."""
        state = {k: v for k, v in self.net.state_dict().items() if ".parametrizations." not in k}
        for name, module in self.net.named_modules():
            if parametrize.is_parametrized(module, "weight"):
                state[f"{name}.weight"] = module.weight  # computed by the parametrisation: g · v / ‖v‖
        state = {k: v.detach().cpu() for k, v in state.items()}
        return load_strict(AcousticCodec(self.net.config), state, "training codec").eval()

    def export(self, directory: str | Path) -> None:
        """Write the trained codec with ``AcousticCodec.save_pretrained`` (``from_pretrained`` reads it)."""
        self.export_network().save_pretrained(directory)
