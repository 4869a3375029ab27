"""Training entry point: every task runs on tiny configs, a SIGKILLed run resumes exactly, DDP over gloo."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from train_support import compose_cfg, write_token_dump

from maskgct.checkpoint import load_network
from maskgct.data.datadir import DataDir, write_datadir
from maskgct.data.datamodule import TokenDataset, collate_tokens
from maskgct.train.__main__ import build, init_weights, model_config, train
from maskgct.train.optim import adamw_with_warmup, lr_factor
from maskgct.train.t2s import text_reading

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def audio_datadir(root: Path) -> Path:
    """Four 1.2 s utterances of two 'speakers' (tones + noise)."""
    data = DataDir({}, {}, {})
    rng = np.random.default_rng(0)
    for i in range(4):
        utt, path = f"spk{i % 2}-{i:03d}", root / f"{i}.wav"
        t = np.arange(int(1.2 * 24000)) / 24000
        wav = 0.3 * np.sin(2 * np.pi * (150 + 60 * i) * t) + 0.01 * rng.standard_normal(t.shape)
        sf.write(path, wav.astype(np.float32), 24000)
        data.wav_scp[utt], data.text[utt], data.utt2spk[utt] = str(path), "a b", f"spk{i % 2}"
    write_datadir(root / "data", data)
    return root / "data"


@pytest.fixture(scope="module")
def token_dump(tmp_path_factory) -> Path:
    return write_token_dump(tmp_path_factory.mktemp("dump"))


@pytest.mark.parametrize("task", ["t2s", "s2a_1layer", "s2a_full"])
def test_token_tasks_fast_dev_run(task, token_dump, tmp_path):
    cfg = compose_cfg(
        [
            f"task={task}",
            f"exp_dir={tmp_path}",
            f"data.train_dump={token_dump}",
            "data.max_frames=120",
            "+trainer.fast_dev_run=2",
            "trainer.enable_progress_bar=false",
        ]
    )
    trainer = train(cfg)
    assert trainer.global_step == 2
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    assert (tmp_path / "model" / "network.safetensors").is_file()  # exported (no hydra runtime: generic name)


def test_bf16_autocast_trainer_keeps_float32_weights(token_dump, tmp_path):
    """trainer=cpu_bf16 (conf/trainer/cpu_bf16.yaml): forward under bfloat16 autocast, float32 weights."""
    overrides = [f"exp_dir={tmp_path}", f"data.train_dump={token_dump}", "data.max_frames=120"]
    cfg = compose_cfg(["task=t2s", "trainer=cpu_bf16", *overrides, "+trainer.fast_dev_run=2"])
    trainer = train(cfg)
    assert trainer.precision == "bf16-mixed" and trainer.global_step == 2
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    weights = trainer.lightning_module.net.state_dict().values()
    assert all(w.dtype == torch.float32 for w in weights if w.is_floating_point())


def test_t2s_validation_says_whether_the_text_is_read(token_dump, tmp_path, one_thread):
    """val/acc_text vs val/acc_other_text: the dump's tokens repeat its phones, so a T2S trained on it
    predicts the unprompted tokens from the text, and far worse from another utterance's text."""
    overrides = [f"exp_dir={tmp_path}", f"data.train_dump={token_dump}", f"data.valid_dump={token_dump}"]
    schedule = ["data.max_frames=120", "trainer.max_steps=150", "task.lr=3e-3"]
    cfg = compose_cfg(["task=t2s", *overrides, *schedule])
    trainer = train(cfg)
    metrics = trainer.callback_metrics
    assert metrics["val/acc_text"] > metrics["val/acc_other_text"] + 0.2  # 0.64 vs 0.23 here
    # Rows with the same phones: the other row's text is the row's own, so the two accuracies agree.
    item = TokenDataset(token_dump, ("phone_ids", "semantic"))[0]
    twin = dict(item, semantic=np.roll(item["semantic"], 2))
    own, other = text_reading(trainer.lightning_module.net.eval(), collate_tokens([item, twin]))
    assert own == other and 0 < own <= 1


