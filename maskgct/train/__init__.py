"""Training: one hydra entry point (``python -m maskgct.train``), one LightningModule per task."""
