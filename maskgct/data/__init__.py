"""Data: Kaldi-style data dirs, token shards and the lightning data module."""