def test_duration_fast_dev_run(token_dump, tmp_path):
    cfg = compose_cfg(
        [
            "task=duration",
            f"exp_dir={tmp_path}",
            f"data.train_dump={token_dump}",
            "data.batch_size=4",
            "+trainer.fast_dev_run=2",
            "trainer.enable_progress_bar=false",
        ]
    )
    trainer = train(cfg)
    assert trainer.global_step >= 1 and torch.isfinite(trainer.callback_metrics["train/loss"])


def test_acoustic_codec_fast_dev_run(tmp_path):
    data_dir = audio_datadir(tmp_path)
    cfg = compose_cfg(
        [
            "task=acoustic_codec",
            f"exp_dir={tmp_path / 'exp'}",
            f"data.train_dir={data_dir}",
            "data.batch_size=2",
            "data.segment_seconds=0.4",
            "+trainer.fast_dev_run=1",
            "trainer.enable_progress_bar=false",
        ]
    )
    trainer = train(cfg)
    assert trainer.global_step >= 1
    assert (tmp_path / "exp" / "model" / "acoustic_encoder.safetensors").is_file()


def test_semantic_codec_fast_dev_run(tmp_path, fixtures):
    data_dir = audio_datadir(tmp_path)
    cfg = compose_cfg(
        [
            "task=semantic_codec",
            f"exp_dir={tmp_path / 'exp'}",
            f"data.train_dir={data_dir}",
            "data.batch_size=2",
            "data.segment_seconds=0.5",
            f"task.w2v_bert={fixtures / 'w2v_bert_tiny'}",
            f"task.stats={fixtures / 'w2v_stats_tiny.safetensors'}",
            "task.output_layer=3",
            "+trainer.fast_dev_run=1",
            "trainer.enable_progress_bar=false",
        ]
    )
    trainer = train(cfg)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


def read_losses(exp_dir: Path) -> dict[int, float]:
    """step → train/loss; fails if a step was logged twice."""
    out = {}
    with open(exp_dir / "logs" / "metrics.csv") as rows:
        for row in csv.DictReader(rows):
            if row.get("train/loss"):
                assert int(row["step"]) not in out, f"step {row['step']} logged twice"
                out[int(row["step"])] = float(row["train/loss"])
    return out


