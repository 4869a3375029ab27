"""maskgct: zero-shot text-to-speech with MaskGCT (masked generative codec transformers).

``from maskgct import MaskGCT`` gives the voice-cloning API (``maskgct.api``); it is imported on first use so
that light entry points (``python -m maskgct.text``) do not load torch and transformers.
"""

__version__ = "0.1.0"
__all__ = ["MaskGCT", "__version__"]


def __getattr__(name: str):
    if name == "MaskGCT":
        from maskgct.api import MaskGCT

        return MaskGCT
    raise AttributeError(f"module 'maskgct' has no attribute {name!r}")
