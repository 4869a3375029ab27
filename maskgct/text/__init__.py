"""Text frontend: normalisation and G2P to the official MaskGCT phone vocabulary."""
