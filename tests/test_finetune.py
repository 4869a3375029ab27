"""Fine-tuning (issue 21): ``init_from`` for every network, named mismatches, freezing, new phones."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch
from train_support import compose_cfg, write_token_dump

from maskgct.api import MaskGCT
from maskgct.checkpoint import CheckpointError, load_network, read_safetensors, save_network
from maskgct.codecs.acoustic_codec import AcousticCodec
from maskgct.codecs.mel_codec import MelCodec, MelCodecConfig
from maskgct.data.datadir import DataDir, write_datadir
from maskgct.duration import DurationConfig, DurationModel
from maskgct.text.inventory import phone_list, phone_to_id
from maskgct.train.__main__ import build, model_config, train
from maskgct.train.init import init_weights
from maskgct.train.phones import extend_phone_table, read_extra_phones

REPO = Path(__file__).resolve().parents[1]
OFFICIAL = len(phone_list())
TOKEN_RUN = ["data.max_frames=120", "trainer.log_every_n_steps=1", "trainer.enable_progress_bar=false"]


class FirstStep(L.Callback):
    """Keeps the first training batch, the torch RNG state its step starts from, and that step's loss."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not hasattr(self, "batch"):
            self.batch = {k: v.clone() if torch.is_tensor(v) else v for k, v in batch.items()}
            self.rng = torch.get_rng_state()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if not hasattr(self, "loss"):
            self.loss = float(outputs["loss"])


def first_step(trainer: L.Trainer) -> FirstStep:
    return next(c for c in trainer.callbacks if type(c).__name__ == "FirstStep")


def run_t2s(exp_dir: Path, dump: Path, steps: int, *overrides: str) -> L.Trainer:
    callback = "+callbacks=[{_target_: test_finetune.FirstStep}]"
    cfg = compose_cfg(["task=t2s", f"exp_dir={exp_dir}", f"data.train_dump={dump}", *TOKEN_RUN, callback,
                       f"trainer.max_steps={steps}", *overrides])  # fmt: skip
    return train(cfg)


def loss_of(net: torch.nn.Module, step: FirstStep) -> float:
    """The loss ``net`` gives the recorded first batch with the recorded RNG state (the same masks)."""
    torch.set_rng_state(step.rng)
    batch = step.batch
    with torch.no_grad():
        return float(net.train().loss(batch["phone_ids"], batch["phone_mask"], batch["semantic"],
                                      batch["semantic_mask"], attention="sdpa")["loss"])  # fmt: skip


@pytest.fixture(scope="module")
def token_dump(tmp_path_factory) -> Path:
    return write_token_dump(tmp_path_factory.mktemp("dump"))


@pytest.fixture(scope="module")
def finetuned(tiny_checkpoint, token_dump, tmp_path_factory) -> tuple[L.Trainer, Path]:
    """T2S fine-tuned from the tiny release for 120 steps, and a checkpoint folder holding it."""
    exp = tmp_path_factory.mktemp("finetune")
    trainer = run_t2s(
        exp, token_dump, 120, f"init_from={tiny_checkpoint}", "task.lr=1e-3", "task.warmup_steps=10"
    )
    folder = exp / "checkpoint"
    shutil.copytree(tiny_checkpoint, folder)
    for suffix in (".json", ".safetensors"):  # the export's generic name outside a hydra run
        shutil.copyfile(exp / "model" / f"network{suffix}", folder / f"t2s{suffix}")
    return trainer, folder


def test_finetuning_starts_from_the_release_weights(finetuned, tiny_checkpoint):
    trainer, _ = finetuned
    step = first_step(trainer)
    # The first step's loss is the released network's on that batch (same masks), to float rounding.
    assert step.loss == pytest.approx(loss_of(load_network(tiny_checkpoint, "t2s"), step), rel=1e-5)


def test_finetuned_model_saves_in_our_format_and_starts_far_below_a_fresh_init(
    finetuned, token_dump, tmp_path
):
    trainer, folder = finetuned
    model = MaskGCT.from_pretrained(folder)
    for key, value in trainer.lightning_module.net.state_dict().items():
        assert torch.equal(model.t2s.state_dict()[key], value), key
    again = first_step(run_t2s(tmp_path / "again", token_dump, 1, f"init_from={folder}"))
    fresh = first_step(run_t2s(tmp_path / "fresh", token_dump, 1))
    assert torch.equal(again.batch["semantic"], fresh.batch["semantic"])  # the same batch for both
    assert again.loss == pytest.approx(loss_of(model.t2s, again), rel=1e-5)
    assert again.loss < 0.3 * fresh.loss, (again.loss, fresh.loss)


