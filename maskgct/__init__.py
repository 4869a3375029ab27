"""maskgct: zero-shot text-to-speech with MaskGCT (masked generative codec transformers)."""

__version__ = "0.1.0"
