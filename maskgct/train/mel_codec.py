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

Semantic-conditioned decoding (``maskgct.codecs.mel_codec``): ``semantic_tokenizer`` names the checkpoint
folder whose frozen tokenizer gives each segment's semantic tokens (those of the dumps S2A and T2S train
on); giving it turns the option on, and the model's ``semantic_codebook_size`` defaults to the tokenizer's.
A ``semantic_dropout`` share of the batch is decoded from its codes alone, as before; the rest from the
semantic tokens and the first ``semantic_quantizers`` code layers, of which a share drawn in
``[0, code_swap)`` of the frames take the codes of other frames of the same segment (the same voice saying
something else, as S2A's mistakes are), so the decoder learns to take the words from the semantic tokens
and the voice from the codes. Train it with ``freeze=[encoder,quantizer]``: the codes, and so the token
dumps and S2A, stay valid.

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

from maskgct.codecs.mel_codec import (
    HOP_LENGTH,
    SAMPLE_RATE,
    MelCodec,
    MelCodecConfig,
    PolyphaseResampler,
    fit_frames,
)
from maskgct.codecs.semantic import SemanticTokenizer
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
        cooldown_steps: int = 0,
        mel_weight: float = 1.0,
        commitment_weight: float = 1.0,
        codebook_weight: float = 1.0,
        restart_after: int = 0,
        augment_rates: tuple[int, ...] = (),
        semantic_tokenizer: str | None = None,
        semantic_dropout: float = 0.2,
        code_swap: float = 0.9,
    ):
        super().__init__()
        # Plain containers (hydra passes DictConfig/ListConfig): checkpoints load with weights_only=True.
        model = OmegaConf.to_container(OmegaConf.create(model), resolve=True)
        # Frozen and outside the module tree: neither trained nor saved in checkpoints.
        self._tokenizer = (
            [SemanticTokenizer.from_pretrained(semantic_tokenizer)] if semantic_tokenizer else []
        )
        if self._tokenizer:
            # The decoder reads this tokenizer's tokens: its codebook size, unless the model names it.
            vocab = self._tokenizer[0].codec.config.codebook_size
            if model.setdefault("semantic_codebook_size", 0) in (0, vocab):
                model["semantic_codebook_size"] = vocab
            else:
                raise ValueError(
                    f"the model's semantic_codebook_size ({model['semantic_codebook_size']}) is not the "
                    f"codebook size of task.semantic_tokenizer ({vocab})"
                )
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
        if self.net.reads_semantic and not self._tokenizer:
            raise ValueError(
                "a model with semantic_codebook_size > 0 needs task.semantic_tokenizer (a checkpoint folder)"
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
        return adamw_with_warmup(self.net.parameters(), hp, self.trainer.max_steps)

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
        commitment (B,), codebook loss (B,))``; in eval mode ``n_quantizers`` limits the stages used.
        A semantic-conditioned model decodes part of the batch with the semantic tokens (module docstring;
        in eval mode all of it, without swapped frames)."""
        quantized, codes, commit_loss, codebook_loss, _ = self.net.quantize(wav, n_quantizers)
        target = self.net.vocoder_mel(wav)
        if self.net.reads_semantic:
            codes = codes.permute(1, 2, 0)
            if self.training:
                codes = swap_frames(codes, self.hparams.code_swap)
            with_semantic = self.net.latent(codes, self._semantic(wav, codes.shape[1]))
            keep = torch.ones(len(wav), 1, 1, dtype=torch.bool, device=wav.device)
            if self.training:
                keep = torch.rand(len(wav), 1, 1, device=wav.device) >= self.hparams.semantic_dropout
            quantized = torch.where(keep, with_semantic, quantized)
        return self.net.decoder(quantized, target.shape[-1]), target, commit_loss, codebook_loss

    @torch.no_grad()
    def _semantic(self, wav: torch.Tensor, frames: int) -> torch.Tensor:
        """The frozen tokenizer's tokens of ``wav (B, 1, L)`` at 24 kHz, fitted to ``frames``: Long(B, T)."""
        tokens = self._tokenizer[0].tokenize_batch(list(wav[:, 0].cpu()), SAMPLE_RATE)
        return torch.stack([fit_frames(t, frames) for t in tokens]).to(wav.device)

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


def swap_frames(codes: torch.Tensor, max_share: float) -> torch.Tensor:
    """``codes (B, T, N)`` with a share drawn in ``[0, max_share)`` of each segment's frames replaced by the
    codes of random frames of the same segment (same voice, other words)."""
    batch, frames, _ = codes.shape
    share = torch.rand(batch, 1, device=codes.device) * max_share
    swap = torch.rand(batch, frames, device=codes.device) < share
    source = torch.randint(frames, (batch, frames), device=codes.device)
    shuffled = torch.gather(codes, 1, source[..., None].expand_as(codes))
    return torch.where(swap[..., None], shuffled, codes)