def saved_network(net: torch.nn.Module, folder: Path, name: str) -> Path:
    save_network(net, folder, name)
    return folder


@pytest.mark.parametrize(
    "task", ["t2s", "s2a_1layer", "s2a_full", "acoustic_codec", "semantic_codec", "mel_codec", "duration"]
)
def test_every_network_starts_from_a_checkpoint_folder(task, tiny_checkpoint, tmp_path):
    """Every tensor of the folder's network for the task lands in the task, bit for bit (the GAN codec to
    the rounding of its weight norm), where a fresh build differs."""
    folder = tiny_checkpoint
    torch.manual_seed(7)
    if task == "mel_codec":  # the tiny release has an AcousticCodec: a mel codec checkpoint of our own
        folder = tmp_path / "mel"
        MelCodec(MelCodecConfig(**model_config("mel_codec_tiny"))).save_pretrained(folder)
    if task == "duration":
        folder = saved_network(
            DurationModel(DurationConfig(**model_config("duration_tiny"))), tmp_path, "duration"
        )
    module, _, _ = build(compose_cfg([f"task={task}", f"exp_dir={tmp_path / 'exp'}"]))
    if task == "acoustic_codec":
        loaded, expected = lambda: module.export_network().state_dict(), AcousticCodec.from_pretrained(folder)
        expected = expected.state_dict()
    else:
        loaded, expected = lambda: module.net.state_dict(), read_safetensors(folder / f"{task}.safetensors")
    assert any(not torch.equal(loaded()[k], v) for k, v in expected.items())
    init_weights(module, str(folder))
    state = loaded()
    for key, value in expected.items():
        if task == "acoustic_codec":
            torch.testing.assert_close(state[key], value, rtol=1e-6, atol=1e-7)
        else:
            assert torch.equal(state[key], value), key
    if task == "semantic_codec":  # the folder keeps no decoder: the only tensors left as built
        assert sorted({k.split(".")[0] for k in state if k not in expected}) == ["decoder"]
    else:
        assert set(state) == set(expected)


def test_the_gan_codec_takes_its_discriminators_from_our_training_checkpoint(tmp_path):
    source, _, _ = build(compose_cfg(["task=acoustic_codec", f"exp_dir={tmp_path / 'a'}", "seed=5"]))
    torch.save({"state_dict": source.state_dict(), "epoch": 0}, tmp_path / "last.ckpt")
    module, _, _ = build(compose_cfg(["task=acoustic_codec", f"exp_dir={tmp_path / 'b'}"]))
    assert not torch.equal(next(module.discriminator.parameters()), next(source.discriminator.parameters()))
    init_weights(module, str(tmp_path / "last.ckpt"))
    for part in ("net", "discriminator"):
        for key, value in getattr(source, part).state_dict().items():
            assert torch.equal(getattr(module, part).state_dict()[key], value), key


def test_a_mismatch_is_named(tiny_checkpoint, tmp_path):
    module, _, _ = build(compose_cfg(["task=t2s", f"exp_dir={tmp_path / 'exp'}"]))
    with pytest.raises(CheckpointError, match=r"holds a S2A, the task trains a T2S"):
        init_weights(module, str(tiny_checkpoint / "s2a_full"))
    folder = tmp_path / "extra"
    shutil.copytree(tiny_checkpoint, folder)
    state = read_safetensors(folder / "t2s.safetensors")
    from safetensors.torch import save_file

    save_file({**state, "stray.weight": torch.zeros(2)}, str(folder / "t2s.safetensors"))
    with pytest.raises(CheckpointError, match=r"unexpected tensor 'stray.weight'"):
        init_weights(module, str(folder))
    save_file({k: v for k, v in state.items() if k != "to_logit.bias"}, str(folder / "t2s.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing tensor 'to_logit.bias'"):
        init_weights(module, str(folder))
    duration, _, _ = build(compose_cfg(["task=duration", f"exp_dir={tmp_path / 'exp'}"]))
    with pytest.raises(CheckpointError, match=r"holds no duration.json"):
        init_weights(duration, str(tiny_checkpoint))


def test_cli_names_a_shape_mismatch_in_one_line(tiny_checkpoint, token_dump, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    args = ["task=t2s", f"exp_dir={tmp_path}", f"data.train_dump={token_dump}", "trainer.max_steps=1",
            "model.hidden_size=32", f"init_from={tiny_checkpoint}"]  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "maskgct.train", *args], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=300)  # fmt: skip
    assert run.returncode == 2, run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert lines[-1].startswith("error: init_from=") and "'mask_emb.weight' has shape (1, 64)" in lines[-1]
    assert "the checkpoint has hidden_size=64 (model config: 32)" in lines[-1]
    assert "Traceback" not in run.stderr and not (tmp_path / "model").exists()


