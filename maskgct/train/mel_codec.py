"""Training the mel codec (``task=mel_codec``): compress the HiFi-GAN log-mel through the residual VQ.

Batches: ``{"wav": Float(B, L) 24 kHz, ...}``, fixed-length segments (cropped here to whole 480-sample
frames). With ``augment_rates``, each batch is first resampled to one of those rates and read back as 24 kHz
(pitch, formants and tempo scaled together): a cheap way to make a few training voices stand for many.

Each step: encoder → residual VQ (a ``quantizer_dropout`` share of the batch keeps a random 1..N stages, so
the first stages learn to carry most) → decoder → predicted log-mel ``(B, 80, M)``, against the log-mel that
the frozen HiFi-GAN expects for the same audio resampled to 22050 Hz. No vocoder and no GAN in the loop: the
vocoder is pretrained, so matching its input is the whole task. Loss, logged as ``train/loss``:

    mel_weight · L1(log-mel) + commitment_weight · commitment + codebook_weight · codebook loss

(the VQ terms already carry the model's ``commitment`` / ``codebook_loss_weight`` factors). Codes unchosen
for ``restart_after`` steps are re-initialised from current encoder frames of their stage, so small corpora
keep the codebooks in use; ``train/codes_used`` (mean over stages, ``_min``, and ``_q<i>`` per stage) is the
share of each codebook chosen in the last ``maskgct.train.acoustic_codec.USAGE_WINDOW`` steps.

``self.net`` is the ``MelCodec`` itself (no weight norm), so ``export(dir)`` is its ``save_pretrained``; the
training-only state (step counter, code ages) lives in buffers of this module and travels in checkpoints,
and the RNG states (quantizer dropout, restarts, augmentation draws) in the training checkpoint's callbacks.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from maskgct.codecs.mel_codec import HOP_LENGTH, SAMPLE_RATE, MelCodec, MelCodecConfig, PolyphaseResampler
from maskgct.train.acoustic_codec import track_codebooks
from maskgct.train.optim import adamw_with_warmup
from maskgct.train.rng import ResumableRng

# Codebook usage (``train/codes_used``) counts the codes chosen at least once in this many steps.


class MelCodecTask(ResumableRng, L.LightningModule):
    """LightningModule for the mel codec; ``model`` is a ``MelCodecConfig`` dict (conf/model/mel_codec_*)."""

    def __init__(
        self,
        model: dict,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        warmup_steps: int = 100,
        mel_weight: float = 1.0,
        commitment_weight: float = 1.0,
        codebook_weight: float = 1.0,
        restart_after: int = 0,
        augment_rates: tuple[int, ...] = (),
    ):
        super().__init__()
        # Plain containers (hydra passes DictConfig/ListConfig): checkpoints load with weights_only=True.
        model = OmegaConf.to_container(OmegaConf.create(model), resolve=True)
        betas = tuple(float(b) for b in betas)
        augment_rates = tuple(int(rate) for rate in augment_rates)
        self.save_hyperparameters()
        self.net = MelCodec(MelCodecConfig(**model))
        # Filters only (non-persistent buffers): nothing of the augmentation is saved.
        self.augmenters = nn.ModuleDict(
            {
                str(rate): PolyphaseResampler(SAMPLE_RATE, rate)
                for rate in augment_rates
                if rate != SAMPLE_RATE
            }
        )
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        # Per stage and code: the step that last chose it, -1 if none yet (usage and dead-code restarts).
        quantizers = self.net.quantizer.quantizers
        self.register_buffer("code_last_used", torch.full((len(quantizers), self.net.codebook_size), -1))
        # Each stage's latest (indices (B, T), z_e (B, D, T)), recorded by forward hooks: dead codes are
        # restarted from the projected residuals z_e, which the residual VQ does not return.
        self._stage_outputs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for stage, quantizer in enumerate(quantizers):
            quantizer.register_forward_hook(self._recorder(stage))

    def _recorder(self, stage: int):
        def record(module, inputs, outputs):
            self._stage_outputs[stage] = (outputs[3].detach(), outputs[4].detach())

        return record

    def configure_optimizers(self):
        hp = self.hparams
        return adamw_with_warmup(self.net.parameters(), hp.lr, hp.betas, hp.weight_decay, hp.warmup_steps)

    def _segment(self, batch: dict) -> torch.Tensor:
        wav = batch["wav"]
        if wav.ndim != 2:
            raise ValueError(f"batch['wav'] must be (B, L), got shape {tuple(wav.shape)}")
        length = wav.shape[-1] // HOP_LENGTH * HOP_LENGTH
        if length == 0:
            raise ValueError(f"training segments must be at least {HOP_LENGTH} samples long")
        return wav[:, None, :length].float()

    def _augment(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav (B, 1, L)`` resampled to one of ``augment_rates`` (drawn per batch) and read back as 24 kHz:
        pitch, formants and tempo all scale by ``24000 / rate``, so a few training voices stand for many.
        Cropped to whole frames, at most ``L`` samples."""
        rates = self.hparams.augment_rates
        if not rates:
            return wav
        rate = rates[int(torch.randint(len(rates), ()))]
        if rate == SAMPLE_RATE:
            return wav
        length = wav.shape[-1]
        wav = self.augmenters[str(rate)](wav[:, 0])[:, None]
        return wav[..., : min(wav.shape[-1], length) // HOP_LENGTH * HOP_LENGTH]

    def reconstruct(self, wav: torch.Tensor, n_quantizers: int | None = None):
        """``wav (B, 1, T · 480)`` → ``(predicted log-mel (B, 80, M), target log-mel (B, 80, M),
        commitment (B,), codebook loss (B,))``; in eval mode ``n_quantizers`` limits the stages used."""
        quantized, _, commit_loss, codebook_loss, _ = self.net.quantize(wav, n_quantizers)
        target = self.net.vocoder_mel(wav)
        return self.net.decoder(quantized, target.shape[-1]), target, commit_loss, codebook_loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        hp = self.hparams
        predicted, target, commit_loss, codebook_loss = self.reconstruct(self._augment(self._segment(batch)))
        mel_l1 = F.l1_loss(predicted, target)
        vq_loss = hp.commitment_weight * commit_loss.mean() + hp.codebook_weight * codebook_loss.mean()
        loss = hp.mel_weight * mel_l1 + vq_loss
        self._track_codebooks()
        self.steps += 1
        self.log("train/loss", loss, prog_bar=True)
        self.log_dict({"train/mel_l1": mel_l1, "train/vq_loss": vq_loss})
        return loss

    def _track_codebooks(self) -> None:
        used, restarted = track_codebooks(
            self.net.quantizer.quantizers,
            self._stage_outputs,
            self.code_last_used,
            int(self.steps),
            self.hparams.restart_after,
        )
        metrics = {"train/codes_used": used.mean(), "train/codes_used_min": used.min()}
        metrics.update({f"train/codes_used_q{stage}": share for stage, share in enumerate(used)})
        metrics["train/codes_restarted"] = float(restarted)
        self.log_dict(metrics)

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        predicted, target, _, _ = self.reconstruct(self._segment(batch))
        mel_l1 = F.l1_loss(predicted, target)
        self.log("val/mel_l1", mel_l1, prog_bar=True)
        return mel_l1

    def export(self, directory: str | Path) -> None:
        """Write the trained codec with ``MelCodec.save_pretrained`` (``load_acoustic_codec`` reads it)."""
        self.net.save_pretrained(directory)
