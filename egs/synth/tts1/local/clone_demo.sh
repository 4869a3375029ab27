#!/usr/bin/env bash
# local/clone_demo.sh OUT_DIR [CHECKPOINT]: clone two held-out voices with a trained model (default: the
# shipped checkpoints/default), copy the first clone to OUT_DIR/out.wav and print what whisper hears in it and
# in the versions that skip stages (maskgct.eval.diagnose), and the speaker similarities.
# The prompts are voices conf/default.conf holds out of training (a Kokoro blend and espeak's Caribbean
# voice), reading sentences no training voice read; piper's joe, a training voice, is only the reference
# for the similarity to "other voices".
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh
out=$1
checkpoint=${2:-$MAIN_ROOT/checkpoints/default}
python -m maskgct.data synth "$out/corpus" --voices piper_joe,kokoro_alpha_kumo_50,espeak_carib_m6 \
  --heldout kokoro_alpha_kumo_50,espeak_carib_m6 --utts-per-speaker 1 --dev-per-speaker 0 --heldout-utts 2 \
  --sentences large --distinct-sentences
python -m maskgct.eval --data-dir "$out/corpus/test" --write-meta "$out/meta.lst"
python -m maskgct.infer --checkpoint "$checkpoint" --batch "$out/meta.lst" --out-dir "$out/wav" --seed 0 --quiet
python -m maskgct.eval --meta "$out/meta.lst" --gen-dir "$out/wav" --out "$out/report" > /dev/null
cp "$out/wav/$(head -n 1 "$out/meta.lst" | cut -d '|' -f 1).wav" "$out/out.wav"
python -m maskgct.eval.diagnose --checkpoint "$checkpoint" --meta "$out/meta.lst" --gen-dir "$out/wav" \
  --train-dir "$out/corpus/train" --report "$out/report" --count "$(wc -l < "$out/meta.lst")"
echo "the clone: $out/out.wav"
