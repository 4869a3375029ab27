"""``python -m maskgct.train task=<name> [experiment=<name>] [key=value ...]``.

The contract every task follows (see ``conf/train.yaml``):

* ``cfg.task`` is a LightningModule (``_target_``), built with ``model=<cfg.model as a dict>`` plus the
  task's own keys (losses, optimiser);
* ``cfg.data`` is a LightningDataModule (``_target_``);
* ``cfg.trainer`` holds ``lightning.Trainer`` arguments.

Checkpoints go to ``<exp_dir>/checkpoints`` every ``ckpt_every_n_steps`` steps; if ``last.ckpt`` is there,
the run resumes from it, so a killed run is restarted with the same command.
"""

from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def build(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule, L.Trainer]:
    """Build the module, data and trainer of a composed config (no training)."""
    L.seed_everything(cfg.seed, workers=True)
    exp_dir = Path(cfg.exp_dir)
    module = instantiate(cfg.task, model=OmegaConf.to_container(cfg.model, resolve=True), _recursive_=False)
    datamodule = instantiate(cfg.data, _recursive_=False)
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=exp_dir / "checkpoints",
        every_n_train_steps=cfg.ckpt_every_n_steps,
        save_last=True,
        save_top_k=-1,
    )
    loggers = [
        L.pytorch.loggers.CSVLogger(exp_dir, name="logs", version=""),
        L.pytorch.loggers.TensorBoardLogger(exp_dir, name="tensorboard", version=""),
    ]
    trainer = L.Trainer(
        **OmegaConf.to_container(cfg.trainer, resolve=True),
        default_root_dir=exp_dir,
        callbacks=[checkpoints],
        logger=loggers,
    )
    return module, datamodule, trainer


def train(cfg: DictConfig) -> L.Trainer:
    module, datamodule, trainer = build(cfg)
    last = Path(cfg.exp_dir) / "checkpoints" / "last.ckpt"
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if last.exists() else None)
    return trainer


@hydra.main(config_path=CONF_DIR, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()
