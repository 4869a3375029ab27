#!/usr/bin/env bash
# MaskGCT on LibriTTS (24 kHz, 2456 speakers): data prep, then the same stages as egs/synth/tts1.
# The test speakers (test-clean) are disjoint from the training speakers: stage 9 clones unseen voices.
#
#   ./run.sh --download true --libritts-root downloads       # fetch the subsets (needs the network)
#   ./run.sh --libritts-root /data/LibriTTS --w2v-bert /models/w2v-bert-2.0 --trainer ddp --model-size official
#   ./run.sh --libritts-root /data/LibriTTS --finetune-from ckpt/ --stage 4 --vc-finetune true  # adapt weights
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
nj=8
cmd_backend=local
download=false
libritts_root=downloads/LibriTTS
train_subsets=train-clean-100,train-clean-360,train-other-500
dev_subsets=dev-clean
test_subsets=test-clean
frontend=w2v-bert       # semantic features: w2v-bert (the official one) | whisper
whisper=tiny.en
w2v_bert=""             # the w2v-bert-2.0 folder (facebook/w2v-bert-2.0); empty: a small stand-in
layer=""                # front-end layer; default 17 with w2v_bert, 3 with the stand-in, whisper's last
acoustic=dac            # acoustic codec: dac (the official architecture) | mel
w2v_ctc_steps=600       # CTC phone training of the stand-in (stage 2)
model_size=official
trainer=gpu
experiment=libritts
finetune_from=""        # a checkpoint folder (e.g. converted official weights): fine-tune instead of training
semantic_codec_steps=200000
acoustic_codec_steps=400000
semantic_decoder_steps=0  # acoustic=mel: then train its decoder to read the semantic tokens too (0: off)
semantic_quantizers=2     # ... with this many code layers (maskgct/codecs/mel_codec.py)
t2s_steps=400000
s2a_steps=400000
duration_steps=20000
lr=1e-4
semantic_codec_args=""  # more hydra overrides for a training, e.g. "data.batch_size=16"
acoustic_codec_args=""
t2s_args=""
s2a_args=""
duration_args=""
max_frames=6000
test_utts=200
infer_steps=""
vc_finetune=false       # stage 11: fine-tune S2A on timbre-perturbed tokens for voice conversion (exp/maskgct_vc)
vc_steps=20000          # its steps per S2A model
help_message="Usage: $0 [--libritts-root DIR] [--download true] [--stage N] [--stop-stage N] [--<option> VALUE ...]"

. ./path.sh
. ./utils/parse_options.sh
. ./cmd.sh
. ./utils/recipe_functions.sh

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ] && [ "$download" = true ]; then
  log 0 "download LibriTTS into $(dirname "$libritts_root")"
  local/download.sh "$(dirname "$libritts_root")" "$train_subsets,$dev_subsets,$test_subsets"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log 1 "data prep -> data/{train,dev,test}; validate"
  python -m maskgct.data libritts "$libritts_root" data/train --subsets "$train_subsets"
  python -m maskgct.data libritts "$libritts_root" data/dev --subsets "$dev_subsets"
  python -m maskgct.data libritts "$libritts_root" data/test --subsets "$test_subsets"
  for set in train dev test; do python -m maskgct.data validate "data/$set"; done
fi

. ./utils/maskgct_stages.sh
log done "stages $stage..$stop_stage finished"
