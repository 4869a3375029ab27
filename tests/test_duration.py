"""Duration model: the official rule, batch-independent predictions, bad input, same-speaker pairs, exact
resume through ``maskgct.train``, and a tiny model beating the rule on held-out synthetic voices."""

import logging

import lightning as L
import numpy as np
import pytest
import torch
from train_support import compose_cfg, quiet_trainer

from maskgct.checkpoint import load_network, save_network
from maskgct.data.duration import DataDirUtterances, DurationDataModule
from maskgct.data.shards import ShardWriter
from maskgct.data.synth import ESPEAK_VOICES, build_corpus
from maskgct.duration import DurationConfig, DurationModel, rule_frames
from maskgct.train.__main__ import train
from maskgct.train.duration import DurationTask, compare_with_rule

TINY = {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "log_scale": 0.1}
# The held-out comparison: corpus size and training (about 10 s of CPU). Over seeds 0-3 the model's error
# was 0.76-0.83 of the rule's.
UTTS, STEPS, BATCH, LR, MARGIN = 20, 300, 16, 2e-3, 0.9


def tiny_model(seed: int = 0) -> DurationModel:
    torch.manual_seed(seed)
    return DurationModel(DurationConfig(**TINY)).eval()


def two_pairs() -> dict:
    """Rows of different prompt and target lengths (right-padded with 1023)."""
    prompt = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 1023, 1023, 1023]])
    target = torch.tensor([[12, 13, 1023], [14, 15, 16]])
    return {
        "prompt_phone_ids": prompt,
        "prompt_phone_mask": (prompt != 1023).long(),
        "prompt_frames": torch.tensor([80, 30]),
        "phone_ids": target,
        "phone_mask": (target != 1023).long(),
        "frames": torch.tensor([40, 50]),
    }


def model_inputs(batch: dict, rows=slice(None)) -> tuple:
    keys = ("prompt_phone_ids", "prompt_phone_mask", "prompt_frames", "phone_ids", "phone_mask")
    return tuple(batch[k][rows] for k in keys)


def test_rule_is_the_official_phone_ratio():
    # The bundled official example: a 6.3 s prompt (315 frames), 45 prompt ids, 154 target ids -> 21.6 s.
    assert rule_frames(315, 45, 154) == 1078
    assert rule_frames(100.9, 10, 10) == 100  # truncated like the reference's int()
    with pytest.raises(ValueError, match="prompt"):
        rule_frames(0, 45, 154)


def test_rows_are_independent_of_their_batch():
    model = tiny_model()
    batch = two_pairs()
    x, t = torch.tensor([0.3, -1.2]), torch.tensor([0.25, 0.75])
    with torch.no_grad():
        together = model.velocity(x, t, *model.encode_inputs(*model_inputs(batch)))
        for row in range(2):
            prompt_len, target_len = (
                int(batch["prompt_phone_mask"][row].sum()),
                int(batch["phone_mask"][row].sum()),
            )
            alone = model_inputs(batch, slice(row, row + 1))
            alone = (alone[0][:, :prompt_len], alone[1][:, :prompt_len], alone[2], alone[3][:, :target_len])
            alone = alone + (torch.ones_like(alone[3]),)
            single = model.velocity(x[row : row + 1], t[row : row + 1], *model.encode_inputs(*alone))
            torch.testing.assert_close(single[0], together[row], atol=1e-5, rtol=1e-5)
    # A one-utterance call gives the batched call's frames: the median, and samples with the same noise.
    batched = model.predict_frames(*model_inputs(batch))
    assert model.predict_utterance(80, [5, 6, 7, 8, 9], [12, 13]) == pytest.approx(
        float(batched[0]), rel=1e-5
    )
    sampled = model.predict_frames(
        *model_inputs(batch), num_samples=4, generator=torch.Generator().manual_seed(3)
    )
    single = model.predict_utterance(
        80, [5, 6, 7, 8, 9], [12, 13], num_samples=4, generator=torch.Generator().manual_seed(3)
    )
    assert single == pytest.approx(float(sampled[0]), rel=1e-5) and single != pytest.approx(float(batched[0]))
    assert bool((batched >= 1).all())


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda b: b["phone_mask"].zero_(), "at least one target phone"),
        (lambda b: b["prompt_phone_ids"].fill_(2000), "prompt phone ids must lie"),
        (lambda b: b["prompt_frames"].zero_(), "positive duration"),
        (lambda b: b.update(phone_ids=b["phone_ids"][:1], phone_mask=b["phone_mask"][:1]), "same B"),
    ],
)
def test_bad_input_is_a_clear_value_error(edit, message):
    model = tiny_model()
    batch = two_pairs()
    edit(batch)
    with pytest.raises(ValueError, match=message):
        model.loss(*model_inputs(batch), batch["frames"])
    with pytest.raises(ValueError, match="needs prompt phones"):
        model.predict_utterance(100, [], [1, 2])


def test_a_plain_token_batch_is_rejected_with_a_hint():
    task = DurationTask(model=TINY)
    batch = two_pairs()
    del batch["prompt_phone_ids"]
    with pytest.raises(ValueError, match="data=duration"):
        task.losses(batch)


