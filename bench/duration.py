"""Duration model vs the official phone-ratio rule on the held-out voices of the synthetic corpus.

Builds the egs/synth corpus (``maskgct.data.synth``: espeak-ng voices and piper's joe, plus flite/festival
when installed; ``espeak_sc_f1`` and ``espeak_carib_m6`` held out), trains the duration model through
``python -m maskgct.train task=duration`` on ``data/train`` (phones from the G2P, lengths from the audio),
then prints the mean absolute error of log-duration of the model and of the rule on same-speaker
prompt/target pairs of the held-out voices, and their ratio (< 1: the model is better).

    .venv/bin/python bench/duration.py [--work DIR] [--utts 40] [--steps 1500] [--size tiny]

Rerunning with the same ``--work`` reuses the corpus and resumes (or reuses) the training.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from maskgct.checkpoint import load_network
from maskgct.data.duration import DataDirUtterances
from maskgct.data.synth import build_corpus
from maskgct.train.__main__ import CONF_DIR, train
from maskgct.train.duration import compare_with_rule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="exp/bench_duration", help="corpus and experiment folder")
    parser.add_argument("--utts", type=int, default=40, help="utterances per voice")
    parser.add_argument("--steps", type=int, default=1500, help="training steps")
    parser.add_argument("--size", default="tiny", choices=["tiny", "official"])
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--prompts", type=int, default=8, help="prompts per held-out target")
    parser.add_argument("--nj", type=int, default=2, help="parallel voices while synthesising")
    args = parser.parse_args()
    if args.utts < 2 or args.steps < 1:
        print("error: --utts must be >= 2 and --steps >= 1", file=sys.stderr)
        sys.exit(2)
    work = Path(args.work).resolve()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    start = time.time()
    sets = build_corpus(work / "corpus", utts_per_speaker=args.utts, dev_per_speaker=2, nj=args.nj)
    voices = {name: sorted(data.spk2utt) for name, data in sets.items()}
    seconds = time.time() - start
    print(f"corpus: {len(voices['train'])} training voices, held out {voices['test']} ({seconds:.0f} s)")

    overrides = [
        "task=duration",
        f"model=duration_{args.size}",
        f"exp_dir={work / 'exp'}",
        "data.train_dump=null",
        f"data.train_dir={work / 'corpus' / 'train'}",
        f"data.valid_dir={work / 'corpus' / 'dev'}",
        f"data.batch_size={args.batch_size}",
        f"trainer.max_steps={args.steps}",
        "trainer.enable_progress_bar=false",
        f"+trainer.val_check_interval={min(args.steps, 500)}",
        "+trainer.check_val_every_n_epoch=null",
        f"task.lr={args.lr}",
        "task.warmup_steps=100",
        "ckpt_every_n_steps=500",
    ]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    start = time.time()
    train(cfg)
    print(f"trained {args.steps} steps ({args.size}) in {time.time() - start:.0f} s")

    net = load_network(work / "exp" / "model", "network").eval()
    test = DataDirUtterances(work / "corpus" / "test")
    torch.manual_seed(0)
    scores = compare_with_rule(net, test, prompts_per_target=args.prompts)
    print(f"held-out voices {voices['test']}: {scores['pairs']} same-speaker prompt/target pairs")
    print(f"  MAE(log duration)  model {scores['mae_log']:.4f}   rule {scores['mae_log_rule']:.4f}")
    print(f"  ratio model/rule   {scores['mae_log'] / scores['mae_log_rule']:.3f}")


if __name__ == "__main__":
    main()
