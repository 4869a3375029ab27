# Stages 2-11 shared by the recipes (sourced by egs/*/tts1/run.sh after stage 1 wrote data/{train,dev,test}):
# semantic front-end statistics, semantic codec, acoustic codec, token extraction, T2S, S2A, checkpoint, zero-shot
# inference on data/test, evaluation, and (vc_finetune=true) S2A fine-tuned for voice conversion.
# Reads the caller's option variables and its train()/log() helpers.

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 2 ] && [ -n "$finetune_from" ]; then
  log 2-3 "semantic tokenizer: $tokenizer's (fine-tuning keeps the tokens its T2S and S2A read)"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ] && [ -z "$finetune_from" ]; then
  log 2 "semantic front end ($frontend) and its feature statistics"
  if [ "$frontend" = w2v-bert ] && [ ! -d "$w2v_bert" ]; then  # the offline stand-in; written whole or not at all
    rm -rf "$w2v_bert.tmp"
    python -m maskgct.data init-w2v-bert "$w2v_bert.tmp" --ctc-data data/train --ctc-layer "$layer" \
      --ctc-steps "$w2v_ctc_steps"
    mv "$w2v_bert.tmp" "$w2v_bert"
  fi
  python -m maskgct.codecs.semantic stats --data-dir data/train "${frontend_args[@]}" \
    --out exp/semantic_stats.safetensors
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ] && [ -z "$finetune_from" ]; then
  log 3 "semantic codec"
  train semantic_codec "$semantic_codec_steps" data.train_dir=data/train "${frontend_task[@]}" \
    task.stats=exp/semantic_stats.safetensors task.lr="$lr" task.warmup_steps=50 $semantic_codec_args
  python -m maskgct.data make-tokenizer exp/semantic_tokenizer "${frontend_args[@]}" \
    --stats exp/semantic_stats.safetensors --codec exp/semantic_codec/model
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log 4 "acoustic codec ($acoustic_task)"
  train "$acoustic_task" "$acoustic_codec_steps" data.train_dir=data/train $acoustic_codec_args
  if [ "$acoustic_model" != "exp/$acoustic_task/model" ]; then
    log 4 "its decoder, reading the semantic tokens too (codes unchanged)"
    train mel_codec "$semantic_decoder_steps" exp_dir=exp/mel_codec_semantic \
      init_from=exp/mel_codec/model/mel_codec task.semantic_tokenizer="$tokenizer" \
      ++model.semantic_quantizers="$semantic_quantizers" "freeze=[encoder,quantizer]" task.restart_after=0 \
      data.train_dir=data/train $acoustic_codec_args
  fi
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log 5 "token extraction (phones, semantic tokens, acoustic codes)"
  for set in train dev; do
    python -m maskgct.data extract "data/$set" "dump/$set" --nj "$nj" \
      --semantic-codec "$tokenizer" --acoustic-codec "exp/$acoustic_task/model"
  done
  if [ "$train_dump" != dump/train ]; then
    python -m maskgct.data extract data/extra/train dump/extra --nj "$nj" \
      --semantic-codec "$tokenizer" --acoustic-codec "exp/$acoustic_task/model"
  fi
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log 6 "text-to-semantic"
  train t2s "$t2s_steps" data.train_dump="$train_dump" data.valid_dump=dump/dev data.max_frames="$max_frames" \
    "${schedule[@]}" $t2s_args
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  log 7 "semantic-to-acoustic (1 layer, then full)"
  for task in s2a_1layer s2a_full; do
    train "$task" "$s2a_steps" data.train_dump="$train_dump" data.valid_dump=dump/dev \
      data.max_frames="$max_frames" "${schedule[@]}" $s2a_args
  done
  log 7 "duration model"
  train duration "$duration_steps" data.train_dump="$train_dump" data.valid_dump=dump/dev \
    "${duration_schedule[@]}" $duration_args
fi

if [ "$stage" -le 8 ] && [ "$stop_stage" -ge 8 ]; then
  log 8 "assemble the checkpoint"
  python -m maskgct.data assemble exp/maskgct --tokenizer "$tokenizer" \
    --acoustic-codec "$acoustic_model" --t2s exp/t2s/model --s2a-1layer exp/s2a_1layer/model \
    --s2a-full exp/s2a_full/model --duration exp/duration/model
fi

if [ "$stage" -le 9 ] && [ "$stop_stage" -ge 9 ]; then
  log 9 "zero-shot inference on the held-out voices"
  mkdir -p exp/decode
  python -m maskgct.eval --data-dir data/test --write-meta exp/decode/meta_all.lst
  if [ "$test_utts" -gt 0 ]; then head -n "$test_utts" exp/decode/meta_all.lst > exp/decode/meta.lst
  else cp exp/decode/meta_all.lst exp/decode/meta.lst; fi
  ${decode_cmd} python -m maskgct.infer --checkpoint exp/maskgct --batch exp/decode/meta.lst \
    --out-dir exp/decode/wav --seed 0 ${infer_steps:+--steps "$infer_steps"} --quiet
fi

if [ "$stage" -le 10 ] && [ "$stop_stage" -ge 10 ]; then
  log 10 "evaluation (WER, speaker similarity, DNSMOS)"
  python -m maskgct.eval --meta exp/decode/meta.lst --gen-dir exp/decode/wav --out exp/decode/report
  cat exp/decode/report/summary.md
fi

if [ "$stage" -le 11 ] && [ "$stop_stage" -ge 11 ] && [ "${vc_finetune:-false}" = true ]; then
  log 11 "voice conversion: S2A fine-tuned on the semantic tokens of timbre-perturbed copies"
  # The tokens of a pitch/formant/EQ-perturbed copy, the original's codes as targets (maskgct.data.perturb):
  # the tokens no longer carry the speaker's timbre, so S2A learns to take all of it from the prompt.
  for set in train dev; do
    python -m maskgct.data extract "data/$set" "dump/${set}_vc" --nj "$nj" --fields semantic_perturbed,acoustic \
      --semantic-codec "$tokenizer" --acoustic-codec "exp/$acoustic_task/model"
  done
  for task in s2a_1layer s2a_full; do  # from stage 7's networks (a later init_from wins over train()'s)
    train "$task" "${vc_steps:-300}" exp_dir="exp/${task}_vc" init_from="exp/$task/model/$task" \
      task.semantic_field=semantic_perturbed data.train_dump=dump/train_vc data.valid_dump=dump/dev_vc \
      data.max_frames="$max_frames" "${schedule[@]}" $s2a_args
  done
  # The TTS checkpoint with the fine-tuned S2A: python -m maskgct.vc --checkpoint exp/maskgct_vc ...
  python -m maskgct.data assemble exp/maskgct_vc --tokenizer "$tokenizer" \
    --acoustic-codec "$acoustic_model" --t2s exp/t2s/model --s2a-1layer exp/s2a_1layer_vc/model \
    --s2a-full exp/s2a_full_vc/model --duration exp/duration/model
fi
