"""S2A training against timbre leakage (issue 17): the timbre perturbation (``maskgct.data.perturb``), the
``semantic_perturbed`` dump field written by extraction, and ``task.semantic_field`` feeding it to S2A."""

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from omegaconf import OmegaConf
from scipy.signal import sosfreqz
from train_support import compose_cfg

from maskgct.audio import load_audio
from maskgct.data.__main__ import main as data_main
from maskgct.data.datadir import DataDir, write_datadir
from maskgct.data.extract import TokenExtractorConfig, extract
from maskgct.data.perturb import PerturbParams, apply, draw, peaking_sos, perturb_timbre, utterance_rng
from maskgct.data.shards import ShardWriter, TokenDump
from maskgct.train.__main__ import build, model_config
from maskgct.train.s2a import S2ATask

RATE = 16000
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def speech(fixtures) -> np.ndarray:
    """The fixtures' espeak prompt ("The birch canoe slid on the smooth planks.") at 16 kHz."""
    return load_audio(fixtures / "prompt.wav", RATE)


def test_perturbation_is_deterministic_per_utterance_and_keeps_the_length(speech):
    first = perturb_timbre(speech, RATE, "spk1-001")
    assert first.dtype == np.float32 and first.shape == speech.shape
    assert np.array_equal(first, perturb_timbre(speech, RATE, "spk1-001"))
    assert not np.allclose(first, perturb_timbre(speech, RATE, "spk1-002"), atol=1e-3)
    assert not np.allclose(first, perturb_timbre(speech, RATE, "spk1-001", seed=1), atol=1e-3)
    assert np.isclose(np.abs(first).max(), np.abs(speech).max(), rtol=1e-4)  # the same peak level
    for length in (16001, 7777, 3200):  # odd lengths too: the tokens must keep their frame count
        assert perturb_timbre(speech[:length], RATE, "u").shape == (length,)


def test_every_draw_moves_pitch_and_formants_the_same_way_by_at_least_the_minimum():
    params = [draw(utterance_rng(f"utt{k}")) for k in range(300)]
    semitones = np.array([p.semitones for p in params])
    formants = np.log2([p.formant_ratio for p in params]) * 12  # in semitones
    assert np.all((np.abs(semitones) >= 3) & (np.abs(semitones) <= 5))
    assert np.all((np.abs(formants) >= 12 * np.log2(1.15) - 1e-9) & (np.abs(formants) <= 12 * np.log2(1.3)))
    assert np.array_equal(np.sign(semitones), np.sign(formants))
    assert 0.4 < np.mean(semitones > 0) < 0.6  # up and down equally often


def vowel(f0: float, formant: float, seconds: float = 1.0) -> np.ndarray:
    """A steady vowel: harmonics of ``f0`` under one Gaussian formant at ``formant`` Hz (200 Hz wide)."""
    t = np.arange(int(seconds * RATE)) / RATE
    harmonics = np.arange(1, int(7000 / f0)) * f0
    gains = np.exp(-0.5 * ((harmonics - formant) / 200) ** 2) + 0.02
    phases = np.random.default_rng(0).uniform(0, 2 * np.pi, harmonics.size)
    wav = (gains[:, None] * np.cos(2 * np.pi * harmonics[:, None] * t + phases[:, None])).sum(0)
    return (0.3 * wav / np.abs(wav).max()).astype(np.float32)