def run_train(args: list[str], extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(
        os.environ, PYTHONPATH=f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1"
    )
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "maskgct.train", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


def test_sigkill_then_restart_continues_the_same_loss_curve(token_dump, tmp_path, one_thread):
    common = [
        "task=t2s",
        f"data.train_dump={token_dump}",
        "data.max_frames=80",
        "trainer.max_steps=16",
        "ckpt_every_n_steps=5",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        "task.warmup_steps=3",
    ]
    # The uninterrupted reference runs in this process (one thread, like the subprocesses).
    train(compose_cfg([*common, f"exp_dir={tmp_path / 'straight'}"]))
    killed = run_train(
        [
            *common,
            f"exp_dir={tmp_path / 'killed'}",
            "+callbacks=[{_target_: train_support.KillAtStep, step: 12}]",
        ]
    )
    assert killed.returncode == -9  # SIGKILL after step 12; the last checkpoint is at step 10
    assert (tmp_path / "killed" / "checkpoints" / "last.ckpt").is_file()
    resumed = run_train([*common, f"exp_dir={tmp_path / 'killed'}"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    reference, continued = read_losses(tmp_path / "straight"), read_losses(tmp_path / "killed")
    # One log: the rows before the checkpoint kept, those after it (trained again) replaced.
    assert sorted(continued) == sorted(reference) == list(range(16))
    np.testing.assert_allclose(
        [continued[s] for s in continued], [reference[s] for s in continued], rtol=1e-5
    )
    # The epoch has 3-4 batches: the restart happened mid-epoch, so the data order was resumed too.
    assert len(set(np.round(list(reference.values()), 4))) > 10


def test_lr_warms_up_stays_then_cools_down_to_zero():
    factors = [lr_factor(step, warmup_steps=4, cooldown_steps=4, max_steps=12) for step in range(13)]
    np.testing.assert_allclose(factors, [0.25, 0.5, 0.75, 1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25, 0])
    assert lr_factor(10**6, warmup_steps=4) == 1  # no cool-down: constant after the warm-up
    with pytest.raises(ValueError, match="trainer.max_steps"):
        adamw_with_warmup(
            [torch.nn.Parameter(torch.zeros(1))],
            {"lr": 1e-3, "betas": (0.9, 0.98), "weight_decay": 0.0, "warmup_steps": 1, "cooldown_steps": 5},
            max_steps=-1,
        )


def test_a_constant_rate_run_resumed_with_a_cooldown_decays_from_where_it_stopped(token_dump, tmp_path):
    """The WSD use: train at a constant rate, then resume with more steps and a cool-down over them."""
    common = ["task=t2s", f"data.train_dump={token_dump}", "data.max_frames=80", "task.lr=1e-3",
              "task.warmup_steps=1", "trainer.enable_progress_bar=false", f"exp_dir={tmp_path}"]  # fmt: skip
    rates = []
    for extra in (["trainer.max_steps=4"], ["trainer.max_steps=8", "task.cooldown_steps=4"]):
        train(compose_cfg([*common, *extra]))
        state = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        rates.append((state["global_step"], state["optimizer_states"][0]["param_groups"][0]["lr"]))
    assert rates == [(4, 1e-3), (8, 0.0)]


def test_ddp_two_cpu_processes_over_gloo(token_dump, tmp_path):
    run = run_train(
        [
            "task=s2a_1layer",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            f"data.train_dump={token_dump}",
            "data.max_frames=80",
            "trainer.max_steps=3",
            "trainer.enable_progress_bar=false",
            f"exp_dir={tmp_path}",
        ]
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in run.stderr + run.stdout
    assert (tmp_path / "model" / "s2a_1layer.safetensors").is_file()


def test_ddp_resume_continues_the_same_loss_curve(token_dump, tmp_path):
    """Two gloo processes: stopping at the step-6 checkpoint and resuming gives the uninterrupted curve, so
    each rank got back its own RNG state (masks and prompt lengths differ per rank) and its place in the
    data. Each rank has 2 batches an epoch here: the checkpoint falls on an epoch's last batch."""
    common = [
        "task=t2s",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        f"data.train_dump={token_dump}",
        "data.max_frames=80",
        "ckpt_every_n_steps=3",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        "task.warmup_steps=3",
    ]
    for exp_dir, steps in (("straight", 9), ("split", 6), ("split", 9)):
        run = run_train([*common, f"exp_dir={tmp_path / exp_dir}", f"trainer.max_steps={steps}"])
        assert run.returncode == 0, run.stderr[-3000:]
    reference, resumed = read_losses(tmp_path / "straight"), read_losses(tmp_path / "split")
    assert sorted(resumed) == sorted(reference) == list(range(9))
    np.testing.assert_allclose([resumed[s] for s in range(9)], [reference[s] for s in range(9)], rtol=1e-5)


def test_build_turns_off_lightnings_distributed_sampler(token_dump, tmp_path):
    cfg = compose_cfg(["task=t2s", f"exp_dir={tmp_path}", f"data.train_dump={token_dump}"])
    _, _, trainer = build(cfg)
    assert trainer._accelerator_connector.use_distributed_sampler is False


def test_init_from_starts_a_fresh_run_from_exported_weights(token_dump, tmp_path):
    common = [
        "task=t2s",
        f"data.train_dump={token_dump}",
        "data.max_frames=120",
        "trainer.max_steps=1",
        "trainer.enable_progress_bar=false",
    ]
    train(compose_cfg([*common, f"exp_dir={tmp_path / 'first'}"]))
    exported = load_network(tmp_path / "first" / "model", "network")
    module, _, _ = build(compose_cfg([*common, f"exp_dir={tmp_path / 'second'}"]))
    assert not torch.equal(module.net.mask_emb.weight, exported.mask_emb.weight)  # a fresh init differs
    init_weights(module, str(tmp_path / "first" / "model" / "network"))
    for key, value in exported.state_dict().items():
        assert torch.equal(module.net.state_dict()[key], value), key
    # A model config of another shape is refused with the tensor named, not silently half-loaded.
    wide, _, _ = build(compose_cfg([*common, "model.hidden_size=32", f"exp_dir={tmp_path / 'third'}"]))
    with pytest.raises(ValueError, match="has shape"):
        init_weights(wide, str(tmp_path / "first" / "model" / "network"))


def test_resume_never_unpickles_a_planted_checkpoint(token_dump, tmp_path):
    """A ``last.ckpt`` carrying a pickle payload is refused even when the environment asks torch to load
    without ``weights_only``."""
    marker = tmp_path / "payload-ran"
    (tmp_path / "exp" / "checkpoints").mkdir(parents=True)
    torch.save({"x": Payload(str(marker))}, tmp_path / "exp" / "checkpoints" / "last.ckpt")
    result = run_train(
        [
            "task=t2s",
            f"data.train_dump={token_dump}",
            "data.max_frames=120",
            "trainer.max_steps=1",
            f"exp_dir={tmp_path / 'exp'}",
        ],
        extra_env={"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"},
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "error: " in result.stderr and "refusing to resume" in result.stderr
    assert not marker.exists()


def test_a_damaged_last_checkpoint_falls_back_to_the_newest_readable_one(token_dump, tmp_path):
    """A truncated ``last.ckpt`` (written by something other than our atomic writer) does not block the
    rerun: it continues from the step checkpoint beside it."""
    common = [
        "task=t2s",
        f"data.train_dump={token_dump}",
        "data.max_frames=120",
        "ckpt_every_n_steps=2",
        "trainer.enable_progress_bar=false",
        f"exp_dir={tmp_path}",
    ]
    train(compose_cfg([*common, "trainer.max_steps=2"]))
    checkpoints = tmp_path / "checkpoints"
    assert not list(checkpoints.glob("*.tmp"))  # the atomic writer leaves no partial files
    last = checkpoints / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    with pytest.warns(UserWarning, match="skipping unreadable checkpoint"):
        trainer = train(compose_cfg([*common, "trainer.max_steps=3"]))
    assert trainer.global_step == 3  # resumed at step 2, not restarted from 0


class Payload:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_model_configs_are_the_release_and_fixture_sizes(fixtures):
    """The release's hyper-parameters live in the network configs' defaults; ``*_official`` adds nothing but
    the 1-layer keys, ``*_tiny`` overlays it with the fixtures' sizes, and the converter's release config
    derives from the same defaults. Checked against the release's and the fixtures' JSON."""
    from maskgct.codecs.acoustic_decoder import AcousticDecoderConfig
    from maskgct.codecs.acoustic_encoder import AcousticEncoderConfig
    from maskgct.codecs.semantic_codec import SemanticCodecConfig
    from maskgct.convert import OFFICIAL_CONFIG, model_block
    from maskgct.s2a import S2AConfig
    from maskgct.t2s import T2SConfig

    networks = {
        "t2s": (T2SConfig.from_amphion, lambda m: T2SConfig(**m)),
        "s2a_1layer": (S2AConfig.from_amphion, lambda m: S2AConfig(**m)),
        "s2a_full": (S2AConfig.from_amphion, lambda m: S2AConfig(**m)),
        "semantic_codec": (SemanticCodecConfig.from_amphion, lambda m: SemanticCodecConfig(**m)),
        "acoustic_encoder": (
            AcousticEncoderConfig.from_amphion,
            lambda m: AcousticEncoderConfig(**m.get("encoder", {})),
        ),
        "acoustic_decoder": (
            AcousticDecoderConfig.from_amphion,
            lambda m: AcousticDecoderConfig(**m.get("decoder", {})),
        ),
    }
    release = json.loads((fixtures / "maskgct_full_config.json").read_text())["model"]
    tiny = json.loads((fixtures / "tiny_config.json").read_text())["model"]
    for name, (from_amphion, from_yaml) in networks.items():
        task = name.replace("acoustic_encoder", "acoustic_codec").replace(
            "acoustic_decoder", "acoustic_codec"
        )
        official = model_config(f"{task}_official")
        expected = from_amphion(model_block(release, name))
        assert from_amphion(model_block(OFFICIAL_CONFIG, name)) == expected, name
        assert from_yaml(official) == expected, name
        assert from_yaml(model_config(f"{task}_tiny")) == from_amphion(model_block(tiny, name)), name