def params(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.named_parameters()}


def test_frozen_parts_stay_fixed_and_out_of_the_optimiser(tiny_checkpoint, token_dump, tmp_path):
    trainer = run_t2s(tmp_path, token_dump, 4, f"init_from={tiny_checkpoint}", "freeze=[embeddings]",
                      "freeze_layers=1", "task.lr=1e-3", "task.warmup_steps=1")  # fmt: skip
    net = trainer.lightning_module.net
    before = {k: v for k, v in read_safetensors(tiny_checkpoint / "t2s.safetensors").items()}
    frozen = {
        k for k in before if k.startswith(("phone_emb", "cond_emb", "mask_emb", "diff_estimator.layers.0."))
    }
    after = params(net)
    assert frozen and all(torch.equal(after[k], before[k]) for k in frozen)
    assert all(
        not torch.equal(after[k], before[k]) for k in after if k not in frozen and "layers.1.self_attn" in k
    )
    optimised = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    names = {k for k, p in net.named_parameters() if id(p) in optimised}
    assert names == set(after) - frozen


def test_a_frozen_run_resumes_with_the_same_freeze(tiny_checkpoint, token_dump, tmp_path):
    """A rerun of a frozen fine-tune continues from its ``last.ckpt`` (the optimiser state fits the same
    trainable parameters) and still leaves the frozen ones as released."""
    common = [f"init_from={tiny_checkpoint}", "freeze=[embeddings]", "ckpt_every_n_steps=2"]
    run_t2s(tmp_path, token_dump, 2, *common)
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    trainer = run_t2s(tmp_path, token_dump, 4, *common)
    assert trainer.global_step == 4 and Path(trainer.ckpt_path).name == "last.ckpt"  # resumed, not restarted
    released = read_safetensors(tiny_checkpoint / "t2s.safetensors")
    net = trainer.lightning_module.net
    assert torch.equal(net.phone_emb.weight, released["phone_emb.weight"])
    assert not torch.equal(net.to_logit.weight, released["to_logit.weight"])


def audio_datadir(root: Path) -> Path:
    data, rng = DataDir({}, {}, {}), np.random.default_rng(0)
    for i in range(2):
        path, t = root / f"{i}.wav", np.arange(int(0.8 * 24000)) / 24000
        sf.write(
            path, (0.3 * np.sin(2 * np.pi * 180 * (i + 1) * t) + 0.01 * rng.standard_normal(t.shape)), 24000
        )
        data.wav_scp[f"s{i}-{i}"], data.text[f"s{i}-{i}"], data.utt2spk[f"s{i}-{i}"] = str(path), "a", f"s{i}"
    write_datadir(root / "data", data)
    return root / "data"


def test_a_codec_decoder_finetunes_on_the_same_codes(tiny_checkpoint, tmp_path):
    data = audio_datadir(tmp_path)
    cfg = compose_cfg(["task=acoustic_codec", f"exp_dir={tmp_path / 'exp'}", f"data.train_dir={data}",
                       "data.batch_size=2", "data.segment_seconds=0.4", "trainer.max_steps=4",
                       "trainer.enable_progress_bar=false", f"init_from={tiny_checkpoint}",
                       "freeze=[encoder,quantizer]"])  # fmt: skip
    wav = torch.from_numpy(sf.read(tmp_path / "0.wav", dtype="float32")[0])[None, None, :9600]
    release = AcousticCodec.from_pretrained(tiny_checkpoint)
    trainer = train(cfg)
    tuned = AcousticCodec.from_pretrained(tmp_path / "exp" / "model")
    assert torch.equal(tuned.encode(wav), release.encode(wav))
    assert not torch.equal(tuned.decode(release.encode(wav)), release.decode(release.encode(wav)))
    assert trainer.global_step >= 4
    with pytest.raises(CheckpointError, match="restart_after=0"):
        build(
            compose_cfg(
                ["task=acoustic_codec", f"exp_dir={tmp_path}", "freeze=[quantizer]", "task.restart_after=5"]
            )
        )
    with pytest.raises(CheckpointError, match=r"has no part 'vocoder' \(aliases: embeddings, quantizer"):
        build(compose_cfg(["task=acoustic_codec", f"exp_dir={tmp_path}", "freeze=[vocoder]"]))