def pitch_and_formant(wav: np.ndarray) -> tuple[float, float]:
    """Median YIN pitch, and the power centroid of 300-3000 Hz (where the one formant sits) of the middle."""
    import librosa

    f0 = float(np.median(librosa.yin(wav, fmin=50, fmax=400, sr=RATE)))
    middle = wav[len(wav) // 4 : 3 * len(wav) // 4]
    power = np.abs(np.fft.rfft(middle * np.hanning(len(middle)))) ** 2
    freqs = np.fft.rfftfreq(len(middle), 1 / RATE)
    band = (freqs > 300) & (freqs < 3000)
    return f0, float((freqs[band] * power[band]).sum() / power[band].sum())


@pytest.mark.parametrize(
    ("semitones", "formant_ratio"), [(-4.0, 1 / 1.25), (4.0, 1.0), (0.0, 1.25), (3.0, 1 / 1.2), (-3.0, 1.15)]
)
def test_pitch_and_formants_move_by_their_own_ratios(semitones, formant_ratio):
    """The harmonics move with the pitch, the envelope with the formant ratio, independently."""
    f0, formant = pitch_and_formant(vowel(110.0, 1000.0))
    assert abs(f0 - 110) < 2 and abs(formant - 1000) < 20
    out = apply(vowel(110.0, 1000.0), RATE, PerturbParams(semitones, formant_ratio, eq=()))
    f0, formant = pitch_and_formant(out)
    assert abs(f0 / (110 * 2 ** (semitones / 12)) - 1) < 0.03
    assert abs(formant / (1000 * formant_ratio) - 1) < 0.03


def test_equaliser_bands_have_their_gain_at_the_centre_and_none_far_away():
    sos = peaking_sos(1000.0, -7.5, 1.4, RATE)
    _, response = sosfreqz(sos, worN=[0.0, 1000.0, 7900.0], fs=RATE)
    gains = 20 * np.log10(np.abs(response))
    assert abs(gains[1] + 7.5) < 1e-6 and abs(gains[0]) < 0.05 and abs(gains[2]) < 0.2


def speech_datadir(root, speech) -> tuple:
    """Two utterances of the espeak prompt (whole and its first 1.3 s), written at 22.05 kHz."""
    import librosa

    data, audio = DataDir({}, {}, {}), {}
    for utt, wav in (("spk0-000", speech), ("spk0-001", speech[: int(1.3 * RATE)])):
        path = root / f"{utt}.wav"
        sf.write(path, librosa.resample(wav, orig_sr=RATE, target_sr=22050), 22050)
        data.wav_scp[utt], data.text[utt], data.utt2spk[utt] = str(path), "a b", "spk0"
        audio[utt] = load_audio(path, RATE)  # what the extractor reads
    write_datadir(root / "data", data)
    return root / "data", audio


def test_extraction_writes_the_perturbed_copys_tokens_frame_for_frame(
    speech, tiny_checkpoint, tmp_path, capsys
):
    from maskgct.codecs.semantic import SemanticTokenizer

    data_dir, audio = speech_datadir(tmp_path, speech)
    dump = tmp_path / "dump"
    fields = "--fields", "semantic,semantic_perturbed"
    args = ["extract", str(data_dir), str(dump), *fields, "--semantic-codec", str(tiny_checkpoint)]
    assert data_main(args) == 0
    tokenizer = SemanticTokenizer.from_pretrained(tiny_checkpoint)
    items = TokenDump(dump, ("semantic", "semantic_perturbed"))
    assert len(items) == 2
    for item in items:
        plain, perturbed = item["semantic"], item["semantic_perturbed"]
        assert plain.shape == perturbed.shape and plain.shape[0] > 0
        wav = audio[item["utt"]]
        assert np.array_equal(plain, tokenizer.tokenize(torch.from_numpy(wav)).numpy())
        expected = tokenizer.tokenize(torch.from_numpy(perturb_timbre(wav, RATE, item["utt"]))).numpy()
        assert np.array_equal(perturbed, expected)
        assert not np.array_equal(plain, perturbed)  # the copy really is another voice to the tokenizer

    # Resuming into the dump with other fields would leave shards without them: refused.
    other = TokenExtractorConfig(fields=("semantic",), semantic_codec=str(tiny_checkpoint))
    with pytest.raises(ValueError, match="same --fields"):
        extract(data_dir, dump, factory_arg=other)

    # A misspelt field: one error line, exit 2, and no dump dir started.
    capsys.readouterr()
    bad = ["extract", str(data_dir), str(tmp_path / "bad"), "--fields", "semantic,semantic_perturbd"]
    assert data_main(bad) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "semantic_perturbd" in err and err.count("\n") == 1
    assert not (tmp_path / "bad").exists()


@pytest.fixture(scope="module")
def perturbed_dump(tmp_path_factory):
    """Six utterances whose perturbed tokens differ from the plain ones everywhere."""
    out = tmp_path_factory.mktemp("perturbed_dump")
    rng = np.random.default_rng(0)
    writer = ShardWriter(out, "job000")
    tokens = {}
    for i in range(6):
        semantic = rng.integers(0, 500, int(rng.integers(20, 40)))
        perturbed = (semantic + 1 + rng.integers(0, 10, semantic.shape)) % 512
        acoustic = (semantic[:, None] * 7 + np.arange(12)[None] * 11) % 64
        utt = f"spk{i % 2}-{i:03d}"
        writer.add(
            utt, f"spk{i % 2}", {"semantic": semantic, "semantic_perturbed": perturbed, "acoustic": acoustic}
        )
        tokens[utt] = {"semantic": semantic, "semantic_perturbed": perturbed, "acoustic": acoustic}
    writer.flush()
    return out, tokens


@pytest.mark.parametrize("task", ["s2a_1layer", "s2a_full"])
@pytest.mark.parametrize("field", [None, "semantic_perturbed"])
def test_s2a_step_conditions_on_the_chosen_tokens_with_the_original_targets(
    task, field, perturbed_dump, tmp_path
):
    dump, tokens = perturbed_dump
    overrides = [f"task={task}", f"exp_dir={tmp_path}", f"data.train_dump={dump}", "data.max_frames=120"]
    overrides += ["+trainer.fast_dev_run=2", "trainer.enable_progress_bar=false"]
    overrides += [f"task.semantic_field={field}"] if field else []
    module, datamodule, trainer = build(compose_cfg(overrides))
    seen = []
    network_loss = module.net.loss

    def recording_loss(semantic, semantic_mask, acoustic, acoustic_mask, **kwargs):
        seen.append((semantic.clone(), semantic_mask.clone(), acoustic.clone()))
        return network_loss(semantic, semantic_mask, acoustic, acoustic_mask, **kwargs)

    module.net.loss = recording_loss
    batches = []
    module_losses = module.losses
    module.losses = lambda batch: batches.append(batch) or module_losses(batch)
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == 2 and len(seen) == 2
    name = field or "semantic"
    for batch, (semantic, mask, acoustic) in zip(batches, seen, strict=True):
        # Only the conditioning field is loaded: the default run never sees the perturbed tokens.
        assert {"semantic", "semantic_perturbed"} & batch.keys() == {name}
        for row, utt in enumerate(batch["utt_ids"]):
            length = int(mask[row].sum())
            assert np.array_equal(semantic[row, :length].numpy(), tokens[utt][name])
            assert np.array_equal(acoustic[row, :length].numpy(), tokens[utt]["acoustic"])  # the original's
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


def test_s2a_task_refuses_an_unknown_semantic_field():
    with pytest.raises(ValueError, match="semantic_field"):
        S2ATask(model_config("s2a_1layer_tiny"), semantic_field="acoustic")


RECIPE_STAGE_11 = """set -euo pipefail
frontend=whisper whisper=tiny.en layer="" acoustic=mel lr=1e-3 model_size=tiny experiment=synth_tiny
trainer=cpu nj=2 max_frames=3000 s2a_args="" stage=11 stop_stage=11 vc_finetune=${1:-false}
train_cmd=echo
. egs/utils/recipe_functions.sh
python() { echo python "$@"; }
. egs/utils/maskgct_stages.sh
"""


def test_recipe_stage_11_extracts_the_field_and_finetunes_both_s2a_models_on_it(tmp_path):
    """The recipes' VC stage, its commands echoed instead of run; the training commands compose."""
    (tmp_path / "stage.sh").write_text(RECIPE_STAGE_11)
    runs = [
        subprocess.run(["bash", str(tmp_path / "stage.sh"), *args], capture_output=True, text=True, cwd=REPO)
        for args in ([], ["true"])
    ]
    assert runs[0].returncode == runs[1].returncode == 0, runs[1].stderr
    assert runs[0].stdout == ""  # off by default
    log, *commands = runs[1].stdout.splitlines()
    assert "[stage 11] voice conversion" in log
    extracts = [c for c in commands if " extract " in c]
    trains = [c for c in commands if " maskgct.train " in c]
    assert len(extracts) == 2 and all("--fields semantic_perturbed,acoustic" in c for c in extracts)
    assert [c.split()[5] for c in extracts] == ["dump/train_vc", "dump/dev_vc"]
    assert commands[-1].startswith("python -m maskgct.data assemble exp/maskgct_vc ")
    assert "--s2a-1layer exp/s2a_1layer_vc/model --s2a-full exp/s2a_full_vc/model" in commands[-1]
    for task, command in zip(("s2a_1layer", "s2a_full"), trains, strict=True):
        cfg = compose_cfg(command.split(" maskgct.train ")[1].split())
        assert cfg.exp_dir == f"exp/{task}_vc" and cfg.init_from == f"exp/{task}/model/{task}"
        assert cfg.task.semantic_field == "semantic_perturbed" and cfg.data.train_dump == "dump/train_vc"
        assert OmegaConf.to_container(cfg.data, resolve=True)["fields"] == ["semantic_perturbed", "acoustic"]
