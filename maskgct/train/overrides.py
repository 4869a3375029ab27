"""The training command line checked before hydra starts a run: one ``error:`` line naming the bad override.

Hydra reports a composition error in several lines ending in "Set the environment variable
HYDRA_FULL_ERROR=1", and it accepts any value for any key: ``trainer.max_steps=abc`` composes and only fails
deep inside lightning with a ``TypeError`` that names neither the key nor the value. Here the overrides are
composed once as hydra will compose them; a composition error becomes one line, a value of the wrong type
is refused by name (a ``trainer.*`` value by lightning's declared type, so ``trainer.devices=auto`` stays
valid; any other by the type of the int, float or bool in ``conf/`` it replaces),
and so is a data path that is missing or not what the task reads (``data.*_dump``: a token dump of
``python -m maskgct.data extract``; ``data.*_dir``: a Kaldi data dir) — before lightning starts and hydra
writes anything into the experiment folder.
"""

from __future__ import annotations

import functools
import re
import typing
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, InstantiationException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from maskgct.data.datadir import DataDirError, read_datadir
from maskgct.value_types import describe_type, fits_type


class OverrideError(ValueError):
    """An override that hydra cannot compose, or whose value has the wrong type; the message names it."""


def one_line(message: str) -> str:
    """Hydra's multi-line message as one line: the option lists joined after their heading, the config
    search path (hydra's internals) dropped."""
    parts: list[str] = []
    for line in message.splitlines():
        if line.startswith("Config search path"):
            break
        if line.startswith("\t") and parts:
            separator = " " if parts[-1].endswith(":") else ", "
            parts[-1] += separator + line.strip()
        elif line.strip():
            parts.append(line.strip())
    return "; ".join(parts)


def error_line(err: BaseException) -> str:
    """One line for an error of a run: hydra's "Error in call to target" becomes the config key and the
    constructor's own error."""
    found = re.search(r"full_key: (\S+)", str(err))
    if isinstance(err, InstantiationException) and err.__cause__ is not None and found:
        cause = err.__cause__
        return f"{found.group(1)}: {type(cause).__name__}: {one_line(str(cause))}"
    return one_line(str(err))


def _compose(conf_dir: str, overrides: list[str]):
    with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def _value(cfg, key: str):
    # Unresolvable interpolations (${hydra:...} outside a run) read as None: only literal values are typed.
    return OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)


def _expected(key: str, replaced):
    """The type an override of ``key`` must have, replacing ``replaced``; None: any."""
    if key.startswith("trainer."):
        return trainer_types().get(key.removeprefix("trainer."))
    if isinstance(replaced, (bool, int, float)):
        return type(replaced)
    return None


@functools.cache
def trainer_types() -> dict:
    import lightning as L

    return typing.get_type_hints(L.Trainer.__init__)


def check_overrides(conf_dir: str, overrides: list[str]) -> None:
    """Raise ``OverrideError`` unless ``overrides`` compose with ``conf_dir/train.yaml``, each value
    override has the type it must have, and the data paths hold what the task reads."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        bad = next((o for o in overrides if not _parses(o)), " ".join(overrides))
        raise OverrideError(f"cannot parse the override {bad!r}: {one_line(str(err))}") from None
    try:
        cfg = _compose(conf_dir, overrides)
    except (HydraException, OmegaConfBaseException) as err:
        raise OverrideError(one_line(str(err))) from None
    groups = [o for o in parsed if (Path(conf_dir) / o.key_or_group).is_dir()]
    values = [o for o in parsed if o not in groups and not o.is_add() and not o.is_delete()]
    if values:
        # The values the overrides replace: the same config groups, no value overrides.
        base = _compose(conf_dir, [o.input_line for o in groups])
        for override in values:
            key = override.key_or_group
            expected = _expected(key, _value(base, key))
            if expected is not None and not fits_type(_value(cfg, key), expected):
                raise OverrideError(f"{override.input_line}: {key} must be {describe_type(expected)}")
    cooldown = (cfg.get("task") or {}).get("cooldown_steps") or 0
    if cooldown < 0:
        raise OverrideError(f"task.cooldown_steps must be at least 0, not {cooldown}")
    if cooldown and cfg.trainer.get("max_steps", -1) <= 0:
        raise OverrideError("task.cooldown_steps needs trainer.max_steps: the rate is 0 at the last step")
    check_data_paths(cfg)


def _parses(override: str) -> bool:
    try:
        OverridesParser.create().parse_overrides([override])
    except HydraException:
        return False
    return True


def check_data_paths(cfg) -> None:
    """Each ``data.<x>_dump`` must hold complete token shards, each ``data.<x>_dir`` must be a data dir."""
    for key in cfg.get("data") or {}:
        value = _value(cfg, f"data.{key}")
        if isinstance(value, str):
            dumps = [value]
        elif key.endswith("_dump") and isinstance(value, Sequence):
            dumps = [str(v) for v in value]  # several dumps read as one set (maskgct.data.shards.TokenDump)
        else:
            continue
        if key.endswith("_dump"):
            for dump in map(Path, dumps):
                if not dump.is_dir():
                    raise OverrideError(
                        f"data.{key}={dump}: no such folder (a token dump of `maskgct data extract`)"
                    )
                if not any(index.with_suffix(".safetensors").is_file() for index in dump.glob("*.jsonl")):
                    raise OverrideError(
                        f"data.{key}={dump}: not a token dump (no shards; run `maskgct data extract`)"
                    )
        elif key.endswith("_dir"):
            try:
                read_datadir(Path(value))
            except DataDirError as err:
                raise OverrideError(f"data.{key}={value}: {err}") from None
