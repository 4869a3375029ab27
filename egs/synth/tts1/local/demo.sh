#!/usr/bin/env bash
# local/demo.sh OUT_WAV: after run.sh, copy the first zero-shot clone of a held-out voice to OUT_WAV and
# print what was cloned, what whisper hears, and its scores: the run's WER/SIM (exp/decode/report), the
# acoustic codec's round trip of the clone's ground-truth recording (the ceiling the clone can reach), and
# the clone's similarity to its prompt against its similarity to the training voices.
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh
out=$1
first=$(head -n 1 exp/decode/meta.lst)
IFS='|' read -r utt prompt_text prompt_wav target_text gt_wav <<< "$first"
mkdir -p "$(dirname "$out")"
cp "exp/decode/wav/$utt.wav" "$out"
python - "$out" "$prompt_wav" "$prompt_text" "$target_text" "$gt_wav" "$(wc -l < exp/decode/meta.lst)" <<'PY'
import json, sys

import numpy as np
import torch

from maskgct.audio import load_audio
from maskgct.codecs.acoustic_codec import AcousticCodec
from maskgct.eval.asr import error_counts, load_asr
from maskgct.eval.audio import load_speech
from maskgct.eval.speaker import cosine, load_speaker_encoder

out, prompt_wav, prompt_text, target_text, gt_wav, count = sys.argv[1:]
summary = json.load(open("exp/decode/report/summary.json"))
asr, speaker = load_asr(), load_speaker_encoder()

codec = AcousticCodec.from_pretrained("exp/acoustic_codec/model").eval()
with torch.no_grad():
    codes = codec.encode(torch.from_numpy(load_audio(gt_wav, 24000))[None, None])
    round_trip = load_speech(codec.decode(codes)[0, 0].numpy(), 24000)
gt = load_speech(gt_wav)
clone = load_speech(out)
heard = {name: asr.transcribe(wav) for name, wav in [("clone", clone), ("round_trip", round_trip), ("gt", gt)]}
wer = {name: error_counts(text, target_text).rate for name, text in heard.items()}

embed = {"clone": speaker.embed(clone), "prompt": speaker.embed(load_speech(prompt_wav))}
others = []
for line in open("data/train/spk2utt"):
    first_utt = line.split()[1]
    wav_path = next(l.split(maxsplit=1)[1] for l in open("data/train/wav.scp") if l.split()[0] == first_utt)
    others.append(cosine(embed["clone"], speaker.embed(load_speech(wav_path.strip()))))

print(f"held-out voice prompt: {prompt_wav}  ({prompt_text!r})")
print(f"cloned speech:         {out}  ({target_text!r})")
print(f"whisper hears: clone {heard['clone']!r}")
print(f"               codec round trip of the recording {heard['round_trip']!r}, recording {heard['gt']!r}")
print(f"WER {summary['wer']:.3f}  SIM {summary['sim']:.3f}  (mean over {count.strip()} clones of the held-out voices)")
print(
    f"this clone: WER {wer['clone']:.3f}; codec round trip of its recording WER {wer['round_trip']:.3f} "
    f"(the recording itself {wer['gt']:.3f}, whisper tiny.en)"
)
print(
    f"this clone: SIM to its prompt {cosine(embed['clone'], embed['prompt']):.3f}, "
    f"to the {len(others)} training voices {np.mean(others):.3f} (max {max(others):.3f})"
)
PY