def write_dump(root, speakers: dict[str, int]) -> None:
    """``speakers``: name -> number of utterances; phone ids and semantic lengths depend on the index."""
    writer = ShardWriter(root, "shard")
    rng = np.random.default_rng(0)
    for spk, count in speakers.items():
        for u in range(count):
            phones = rng.integers(0, 300, 4 + u)
            writer.add(
                f"{spk}-{u:02d}", spk, {"phone_ids": phones, "semantic": np.zeros(10 * (4 + u), np.int64)}
            )
    writer.flush()


def test_pairs_from_a_dump_share_the_speaker(tmp_path):
    write_dump(tmp_path, {"a": 3, "b": 2, "c": 1})
    data = DurationDataModule(train_dump=str(tmp_path), batch_size=6, seed=1)
    batch = next(iter(data.train_dataloader()))
    assert batch["phone_ids"].shape[0] == 6
    for utt, prompt, frames, mask in zip(
        batch["utt_ids"], batch["prompt_utt_ids"], batch["frames"], batch["phone_mask"], strict=True
    ):
        assert utt[0] == prompt[0]  # same speaker
        assert (utt == prompt) == utt.startswith("c")  # a lone utterance prompts with itself
        assert int(frames) == 10 * int(mask.sum())  # the semantic length is the duration
    with pytest.raises(ValueError, match="exactly one"):
        DurationDataModule(train_dump=str(tmp_path), train_dir="x").train_dataloader()


def test_training_resumes_exactly(tmp_path, one_thread):
    write_dump(tmp_path / "dump", {"a": 4, "b": 4})
    common = [
        "task=duration",
        "model.hidden_size=32",
        "model.num_layers=1",
        f"data.train_dump={tmp_path / 'dump'}",
        "data.batch_size=3",
        "ckpt_every_n_steps=3",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        "task.warmup_steps=2",
    ]
    straight = train(compose_cfg([*common, "trainer.max_steps=6", f"exp_dir={tmp_path / 'straight'}"]))
    train(compose_cfg([*common, "trainer.max_steps=3", f"exp_dir={tmp_path / 'split'}"]))
    resumed = train(compose_cfg([*common, "trainer.max_steps=6", f"exp_dir={tmp_path / 'split'}"]))
    assert resumed.global_step == 6
    a = straight.lightning_module.net.state_dict()
    b = load_network(tmp_path / "split" / "model", "network").state_dict()
    for key, value in a.items():
        assert torch.equal(b[key], value), key


def test_tiny_model_beats_the_phone_ratio_rule_on_heldout_voices(tmp_path, capsys, one_thread):
    # The synthetic corpus's espeak voices; espeak_sc_f1 and espeak_carib_m6 are held out of training.
    build_corpus(tmp_path, ESPEAK_VOICES, utts_per_speaker=UTTS, dev_per_speaker=0)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    L.seed_everything(0)
    task = DurationTask(model=TINY, lr=LR, warmup_steps=20)
    data = DurationDataModule(train_dir=str(tmp_path / "train"), batch_size=BATCH, seed=0)
    # Gradient clipping as conf/trainer: without it some seeds learn much more slowly.
    quiet_trainer(max_steps=STEPS, gradient_clip_val=1.0).fit(task, data)
    scores = compare_with_rule(task.net.eval(), DataDirUtterances(tmp_path / "test"), prompts_per_target=4)
    with capsys.disabled():
        print(
            f"\nheld-out voices, {scores['pairs']} pairs: MAE(log duration) model {scores['mae_log']:.4f}, "
            f"rule {scores['mae_log_rule']:.4f}"
        )
    assert scores["mae_log"] < MARGIN * scores["mae_log_rule"]


def test_auto_duration_in_the_voice_clone_api(fixtures, tiny_checkpoint, tmp_path):
    import shutil

    from pipeline_support import PROMPT_TEXT, TARGET_TEXT

    from maskgct.api import MaskGCT
    from maskgct.text import text_to_ids

    folder = shutil.copytree(tiny_checkpoint, tmp_path / "checkpoint")  # the shared one stays unchanged
    save_network(tiny_model(), folder, "duration")
    tts = MaskGCT.from_pretrained(folder)
    assert isinstance(tts.duration, DurationModel)
    tts.save_pretrained(tmp_path / "copy")
    assert (tmp_path / "copy" / "duration.safetensors").is_file()

    prompt = tts.encode_prompt(fixtures / "prompt.wav", PROMPT_TEXT)
    seconds = tts.predicted_seconds(prompt, text_to_ids(TARGET_TEXT))
    assert seconds == tts.predicted_seconds(prompt, text_to_ids(TARGET_TEXT))  # deterministic
    fast = dict(mode="fast", steps=1, s2a_steps=[1] * 12, seed=0)
    result = tts.clone_with_details(prompt, text=TARGET_TEXT, duration="auto", speed=1.25, **fast)
    assert result.chunks[0].semantic.shape[0] == int(seconds * 50 / 1.25)
