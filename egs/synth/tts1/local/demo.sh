#!/usr/bin/env bash
# local/demo.sh OUT_WAV: after run.sh, copy the first zero-shot clone of a held-out voice to OUT_WAV and
# print what was cloned and its scores (from exp/decode/report/summary.json).
set -euo pipefail
out=$1
first=$(head -n 1 exp/decode/meta.lst)
IFS='|' read -r utt prompt_text prompt_wav target_text _ <<< "$first"
mkdir -p "$(dirname "$out")"
cp "exp/decode/wav/$utt.wav" "$out"
python - "$out" "$prompt_wav" "$prompt_text" "$target_text" "$(wc -l < exp/decode/meta.lst)" <<'PY'
import json, sys
out, prompt_wav, prompt_text, target_text, count = sys.argv[1:]
summary = json.load(open("exp/decode/report/summary.json"))
print(f"held-out voice prompt: {prompt_wav}  ({prompt_text!r})")
print(f"cloned speech:         {out}  ({target_text!r})")
print(f"WER {summary['wer']:.3f}  SIM {summary['sim']:.3f}  (mean over {count.strip()} clones of the held-out voices)")
PY
