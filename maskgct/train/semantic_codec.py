"""Training the semantic codec (``task=semantic_codec``): reconstruct normalised w2v-BERT features via the VQ.

Batches are either audio, ``{"wav": Float(B, L) 16 kHz, "wav_lengths": Long(B)}``, turned into normalised
layer features on the fly by a frozen front end, or precomputed features ``{"features": Float(B, T, C)}``
(optionally with ``"feature_mask": (B, T)``, 1 = valid). The front end is w2v-BERT (``w2v_bert`` + ``stats``
in the task config) or whisper's encoder (``whisper: tiny.en`` + ``stats``, with ``model.hidden_size`` set
to whisper's width, 384 for tiny.en).

Loss = ``rec_weight`` · MSE(reconstruction, features) over valid frames
     + ``vq_weight`` · (commitment + codebook loss of the factorised VQ).
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch

from maskgct.codecs.semantic import load_features
from maskgct.codecs.semantic_codec import SemanticCodec, SemanticCodecConfig
from maskgct.train.optim import adamw_with_warmup
from maskgct.train.rng import ResumableRng


class SemanticCodecTask(ResumableRng, L.LightningModule):
    """LightningModule for the semantic codec; ``self.net`` is the ``SemanticCodec`` (with its decoder)."""

    def __init__(
        self,
        model: dict,
        w2v_bert: str | None = None,
        stats: str | None = None,
        output_layer: int | None = None,
        whisper: str | None = None,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        cooldown_steps: int = 0,
        rec_weight: float = 1.0,
        vq_weight: float = 1.0,
    ):
        super().__init__()
        # Plain Python types (hydra passes ListConfig/DictConfig), so checkpoints load with weights_only=True.
        model, betas = dict(model), tuple(float(b) for b in betas)
        self.save_hyperparameters()
        config = SemanticCodecConfig(**model)
        if not config.with_decoder:
            raise ValueError("training needs the codec's decoder: set with_decoder: true in the model config")
        if w2v_bert is not None and whisper is not None:
            raise ValueError("set either w2v_bert or whisper in the task config, not both")
        self.net = SemanticCodec(config)
        # The frozen front end (w2v-BERT or whisper, despite the name) is built on the first audio batch. It
        # is kept out of the module tree (plain __dict__ entry) so that its weights (600 M for w2v-BERT) are
        # neither trained nor written into every checkpoint.
        self.__dict__["w2v_features"] = None

    def _features_from_audio(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        hp = self.hparams
        if self.w2v_features is None:
            if (hp.w2v_bert is None and hp.whisper is None) or hp.stats is None:
                raise ValueError(
                    "audio batches need w2v_bert and stats (or whisper and stats) in the task config"
                )
            self.__dict__["w2v_features"] = load_features(hp.w2v_bert, hp.whisper, hp.output_layer, hp.stats)
        if self.w2v_features.std.device != self.device:
            self.w2v_features.to(self.device)
        wav = batch["wav"].float().cpu().numpy()
        lengths = batch.get("wav_lengths")
        lengths = [wav.shape[1]] * wav.shape[0] if lengths is None else lengths.tolist()
        return self.w2v_features([np.ascontiguousarray(w[:n]) for w, n in zip(wav, lengths, strict=True)])

    def batch_features(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features (B, T, C) zero at padding, mask (B, T) bool)`` from either batch format."""
        if "features" in batch:
            features = batch["features"].float()
            mask = batch.get("feature_mask")
            mask = (
                torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
                if mask is None
                else mask
            )
            mask = mask.bool()
        elif "wav" in batch:
            features, mask = self._features_from_audio(batch)
        else:
            raise ValueError(f"batch has neither 'features' nor 'wav' (keys: {sorted(batch)})")
        if features.shape[-1] != self.net.config.hidden_size:
            raise ValueError(
                f"features have {features.shape[-1]} channels, the codec {self.net.config.hidden_size}"
            )
        return features * mask.unsqueeze(-1), mask

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        features, mask = self.batch_features(batch)
        out = self.net(features)
        valid = mask.unsqueeze(-1).to(features.dtype)
        rec_loss = ((out.reconstruction - features).pow(2) * valid).sum() / (valid.sum() * features.shape[-1])
        commit_loss, codebook_loss = out.commit_loss.mean(), out.codebook_loss.mean()
        loss = self.hparams.rec_weight * rec_loss + self.hparams.vq_weight * (commit_loss + codebook_loss)
        # Share of the codebook used by this batch: a collapsing codebook shows up here first.
        usage = out.codes[mask].unique().numel() / self.net.config.codebook_size
        return {
            "loss": loss,
            "rec_loss": rec_loss,
            "commit_loss": commit_loss,
            "codebook_loss": codebook_loss,
            "codebook_usage": torch.tensor(usage, device=loss.device),
        }

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        losses = self.losses(batch)
        batch_size = len(batch.get("utt_ids", batch.get("features", batch.get("wav"))))
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=False, batch_size=batch_size)
        return losses["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        losses = self.losses(batch)
        batch_size = len(batch.get("utt_ids", batch.get("features", batch.get("wav"))))
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, batch_size=batch_size, sync_dist=True)

    def configure_optimizers(self):
        hp = self.hparams
        return adamw_with_warmup(self.net.parameters(), hp, self.trainer.max_steps)
