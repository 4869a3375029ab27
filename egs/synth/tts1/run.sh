#!/usr/bin/env bash
# MaskGCT on an offline synthetic multi-speaker English corpus: every stage from nothing to scored
# zero-shot clones of two held-out voices. All logic lives in the maskgct package; this only orchestrates.
#
#   ./run.sh                                  # everything, defaults below
#   ./run.sh --stage 6 --stop-stage 6         # one stage (T2S training)
#   ./run.sh --config conf/demo.conf          # the `make demo` settings
#   ./run.sh --trainer gpu --model-size official --cmd-backend slurm
#   ./run.sh --finetune-from ../../../checkpoints/default --model-size default   # adapt the default model
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
nj=2
cmd_backend=local
debian_voices=false     # stage 0: apt-get install flite/festival voices (root only) for more speakers
utts_per_speaker=40
dev_per_speaker=2
heldout=espeak_sc_f1,espeak_carib_m6
heldout_utts=""         # sentences each held-out voice reads (default: utts_per_speaker)
sentences=templates     # templates (400 shipped sentences) | large (8000 generated ones) | a file
distinct_sentences=false  # true: different voices read different sentences
voices=""               # comma-separated speakers to synthesise (default: every voice this machine has)
extra_voices=""         # a second corpus, data/extra (T2S, S2A and the duration model train on both): these
extra_heldout=""        #   voices (one of them, extra_heldout, is held out: it reads 2 sentences, unused) each
extra_utts_per_speaker=400  # read this many sentences of the first extra_sentences generated ones that
extra_sentences=20000   #   data/{train,dev,test} do not read
frontend=whisper        # semantic features: whisper (offline, from a wheel) | w2v-bert (the official one)
whisper=tiny.en         # whisper model: tiny.en (installed with maskgct) or a CTranslate2 folder
w2v_bert=""             # frontend=w2v-bert: a w2v-bert-2.0 folder; empty: a small stand-in made in stage 2
layer=""                # front-end layer; default whisper's last, 17 with w2v_bert, 3 with the stand-in
acoustic=mel            # acoustic codec: mel (RVQ over mels + pretrained HiFi-GAN) | dac (official architecture)
w2v_ctc_steps=600       # the stand-in learns phones (CTC) for this many steps, so its features are phonetic
model_size=tiny         # tiny | official (conf/model/<task>_<size>.yaml)
trainer=cpu             # cpu | gpu | ddp (conf/trainer)
experiment=synth_tiny
finetune_from=""        # a checkpoint folder: fine-tune its networks instead of training from nothing
semantic_codec_steps=300
acoustic_codec_steps=300
semantic_decoder_steps=0  # acoustic=mel: then train its decoder to read the semantic tokens too (0: off)
semantic_quantizers=2     # ... with this many code layers (maskgct/codecs/mel_codec.py)
t2s_steps=1000
s2a_steps=600
duration_steps=300
lr=1e-3                 # T2S, S2A and semantic codec learning rate (small models, short runs)
semantic_codec_args=""  # more hydra overrides for a training, e.g. "data.batch_size=4"
# more acoustic codec overrides; --acoustic dac at tiny size needs a fan-in encoder init and dead-code restarts
# ("task.encoder_init_gain=1.0 task.restart_after=20") or its residual VQ collapses
acoustic_codec_args=""
t2s_args=""
s2a_args=""
duration_args=""
max_frames=3000
test_utts=0             # 0: every held-out utterance; N: the first N (quick checks)
infer_steps=""          # T2S decoding steps (default: the pipeline's 25)
vc_finetune=false       # stage 11: fine-tune S2A on timbre-perturbed tokens for voice conversion (exp/maskgct_vc)
vc_steps=300            # its steps per S2A model
help_message="Usage: $0 [--stage N] [--stop-stage N] [--config FILE] [--<option> VALUE ...]"

. ./path.sh
. ./utils/parse_options.sh
. ./cmd.sh
. ./utils/recipe_functions.sh

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ] && [ "$debian_voices" = true ]; then
  log 0 "Debian voices (flite, festival)"
  if ! command -v flite >/dev/null || ! command -v text2wave >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
    else
      echo "not root: install flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts yourself" >&2
    fi
  fi
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log 1 "synthetic corpus -> data/{train,dev,test}; validate"
  python -m maskgct.data synth data --utts-per-speaker "$utts_per_speaker" \
    --dev-per-speaker "$dev_per_speaker" --heldout "$heldout" --nj "$nj" ${voices:+--voices "$voices"} \
    --sentences "$sentences" ${heldout_utts:+--heldout-utts "$heldout_utts"} \
    $([ "$distinct_sentences" = true ] && echo --distinct-sentences)
  for set in train dev test; do python -m maskgct.data validate "data/$set"; done
  if [ -n "$extra_voices" ]; then
    [ -n "$extra_heldout" ] || { echo "$0: --extra-voices needs --extra-heldout, one of them" >&2; exit 2; }
    log 1 "second corpus: new sentences for $extra_voices -> data/extra/train"
    python -m maskgct.data.sentences data/extra_sentences.txt --count "$extra_sentences" \
      --exclude data/{train,dev,test}/text
    python -m maskgct.data synth data/extra --voices "$extra_voices" --heldout "$extra_heldout" --heldout-utts 2 \
      --utts-per-speaker "$extra_utts_per_speaker" --dev-per-speaker "$dev_per_speaker" \
      --sentences data/extra_sentences.txt --distinct-sentences --nj "$nj"
    python -m maskgct.data validate data/extra/train
  fi
fi

. ./utils/maskgct_stages.sh
log done "stages $stage..$stop_stage finished"
