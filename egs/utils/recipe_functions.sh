# Shared by egs/*/tts1/run.sh after its options are parsed (sourced): option defaults that depend on other
# options, and the two helpers every stage uses.

if [ -z "$w2v_layer" ]; then
  if [ -n "$w2v_bert" ]; then w2v_layer=17; else w2v_layer=3; fi
fi
[ -n "$w2v_bert" ] || w2v_bert=exp/w2v_bert_standin

log() { echo "$(date '+%H:%M:%S') [stage $1] ${*:2}"; }
train() {  # train TASK STEPS EXTRA...: one network through the hydra entry point (resumes if killed)
  local task=$1 steps=$2; shift 2
  ${train_cmd} python -m maskgct.train task="$task" model="${task}_${model_size}" experiment="$experiment" \
    trainer="$trainer" exp_dir="exp/$task" trainer.max_steps="$steps" "$@"
}
