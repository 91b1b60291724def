"""What an experiment is: a dataset, an MLP, an optimizer schedule, and the runs to compare.

One config format serves the CLI (``initlab run --config FILE``), the dashboard's export and
the presets: :meth:`ExperimentConfig.to_dict` / :meth:`ExperimentConfig.from_dict`, as JSON
or TOML. A run is written compactly as ``initializer(k=v,...)@activation(k=v,...)``.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomli_w

from core.errors import ConfigError
from core.specs import resolve_params

OPTIMIZERS = ("sgd", "adam")
BIAS_INITS = ("zeros", "constant", "pytorch_default")
DTYPES = ("float32", "float64")
LIMITS: dict[str, tuple[float, float]] = {
    "depth": (1, 100),
    "width": (1, 4096),
    "lr": (1e-6, 10.0),
    "momentum": (0.0, 0.999),
    "batch_size": (1, 65536),
    "epochs": (1, 1000),
    "steps": (1, 1_000_000),
    "seed": (0, 2**31 - 1),
    "bias_value": (-10.0, 10.0),
    "snapshots": (0, 200),
    "eval_every": (1, 1_000_000),
    "divergence_threshold": (1.0, 1e30),
}
MAX_RUNS = 16
DEFAULT_MEMORY_BUDGET_MB = 4096
MEMORY_BUDGET_ENV = "INITLAB_MEMORY_BUDGET_MB"
_COMPACT = re.compile(r"^\s*([A-Za-z0-9_]+)\s*(?:\((.*)\))?\s*$")


def _parse_kv(text: str, where: str) -> dict[str, Any]:
    """Parse ``k=v,k=v`` (values stay strings; Param.coerce converts them)."""
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(where, f"expected key=value inside the parentheses, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _format_call(name: str, params: Mapping[str, Any]) -> str:
    if not params:
        return name
    return f"{name}({','.join(f'{k}={_format_value(v)}' for k, v in params.items())})"


@dataclass(frozen=True)
class RunConfig:
    """One scheme to train: an initializer (with parameter values) and an activation."""

    initializer: str
    activation: str
    init_params: Mapping[str, Any] = field(default_factory=dict)
    activation_params: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""

    @classmethod
    def parse(cls, text: str, default_activation: str, where: str = "schemes") -> RunConfig:
        """Parse ``he_normal``, ``he_normal@relu`` or ``he_normal(mode=fan_out)@leaky_relu(negative_slope=0.2)``."""
        init_text, _, act_text = text.partition("@")
        m_init = _COMPACT.match(init_text)
        m_act = _COMPACT.match(act_text or default_activation)
        if not m_init or not m_act:
            raise ConfigError(
                where,
                f"cannot read run {text!r}; write initializer[(k=v,...)][@activation[(k=v,...)]], "
                "e.g. he_normal(mode=fan_out)@relu",
            )
        return cls(
            initializer=m_init.group(1),
            activation=m_act.group(1),
            init_params=_parse_kv(m_init.group(2) or "", where),
            activation_params=_parse_kv(m_act.group(2) or "", where),
        )

    def compact(self) -> str:
        """The inverse of :meth:`parse`."""
        init = _format_call(self.initializer, self.init_params)
        return f"{init}@{_format_call(self.activation, self.activation_params)}"

    def default_label(self) -> str:
        return self.label or self.compact()


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment. Every run sees the same batches in the same order from ``seed``."""

    runs: tuple[RunConfig, ...]
    dataset: str = "digits"
    dataset_params: Mapping[str, Any] = field(default_factory=dict)
    depth: int = 5  # hidden layers
    width: int = 64
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    batch_size: int = 64
    epochs: int = 5
    steps: int | None = None  # when set, train exactly this many steps (overrides epochs)
    seed: int = 0
    bias_init: str = "zeros"
    bias_value: float = 0.0
    snapshots: int | None = None  # snapshot steps after step 0; None = the engine's default cadence
    eval_every: int | None = None  # steps between evaluations; None = once per epoch
    divergence_threshold: float = 1e4  # a loss above this (or NaN/Inf) marks a run diverged
    dtype: str = "float32"
    name: str = ""
    description: str = ""

    # -- identity -----------------------------------------------------------------------------
    def run_ids(self) -> list[str]:
        """Unique, readable run ids (``label`` or compact form; ``#2``, ``#3`` for repeats)."""
        ids: list[str] = []
        for run in self.runs:
            base = run.default_label()
            candidate, n = base, 1
            while candidate in ids:
                n += 1
                candidate = f"{base} #{n}"
            ids.append(candidate)
        return ids

    # -- validation -----------------------------------------------------------------------------
    def validated(self, registry: Any) -> ExperimentConfig:
        """Check every field against its allowed range and the registry; return the config with all
        plugin parameters resolved (defaults filled, types coerced). Raises ConfigError naming the field."""
        for name, (lo, hi) in LIMITS.items():
            value = getattr(self, name)
            if value is None:
                continue
            integer = name not in ("lr", "momentum", "bias_value", "divergence_threshold")
            ok_type = (
                isinstance(value, int) and not isinstance(value, bool)
                if integer
                else (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value))
            )
            if not ok_type or not lo <= value <= hi:
                kind = "an integer" if integer else "a number"
                raise ConfigError(name, f"got {value!r}; allowed: {kind} in [{lo:g}, {hi:g}]")
        for name, allowed in (("optimizer", OPTIMIZERS), ("bias_init", BIAS_INITS), ("dtype", DTYPES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(name, f"got {getattr(self, name)!r}; allowed: {', '.join(allowed)}")
        if not self.runs:
            raise ConfigError("runs", "an experiment needs at least one run")
        if len(self.runs) > MAX_RUNS:
            raise ConfigError("runs", f"got {len(self.runs)} runs; allowed: at most {MAX_RUNS}")
        dataset = registry.dataset(self.dataset)
        dataset_params = resolve_params(dataset.params, self.dataset_params, f"dataset {self.dataset}")
        runs = []
        for i, run in enumerate(self.runs):
            where = f"runs[{i}]"
            init = registry.initializer(run.initializer, field=f"{where}.initializer")
            act = registry.activation(run.activation, field=f"{where}.activation")
            runs.append(
                replace(
                    run,
                    label=run.default_label(),  # keep ids as the user wrote them, before defaults are filled
                    init_params=resolve_params(init.params, run.init_params, f"{where}.{init.name}"),
                    activation_params=resolve_params(act.params, run.activation_params, f"{where}.{act.name}"),
                )
            )
        return replace(self, runs=tuple(runs), dataset_params=dataset_params)

    def total_steps(self, num_train: int) -> int:
        """Optimizer steps this config trains for on ``num_train`` samples (last partial batch dropped)."""
        if self.steps is not None:
            return self.steps
        return self.epochs * max(1, num_train // self.batch_size)

    def estimate_memory_bytes(self, num_features: int, num_classes: int) -> int:
        """Rough peak memory of training all runs stacked: parameters, gradients, optimizer state,
        forward activations kept for backward, plus a 2x allowance for temporaries."""
        itemsize = 8 if self.dtype == "float64" else 4
        dims = [num_features] + [self.width] * self.depth + [num_classes]
        params = sum(a * b + b for a, b in itertools.pairwise(dims))
        states = 2 if self.optimizer == "adam" else (1 if self.momentum else 0)
        activations = self.batch_size * (num_features + 3 * self.width * self.depth + 2 * num_classes)
        per_run = params * (2 + states) + 2 * activations
        return int(len(self.runs) * per_run * itemsize * 2)

    def check_memory(self, num_features: int, num_classes: int, budget_mb: float | None = None) -> None:
        """Raise ConfigError when the estimate exceeds the budget (``INITLAB_MEMORY_BUDGET_MB``, default 4096)."""
        if budget_mb is None:
            budget_mb = float(os.environ.get(MEMORY_BUDGET_ENV, DEFAULT_MEMORY_BUDGET_MB))
        estimate = self.estimate_memory_bytes(num_features, num_classes)
        if estimate > budget_mb * 2**20:
            raise ConfigError(
                "memory",
                f"this experiment needs about {estimate / 2**20:,.0f} MiB ({len(self.runs)} runs x depth "
                f"{self.depth} x width {self.width}, batch {self.batch_size}), over the budget of "
                f"{budget_mb:,.0f} MiB; use fewer runs, a smaller width/depth/batch, or raise {MEMORY_BUDGET_ENV}",
            )

    # -- serialization --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON/TOML-ready); ``None`` fields are left out."""
        out = {k: v for k, v in asdict(self).items() if v is not None and k != "runs"}
        out["dataset_params"] = dict(self.dataset_params)
        out["runs"] = [
            {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in asdict(r).items() if v not in ("", None)}
            for r in self.runs
        ]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        """Build from plain data, rejecting unknown keys with the list of allowed ones."""
        if not isinstance(data, Mapping):
            raise ConfigError("config", f"expected a table/object, got {type(data).__name__}")
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(unknown[0], f"unknown setting; allowed: {', '.join(sorted(allowed))}")
        raw_runs = data.get("runs")
        if not isinstance(raw_runs, list) or not raw_runs:
            raise ConfigError("runs", "a non-empty list of runs is required, each with an initializer and activation")
        run_fields = {f.name for f in fields(RunConfig)}
        runs = []
        for i, raw in enumerate(raw_runs):
            if isinstance(raw, str):
                runs.append(RunConfig.parse(raw, default_activation="relu", where=f"runs[{i}]"))
                continue
            if not isinstance(raw, Mapping):
                raise ConfigError(f"runs[{i}]", "each run is a table with initializer and activation")
            bad = sorted(set(raw) - run_fields)
            if bad:
                raise ConfigError(
                    f"runs[{i}].{bad[0]}", f"unknown run setting; allowed: {', '.join(sorted(run_fields))}"
                )
            missing = [k for k in ("initializer", "activation") if k not in raw]
            if missing:
                raise ConfigError(f"runs[{i}].{missing[0]}", "required")
            runs.append(RunConfig(**{k: (dict(v) if isinstance(v, Mapping) else v) for k, v in raw.items()}))
        rest = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items() if k != "runs"}
        return cls(runs=tuple(runs), **rest)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ExperimentConfig:
        """Read a ``.toml`` or ``.json`` config file; ConfigError says what is wrong with it."""
        p = Path(path)
        if not p.is_file():
            raise ConfigError("config", f"file {str(p)!r} does not exist")
        text = p.read_text(encoding="utf-8")
        try:
            if p.suffix.lower() == ".toml":
                data = tomllib.loads(text)
            elif p.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                raise ConfigError("config", f"{p.name}: use a .toml or .json file")
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError("config", f"{p.name} is not valid {p.suffix[1:].upper()}: {exc}") from None
        try:
            return cls.from_dict(data)
        except TypeError as exc:
            raise ConfigError("config", f"{p.name}: {exc}") from None
