#!/usr/bin/env bash
# Train T2S and both S2A models at once on one accelerator for a fixed wall-clock time, from the token dumps
# of stage 5 (DUMP/train, DUMP/extra when there is one, DUMP/dev); each network is exported to EXP/<task>/model
# when its time is up. Made for a short loan of a GPU: every network gets the whole time, in GPU-sized batches
# (the CPU runs take 1500 frames a step).
#
#   local/train_burst.sh [--minutes 8] [--trainer gpu] [--model-size default] [--max-frames 24000] [--lr 1e-3] \
#     [--tasks "t2s s2a_1layer s2a_full"] [--init DIR] [--t2s-args "..."] [--s2a-args "..."] [--half true] DUMP EXP
#
# --init DIR starts every network from a checkpoint folder's weights (e.g. the repository's checkpoints/default)
# instead of from nothing. Rerunning with the same EXP goes on from each run's last checkpoint (written every
# 500 steps) and its clock: --minutes is the total, so give more. --half true stores the exported weights as
# float16, as the repository ships them. Each run logs to EXP/<task>.log and its curves to
# EXP/<task>/logs/metrics.csv (for T2S, val/acc_text vs val/acc_other_text: maskgct/train/t2s.py).
set -euo pipefail

minutes=8
trainer=gpu
model_size=default
max_frames=24000
lr=1e-3
tasks="t2s s2a_1layer s2a_full"
init=""
t2s_args=""
s2a_args=""
half=false
help_message="Usage: $0 [--<option> VALUE ...] DUMP EXP   (options: see the head of this file)"
. "$(dirname "$0")/../path.sh"
. "$(dirname "$0")/../utils/parse_options.sh"
if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 2; fi
dump=$1 exp=$2
if ! [[ "$minutes" =~ ^[1-9][0-9]*$ ]]; then echo "error: --minutes takes a whole number of minutes" >&2; exit 2; fi
for set in train dev; do
  if [ ! -d "$dump/$set" ]; then echo "error: $dump/$set not found: run stage 5 first" >&2; exit 2; fi
done
train_dump="$dump/train"
[ ! -d "$dump/extra" ] || train_dump="[$dump/train,$dump/extra]"
read -ra names <<< "$tasks"
for task in "${names[@]}"; do
  case "$task" in
    t2s|s2a_1layer|s2a_full) ;;
    *) echo "error: --tasks takes t2s, s2a_1layer and s2a_full, not $task" >&2; exit 2 ;;
  esac
done
max_time=$(printf '00:%02d:%02d:00' $((minutes / 60)) $((minutes % 60)))
mkdir -p "$exp"

pids=()
for task in "${names[@]}"; do
  if [ "$task" = t2s ]; then extra=($t2s_args); else extra=($s2a_args); fi
  python -m maskgct.train task="$task" model="${task}_$model_size" trainer="$trainer" exp_dir="$exp/$task" \
    data.train_dump="$train_dump" data.valid_dump="$dump/dev" data.max_frames="$max_frames" task.lr="$lr" \
    task.warmup_steps=500 trainer.max_steps=-1 +trainer.max_time="$max_time" trainer.log_every_n_steps=50 \
    ckpt_every_n_steps=500 +trainer.val_check_interval=500 +trainer.check_val_every_n_epoch=null \
    ${init:+init_from="$init"} "${extra[@]}" > "$exp/$task.log" 2>&1 &
  pids+=($!)
done

failed=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { failed=1; echo "error: ${names[$i]} failed: see $exp/${names[$i]}.log" >&2; }
done
[ "$failed" = 0 ] || exit 1
if [ "$half" = true ]; then  # one process for all: each start imports torch
  python -c "import sys; from pathlib import Path; from maskgct.data.recipe import to_float16; \
[to_float16(Path(f)) for f in sys.argv[1:]]" \
    $(for task in "${names[@]}"; do echo "$exp/$task/model/$task.safetensors"; done)
fi
echo "exported: ${names[*]/#/$exp/} (each one's model/)"
