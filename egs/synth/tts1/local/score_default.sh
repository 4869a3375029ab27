#!/usr/bin/env bash
# local/score_default.sh CHECKPOINT OUT_DIR [INFER OPTIONS...]: the default model's card figures for a model.
#   - 24 held-out clones: 6 sentences from each voice conf/default.conf holds out (data/test, run stage 1 with
#     it first), seed 0, whisper tiny.en WER and resemblyzer similarity (OUT_DIR/heldout/report);
#   - 16 clones of 8 real voices (Debian codec2-examples, 2 held-out sentences each): WER, similarity to the
#     prompt and to the other real voices' prompts (OUT_DIR/real/report, local/real_voices.py).
# INFER OPTIONS go to python -m maskgct.infer (e.g. --cfg 2 --temperature 0.7) for sampling sweeps.
# The two meta lists are made once, in exp/score/, so every model is scored on the same clones.
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh
[ $# -ge 2 ] || { echo "usage: $0 CHECKPOINT OUT_DIR [INFER OPTIONS...]" >&2; exit 2; }
checkpoint=$1 out=$2; shift 2
[ -f data/test/utt2spk ] || { echo "$0: data/test missing: ./run.sh --config conf/default.conf --stop-stage 1" >&2; exit 2; }

lists=exp/score
if [ ! -f $lists/heldout.lst ]; then
  mkdir -p $lists
  python -m maskgct.eval --data-dir data/test --write-meta $lists/heldout_all.lst
  sort -k 2,2 -k 1,1 -s data/test/utt2spk | awk '{ if (n[$2]++ < 6) print $1 }' > $lists/heldout.utts
  awk -F '|' 'NR == FNR { keep[$1]; next } $1 in keep' $lists/heldout.utts $lists/heldout_all.lst > $lists/heldout.lst
fi
[ -f $lists/real/meta.lst ] || python local/real_voices.py meta $lists/real data/test/text

for set in heldout real; do
  meta=$lists/$set.lst; [ $set = real ] && meta=$lists/real/meta.lst
  python -m maskgct.infer --checkpoint "$checkpoint" --batch "$meta" --out-dir "$out/$set/wav" --seed 0 \
    --quiet "$@"
  echo "$set clones (hits: words right, of ref_tokens said; hyp_tokens: words whisper heard):"
  python -m maskgct.eval --meta "$meta" --gen-dir "$out/$set/wav" --out "$out/$set/report" --metrics wer,sim \
    --no-progress
done
python local/real_voices.py score $lists/real "$out/real/wav"