def test_new_phones_extend_the_vocabulary_and_keep_the_old_rows(tiny_checkpoint, token_dump, tmp_path):
    (tmp_path / "phones.txt").write_text("# Arabic\nħ h\nʕ\n", encoding="utf-8")
    entries = read_extra_phones(tmp_path / "phones.txt")
    assert entries == [("ħ", "h"), ("ʕ", None)]
    module, _, _ = build(compose_cfg(["task=t2s", f"exp_dir={tmp_path / 'exp'}"]))
    init_weights(module, str(tiny_checkpoint))
    released = read_safetensors(tiny_checkpoint / "t2s.safetensors")["phone_emb.weight"]
    assert extend_phone_table(module.net.phone_emb, entries) == [OFFICIAL, OFFICIAL + 1]
    table = module.net.phone_emb.weight.detach()
    assert torch.equal(table[:OFFICIAL], released[:OFFICIAL])  # bit-identical official rows
    assert torch.equal(table[OFFICIAL], released[phone_to_id()["h"]])
    assert torch.equal(table[OFFICIAL + 1], released[:OFFICIAL].mean(0))
    assert torch.equal(table[OFFICIAL + 2 :], released[OFFICIAL + 2 :])
    # End to end: the run exports the extended list beside the model, which loads like any T2S.
    run_t2s(
        tmp_path / "run",
        token_dump,
        1,
        f"init_from={tiny_checkpoint}",
        f"extra_phones={tmp_path / 'phones.txt'}",
    )
    phones = json.loads((tmp_path / "run" / "model" / "phones.json").read_text(encoding="utf-8"))["phones"]
    assert phones == [*phone_list(), "ħ", "ʕ"]
    assert load_network(tmp_path / "run" / "model", "network").phone_emb.weight.shape == released.shape


@pytest.mark.parametrize(
    ("text", "message"),
    [("ɪ\n", r"'ɪ' is already in the vocabulary"), ("ħ xx\n", r"'xx' is not an official phone")],
)
def test_bad_phone_lists_are_named(text, message, tmp_path):
    (tmp_path / "phones.txt").write_text(text, encoding="utf-8")
    with pytest.raises(CheckpointError, match=message):
        read_extra_phones(tmp_path / "phones.txt")


RECIPE_TRAIN = """set -euo pipefail
frontend=whisper whisper=tiny.en layer="" acoustic=mel lr=1e-3
model_size=tiny experiment=synth_tiny trainer=cpu
train_cmd=echo finetune_from=${1:-}
. egs/utils/recipe_functions.sh
train t2s 10 "${schedule[@]}"
train mel_codec 10
train duration 10 "${duration_schedule[@]}"
echo "$tokenizer"
"""


def test_recipe_finetune_from_passes_init_from_per_network(tiny_checkpoint, tmp_path):
    """The recipes' ``train`` helper (``--finetune-from DIR``), its commands echoed instead of run."""
    (tmp_path / "train.sh").write_text(RECIPE_TRAIN)
    scratch, tuned = (
        subprocess.run(["bash", str(tmp_path / "train.sh"), *args], capture_output=True, text=True, cwd=REPO)
        for args in ([], [str(tiny_checkpoint)])
    )
    assert scratch.returncode == tuned.returncode == 0, tuned.stderr
    t2s, codec, duration, tokenizer = scratch.stdout.splitlines()
    assert (
        "init_from" not in scratch.stdout and "task.lr=1e-3" in t2s and tokenizer == "exp/semantic_tokenizer"
    )
    t2s, codec, duration, tokenizer = tuned.stdout.splitlines()
    # T2S with the preset after the recipe's experiment and none of the from-scratch schedule.
    assert (
        t2s.endswith(f"experiment=[synth_tiny,finetune_t2s] init_from={tiny_checkpoint}")
        and "task.lr" not in t2s
    )
    assert codec.endswith(f"freeze=[encoder,quantizer] init_from={tiny_checkpoint}")
    assert "init_from" not in duration and "task.lr=2e-3" in duration  # the release has no duration model
    assert tokenizer == str(tiny_checkpoint)
    bad = subprocess.run(
        ["bash", str(tmp_path / "train.sh"), str(tmp_path)], capture_output=True, text=True, cwd=REPO
    )
    assert bad.returncode == 2 and "not a checkpoint folder" in bad.stderr
