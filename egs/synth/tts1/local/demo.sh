#!/usr/bin/env bash
# local/demo.sh OUT_WAV: after run.sh, copy the first zero-shot clone of a held-out voice to OUT_WAV and
# print what whisper hears in it and in the versions that skip stages (maskgct.eval.diagnose), its speaker
# similarity, and the mean WER/SIM of all the clones.
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh
out=$1
utt=$(head -n 1 exp/decode/meta.lst | cut -d '|' -f 1)
mkdir -p "$(dirname "$out")"
cp "exp/decode/wav/$utt.wav" "$out"
python -m maskgct.eval.diagnose --checkpoint exp/maskgct --meta exp/decode/meta.lst --gen-dir exp/decode/wav \
  --report exp/decode/report --train-dir data/train
echo "the clone: $out"
