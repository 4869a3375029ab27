"""Evaluation: WER/CER, speaker similarity, DNSMOS and RTF, offline."""
