"""The experiment config in the URL query string, so a link reproduces the setup.

Keys are the config's own field names (``dataset``, ``depth``, ``lr``...), dataset parameters are
``dataset.<param>``, and each run is one repeated ``run`` key in the compact syntax of
:meth:`core.experiment.RunConfig.compact` (``he_normal(mode=fan_out)@relu``). ``job`` holds the
id of the session's training job so a reload reattaches to it.

``steps``, ``snapshots`` and ``eval_every`` may be unset (None): ``steps`` and ``eval_every`` are then
left out, while ``snapshots`` is always written, as ``snapshots=auto`` for the engine's budget-based
default (the dashboard's own default is an explicit number). Reading, ``auto``, ``none`` or an empty
value unsets any of the three, and ``eval_every=0`` means once per epoch, as in the form.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from core.errors import ConfigError
from core.experiment import ExperimentConfig, RunConfig

JOB_KEY = "job"
RUN_KEY = "run"
DATASET_PARAM_PREFIX = "dataset."
INT_FIELDS = ("depth", "width", "batch_size", "epochs", "steps", "seed", "snapshots", "eval_every")
FLOAT_FIELDS = ("lr", "momentum", "bias_value", "divergence_threshold")
STR_FIELDS = ("dataset", "optimizer", "bias_init", "dtype", "name")
OPTIONAL_INT_FIELDS = ("steps", "snapshots", "eval_every")  # None is a value of its own (see the module doc)
UNSET_TEXTS = ("", "auto", "none")
AUTO = "auto"
ALWAYS = (
    "dataset",
    "depth",
    "width",
    "optimizer",
    "lr",
    "momentum",
    "batch_size",
    "epochs",
    "seed",
    "bias_init",
    "snapshots",
)
CONFIG_KEYS = (*INT_FIELDS, *FLOAT_FIELDS, *STR_FIELDS, RUN_KEY)
_DEFAULTS = {f.name: f.default for f in fields(ExperimentConfig) if f.name != "runs"}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if value != int(value) or abs(value) >= 1e16 else f"{value:g}"
    return str(value)


def encode(config: ExperimentConfig) -> dict[str, str | list[str]]:
    """Query parameters for ``config``: the main fields always, the rest only when not default."""
    out: dict[str, str | list[str]] = {}
    for name in (*STR_FIELDS, *INT_FIELDS, *FLOAT_FIELDS):
        value = getattr(config, name)
        if value is None:
            if name in ALWAYS:  # snapshots: unset is the engine's default, not the dashboard's
                out[name] = AUTO
            continue
        if name not in ALWAYS and value == _DEFAULTS[name]:
            continue
        out[name] = _text(value)
    for key, value in config.dataset_params.items():
        out[DATASET_PARAM_PREFIX + key] = _text(value)
    out[RUN_KEY] = [run.compact() for run in config.runs]
    return out


def _values(params: Mapping[str, Any], key: str) -> list[str]:
    value = params.get(key)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _last(params: Mapping[str, Any], key: str) -> str | None:
    values = _values(params, key)
    return values[-1] if values else None


def has_config(params: Mapping[str, Any]) -> bool:
    return any(key in params for key in CONFIG_KEYS) or any(k.startswith(DATASET_PARAM_PREFIX) for k in params)


def decode(params: Mapping[str, Any], base: ExperimentConfig) -> tuple[ExperimentConfig, list[str]]:
    """Read a config from query parameters on top of ``base``.

    Returns the config and a list of problems (one sentence each) for values that were ignored;
    a bad value never stops the page, the base value is used instead. Plugin parameters stay as
    text here: ``ExperimentConfig.validated`` coerces and range-checks them.
    """
    problems: list[str] = []
    changes: dict[str, Any] = {}
    for name in INT_FIELDS:
        text = _last(params, name)
        if text is None:
            continue
        if name in OPTIONAL_INT_FIELDS and text.strip().lower() in UNSET_TEXTS:
            changes[name] = None
            continue
        try:
            number = float(text)
            if not math.isfinite(number) or number != int(number):
                raise ValueError
            changes[name] = None if name == "eval_every" and number == 0 else int(number)
        except ValueError:
            allowed = "an integer or 'auto'" if name in OPTIONAL_INT_FIELDS else "an integer"
            problems.append(f"{name}={text!r} is not {allowed}; kept {getattr(base, name)!r}")
    for name in FLOAT_FIELDS:
        text = _last(params, name)
        if text is None:
            continue
        try:
            number = float(text)
            if not math.isfinite(number):
                raise ValueError
            changes[name] = number
        except ValueError:
            problems.append(f"{name}={text!r} is not a finite number; kept {getattr(base, name)!r}")
    for name in STR_FIELDS:
        text = _last(params, name)
        if text is not None:
            changes[name] = text
    dataset_params = {
        key[len(DATASET_PARAM_PREFIX) :]: _last(params, key) for key in params if key.startswith(DATASET_PARAM_PREFIX)
    }
    if dataset_params or "dataset" in changes:
        changes["dataset_params"] = dataset_params
    runs = []
    for text in _values(params, RUN_KEY):
        try:
            runs.append(RunConfig.parse(text, default_activation="relu", where="run"))
        except ConfigError as exc:
            problems.append(f"run={text!r}: {exc}")
    if runs:
        changes["runs"] = tuple(runs)
    return replace(base, **changes), problems
