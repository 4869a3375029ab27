"""The package layout, the stdlib `codecs` clash, the fixtures and the hydra config tree."""

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from maskgct.train.__main__ import CONF_DIR


def test_stdlib_codecs_and_ours_both_import():
    # In a fresh interpreter started from the repo root, where a `codecs/` folder sits on sys.path.
    code = (
        "import codecs, maskgct.codecs as ours; "
        "assert codecs.lookup('utf-8').name == 'utf-8'; "
        "assert ours.__name__ == 'maskgct.codecs'; "
        "print(codecs.__file__, ours.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stdlib_file, ours_file = out.split()
    assert "site-packages" not in stdlib_file and Path(stdlib_file).name == "codecs.py"
    assert Path(ours_file).parent.name == "codecs" and Path(ours_file).name == "__init__.py"


def test_fixtures_present(fixtures):
    for name in ["tiny_config.json", "phone_vocab.json", "prompt.wav", "t2s.safetensors", "keys_full"]:
        assert (fixtures / name).exists(), name


def _tasks() -> list[str]:
    return sorted(p.stem for p in (Path(CONF_DIR) / "task").glob("*.yaml"))


def test_config_groups_exist():
    for group in ["task", "model", "data", "trainer", "experiment"]:
        assert (Path(CONF_DIR) / group).is_dir(), group


@pytest.mark.parametrize("trainer", ["cpu", "cpu_bf16", "gpu", "ddp"])
def test_trainer_configs_compose(trainer):
    import lightning as L

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        kwargs = dict(compose(f"trainer/{trainer}").trainer)
    assert kwargs["max_steps"] > 0
    if trainer.startswith("cpu"):
        L.Trainer(**kwargs, logger=False, enable_checkpointing=False)


@pytest.mark.parametrize("task", _tasks())
def test_every_task_composes_with_tiny_and_larger_models(task):
    """Every task has a tiny model for tests and a full size: the release's (official) and/or the shipped
    default model's (the mel codec has no official counterpart)."""
    sizes = [
        size
        for size in ("official", "default")
        if (Path(CONF_DIR) / "model" / f"{task}_{size}.yaml").is_file()
    ]
    assert sizes, f"{task} has no official or default model config"
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        tiny = compose("train", overrides=[f"task={task}"])
        for size in sizes:
            larger = compose("train", overrides=[f"task={task}", f"model={task}_{size}"])
            assert tiny.model != larger.model, size
    assert tiny.task._target_.startswith("maskgct.") and tiny.data._target_.startswith("maskgct.")


def test_task_is_mandatory():
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        with pytest.raises(Exception, match="task"):
            compose("train")
