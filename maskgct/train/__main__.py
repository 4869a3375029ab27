"""``python -m maskgct.train task=<name> [experiment=<name>] [key=value ...]``.

The contract every task follows (see ``conf/train.yaml``):

* ``cfg.task`` is a LightningModule (``_target_``), built with ``model=<cfg.model as a dict>`` plus the
  task's own keys (losses, optimiser);
* ``cfg.data`` is a LightningDataModule (``_target_``);
* ``cfg.trainer`` holds ``lightning.Trainer`` arguments; ``trainer=ddp`` runs lightning's DDP (gloo on CPU);
* optional ``callbacks``: a list of extra ``_target_`` callbacks (``+callbacks=[...]``);
* ``logger=csv`` (the default: ``<exp_dir>/logs/metrics.csv``, always written), ``tensorboard`` or ``wandb``
  (``conf/logger``: a second logger beside metrics.csv; a missing package is one error line).

Checkpoints go to ``<exp_dir>/checkpoints`` every ``ckpt_every_n_steps`` steps; if ``last.ckpt`` is there,
the run resumes from it, so a killed run is restarted with the same command. Resuming is exact: the
checkpoint carries the RNG states (``maskgct.train.rng``, mixed into every task), and our data modules skip
the batches already trained on, so the loss curve continues as if the run had never stopped (and
``<exp_dir>/logs/metrics.csv`` holds it once, each step logged by the run that kept it). When training
ends, the network is exported to ``<exp_dir>/model`` (the task's ``export(dir)`` when it has one, else
``maskgct.checkpoint.save_network``).

Fine-tuning: ``init_from=`` starts a fresh run from trained weights, a checkpoint folder (the task's network
picked), ``DIR/NAME`` or one of our ``.ckpt`` files, loaded strictly (``maskgct.train.init``; the model
config must describe the same shapes, e.g. ``model=t2s_official`` for a converted release); ``freeze=[...]``
and ``freeze_layers=N`` keep parts fixed (``maskgct.train.freeze``); ``extra_phones=FILE`` appends phones of
a new language (``maskgct.train.phones``). A run that resumes from its own ``last.ckpt`` loads no
``init_from`` and adds no phones (the checkpoint has them), but freezes the same parts. Resuming reads the
checkpoint with ``weights_only=True``: a planted pickle never runs.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import pickle
import sys
import warnings
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf

from maskgct.checkpoint import CheckpointError, save_network
from maskgct.cli import report_error
from maskgct.data.datadir import DataDirError
from maskgct.data.shards import DumpError
from maskgct.train.freeze import apply_freeze
from maskgct.train.init import init_weights
from maskgct.train.overrides import OverrideError, check_overrides, error_line
from maskgct.train.phones import extend_phone_table, phone_table, read_extra_phones, write_phone_list

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")

# Lightning warnings that do not apply to these runs: a resumed run finds its checkpoints, our data modules
# resume mid-epoch themselves (the kill/resume test proves it), the GAN codec checkpoints after its optimiser
# steps by design, tasks without validation data have an empty validation loader, and the pytree one is
# lightning's own deprecation.
for _message in (
    r"Checkpoint directory .* exists and is not empty",
    "You're resuming from a checkpoint that ended before the epoch ended",
    "Using ModelCheckpoint with manual optimization",
    "Total length of `list` across ranks is zero",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
):
    warnings.filterwarnings("ignore", message=_message)


class AtomicCheckpointIO(L.pytorch.plugins.TorchCheckpointIO):
    """Write each checkpoint to ``<name>.tmp`` beside its target, fsync, then rename over it.

    Lightning's own writer stages the file in the temporary folder and moves it: across file systems (a
    tmpfs ``TMPDIR``) that move is a copy, and a kill during it leaves a truncated ``last.ckpt``. A rename
    within one folder is atomic: the target is always the old or the new checkpoint, never half of one.
    """

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".tmp")
        with partial.open("wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)


class _ResumableCSVWriter(L.pytorch.loggers.csv_logs.ExperimentWriter):
    """Lightning's CSV writer deletes an existing ``metrics.csv``. When ``resuming``, this one keeps it
    and, on its first save, drops the rows from the first step it logs on (steps trained again after the
    checkpoint) before appending; a fresh run starts a new file."""

    def __init__(self, log_dir: str, resuming: bool):
        self.resuming = resuming
        self._truncate_pending = resuming
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if not path.is_file():
            self._truncate_pending = False
        elif self.resuming:
            with path.open(newline="") as file:
                self.metrics_keys = list(csv.DictReader(file).fieldnames or [])
        else:
            path.unlink()

    def save(self) -> None:
        if self._truncate_pending and self.metrics:
            self._truncate_pending = False
            first = min(int(row["step"]) for row in self.metrics)
            path = Path(self.metrics_file_path)
            with path.open(newline="") as file:
                rows = [row for row in csv.DictReader(file) if int(row["step"]) < first]
            with path.open("w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(rows)
        super().save()


class CSVLogger(L.pytorch.loggers.CSVLogger):
    """``<exp_dir>/logs/metrics.csv``, continued (not overwritten) by a resumed run."""

    def __init__(self, exp_dir: Path, resuming: bool):
        super().__init__(exp_dir, name="logs", version="")
        self.resuming = resuming

    @property
    @rank_zero_experiment
    def experiment(self) -> _ResumableCSVWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ResumableCSVWriter(self.log_dir, self.resuming)
        return self._experiment


def build(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule, L.Trainer]:
    """Build the module, data and trainer of a composed config (no training)."""
    second_logger = logger_spec(cfg)  # first: a missing logger package is refused before any work
    L.seed_everything(cfg.seed, workers=True)
    exp_dir = Path(cfg.exp_dir)
    # _convert_="all": plain lists and dicts, so hyper-parameters in checkpoints load with weights_only=True.
    module = instantiate(
        cfg.task, model=OmegaConf.to_container(cfg.model, resolve=True), _recursive_=False, _convert_="all"
    )
    # Before lightning builds the optimisers: they hold only the parameters left trainable.
    apply_freeze(module, list(cfg.get("freeze") or []), int(cfg.get("freeze_layers") or 0))
    datamodule = instantiate(cfg.data, _recursive_=False, _convert_="all")
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=exp_dir / "checkpoints",
        filename="{step}",
        every_n_train_steps=cfg.ckpt_every_n_steps,
        save_last=True,
        save_top_k=1,  # with no monitored metric: keep the newest step checkpoint beside last.ckpt
    )
    extra = [instantiate(c) for c in cfg.get("callbacks", None) or []]
    loggers = [CSVLogger(exp_dir, resuming=last_checkpoint(cfg).parent.is_dir())]
    if second_logger is not None:
        loggers.append(instantiate(second_logger))
    trainer_args = OmegaConf.to_container(cfg.trainer, resolve=True)
    # Our data modules split batches over ranks themselves (and resume mid-epoch); lightning must not
    # wrap their samplers in a DistributedSampler.
    trainer_args.setdefault("use_distributed_sampler", False)
    if not module.automatic_optimization:
        # Manual optimisation (the GAN codec) clips its gradients itself; lightning refuses to.
        trainer_args.pop("gradient_clip_val", None)
    try:
        trainer = L.Trainer(
            **trainer_args,
            default_root_dir=exp_dir,
            callbacks=[checkpoints, *extra],
            logger=loggers,
            plugins=[AtomicCheckpointIO()],
        )
    except (ValueError, TypeError, ImportError, MisconfigurationException) as err:
        # A trainer.* value lightning refuses (precision=abc, an accelerator whose package is missing).
        raise TrainerSettingError(f"trainer: {err}") from err
    return module, datamodule, trainer


class TrainerSettingError(ValueError):
    """A ``trainer.*`` setting that lightning refuses."""


class LoggerUnavailable(ValueError):
    """The chosen ``logger=`` needs a package that is not installed."""


def logger_spec(cfg: DictConfig) -> dict | None:
    """The ``logger`` group's logger beside metrics.csv (``conf/logger``) to instantiate: None for ``csv``,
    else its ``_target_`` and arguments, once the package it ``requires`` is known to be installed."""
    logger = cfg.get("logger")
    if not logger or "_target_" not in logger:
        return None
    package = logger.get("requires")
    if package is not None and importlib.util.find_spec(package) is None:
        choice = logger["_target_"].rsplit(".", 1)[-1]
        raise LoggerUnavailable(f"{choice} needs the {package!r} package: pip install {package}")
    spec = OmegaConf.to_container(logger, resolve=True)
    spec.pop("requires", None)
    return spec


def export(module: L.LightningModule, directory: Path, name: str) -> None:
    """Write the trained network for inference and token extraction."""
    if hasattr(module, "export"):
        module.export(directory)
    else:
        save_network(module.net, directory, name)


def model_config(name: str) -> dict:
    """``conf/model/<name>.yaml`` merged onto its base (the sizes overlay their official or default model,
    whose omitted keys are the network config's defaults), as plain containers: a task's ``model``."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return OmegaConf.to_container(compose(f"model/{name}").model, resolve=True)


def task_name() -> str:
    """The ``task`` group's choice (``t2s``, ``s2a_full``, ...) names the exported network."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.choices["task"] if HydraConfig.initialized() else "network"


def last_checkpoint(cfg: DictConfig) -> Path:
    """Where a run of ``cfg`` keeps the checkpoint it resumes from."""
    return Path(cfg.exp_dir) / "checkpoints" / "last.ckpt"


def resume_checkpoint(cfg: DictConfig) -> Path | None:
    """The checkpoint a rerun continues from: ``last.ckpt``, or when it cannot be read (a file damaged
    outside our atomic writes, a full disk) the newest other checkpoint of the run that can. None: a fresh
    run."""
    folder = last_checkpoint(cfg).parent
    others = (
        sorted(folder.glob("*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
        if folder.is_dir()
        else []
    )
    candidates = [p for p in [last_checkpoint(cfg), *others] if p.is_file()]
    for path in dict.fromkeys(candidates):
        try:
            # mmap reads the archive's index, not the tensors: cheap, and a truncated file fails here.
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except pickle.UnpicklingError as err:
            raise CheckpointError(
                f"{path}: refusing to resume from it: it holds Python objects beyond tensors and plain "
                f"containers ({str(err).splitlines()[0]}); delete it if you did not write it"
            ) from None
        except Exception as err:  # torch raises several error types for damaged archives
            warnings.warn(
                f"skipping unreadable checkpoint {path} ({type(err).__name__}: {err})", stacklevel=2
            )
            continue
        return path
    return None


def train(cfg: DictConfig) -> L.Trainer:
    module, datamodule, trainer = build(cfg)
    resume = resume_checkpoint(cfg)
    extra_phones = read_extra_phones(cfg.extra_phones) if cfg.get("extra_phones") else []
    if extra_phones:
        phone_table(module.net)  # refuse a task without phones before training, not at export
    if resume is None and cfg.get("init_from"):
        init_weights(module, cfg.init_from)
    if resume is None and extra_phones:
        extend_phone_table(phone_table(module.net), extra_phones)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    if trainer.is_global_zero and not trainer.interrupted:
        export(module, Path(cfg.exp_dir) / "model", task_name())
        if extra_phones:
            write_phone_list(Path(cfg.exp_dir) / "model", extra_phones)
    return trainer


@hydra.main(config_path=CONF_DIR, config_name="train", version_base="1.3")
def hydra_main(cfg: DictConfig) -> None:
    try:
        train(cfg)
    except BAD_INPUT as err:
        if full_errors():
            raise
        sys.exit(report_error(error_line(err)))


# What a run's settings or inputs can be wrong with (a missing or foreign data path, a checkpoint, a logger,
# a value lightning or a constructor refuses): one error line. Anything else is a bug and keeps its trace.
BAD_INPUT = (
    CheckpointError,
    LoggerUnavailable,
    DumpError,
    DataDirError,
    InstantiationException,
    MisconfigurationException,
    TrainerSettingError,
)


def full_errors() -> bool:
    """``--verbose`` or hydra's own ``HYDRA_FULL_ERROR=1``: show an error's full trace, not one line."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def usage(prog: str) -> str:
    """The ``--help`` text: hydra's own help composes the config first, which fails without a task."""
    conf = Path(CONF_DIR)
    tasks, experiments = (
        [p.stem for p in sorted((conf / kind).glob("*.yaml"))] for kind in ("task", "experiment")
    )
    return (
        f"usage: {prog} task=<task> [experiment=<name>] [key=value ...]\n\n"
        "Train one network of MaskGCT; the settings are hydra overrides of conf/train.yaml.\n\n"
        f"tasks:       {', '.join(tasks)}\n"
        f"experiments: {', '.join(experiments)}\n\n"
        f"example: {prog} task=t2s experiment=synth_tiny trainer.max_steps=100\n"
        f"errors are one line; --verbose (or HYDRA_FULL_ERROR=1) shows the full trace\n"
        f"hydra's own options: {prog} --hydra-help"
    )


def main() -> int | None:
    """Hydra reads ``sys.argv`` itself; ``-h``/``--help`` is answered here instead, and plain overrides
    (no hydra flags) are checked before hydra starts a run (``maskgct.train.overrides``)."""
    if any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        prog = sys.argv[0] if sys.argv[0].startswith("maskgct ") else "python -m maskgct.train"
        print(usage(prog))
        return 0
    if "--verbose" in sys.argv[1:]:
        sys.argv = [arg for arg in sys.argv if arg != "--verbose"]
        os.environ["HYDRA_FULL_ERROR"] = "1"  # hydra then prints the trace too
    overrides = sys.argv[1:]
    if not any(arg.startswith("-") for arg in overrides):
        try:
            check_overrides(CONF_DIR, overrides)
        except OverrideError as err:
            if full_errors():
                raise
            return report_error(err)
    return hydra_main()


if __name__ == "__main__":
    sys.exit(main())
