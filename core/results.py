"""What a training returns: tidy tables, per-run summaries, and a lossless JSON/CSV form.

Tables (long format, one row per observation; the ``run`` column holds run ids):

- ``steps``: run, step, train_loss — the mini-batch loss at step ``step`` (measured with the
  parameters after ``step`` updates, on the batch of update ``step + 1``).
- ``evals``: run, step, epoch, train_loss, val_loss, train_accuracy, val_accuracy — after ``step``
  updates; ``epoch = step / steps_per_epoch`` (a float). Train metrics use a fixed subset of the
  training set (see ``core.training.TRAIN_EVAL_SAMPLES``), validation metrics the whole split.
- ``layers``: run, step, layer, weight_std, grad_norm, act_mean, act_std, saturated_fraction,
  dead_fraction, predicted_var, pre_mean, pre_std, pre_var, pre_grad_norm, unit_spread (see
  ``core.instrumentation`` for each definition).
- ``histograms``: run, step, layer, kind, bin_edges, counts, clipped_low, clipped_high, nan_count
  (see ``core.histograms``); kind is ``weight``, ``grad`` (of the weights), ``pre`` or ``post``
  (activations on the probe batch; at the output layer both are the logits). All runs share the
  bin edges of a (step, layer, kind).

JSON has no NaN or infinity, so non-finite floats are written as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` (:data:`NONFINITE_STRINGS`) and turned back into floats by
:meth:`ExperimentResult.from_json_dict`; ``null`` always means "no value" (``None``). Finite floats
use Python's shortest round-trip ``repr``, so every number comes back bit for bit. Timing
(``elapsed_s``, ``timings``) depends on the machine and is left out of the JSON unless
``include_timing=True``, so the same config and seed give the same JSON text.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from core.experiment import ExperimentConfig

NONFINITE_STRINGS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
STATUSES = ("ok", "diverged", "failed", "cancelled")

#: Column name -> dtype, in order, for every metrics table.
TABLE_COLUMNS: dict[str, dict[str, str]] = {
    "steps": {"run": "str", "step": "int64", "train_loss": "float64"},
    "evals": {
        "run": "str",
        "step": "int64",
        "epoch": "float64",
        "train_loss": "float64",
        "val_loss": "float64",
        "train_accuracy": "float64",
        "val_accuracy": "float64",
    },
    "layers": {
        "run": "str",
        "step": "int64",
        "layer": "int64",
        "weight_std": "float64",
        "grad_norm": "float64",
        "act_mean": "float64",
        "act_std": "float64",
        "saturated_fraction": "float64",
        "dead_fraction": "float64",
        "predicted_var": "float64",
        "pre_mean": "float64",
        "pre_std": "float64",
        "pre_var": "float64",
        "pre_grad_norm": "float64",
        "unit_spread": "float64",
    },
    "histograms": {
        "run": "str",
        "step": "int64",
        "layer": "int64",
        "kind": "str",
        "bin_edges": "object",
        "counts": "object",
        "clipped_low": "int64",
        "clipped_high": "int64",
        "nan_count": "int64",
    },
}
METRIC_TABLES = tuple(TABLE_COLUMNS)
HISTOGRAM_KINDS = ("weight", "grad", "pre", "post")


def make_table(name: str, columns: Mapping[str, Sequence[Any]] | None = None) -> pd.DataFrame:
    """Build table ``name`` from column data with the canonical column order and dtypes."""
    spec = TABLE_COLUMNS[name]
    columns = columns or {}
    missing = [c for c in spec if c not in columns] if columns else []
    if missing:
        raise ValueError(f"table {name!r} is missing columns {missing}")
    data = {c: pd.Series(list(columns.get(c, [])), dtype=dtype) for c, dtype in spec.items()}
    return pd.DataFrame(data)


def rows_to_table(name: str, rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    rows = list(rows)
    if not rows:
        return make_table(name)
    return make_table(name, {c: [r[c] for r in rows] for c in TABLE_COLUMNS[name]})


def table_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as a list of row dicts of plain Python values (NaN stays a float)."""
    names = list(df.columns)
    cols = [df[c].tolist() for c in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*cols, strict=True)]


# -- non-finite float encoding --------------------------------------------------------------------


def encode_float(value: float | None) -> float | str | None:
    """A float as JSON can hold it: finite floats unchanged, NaN/±inf as strings, None as None."""
    if value is None or math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def decode_float(value: Any) -> float | None:
    """The inverse of :func:`encode_float` (ints become floats)."""
    if value is None:
        return None
    if isinstance(value, str):
        if value not in NONFINITE_STRINGS:
            raise ValueError(f"expected a number or one of {sorted(NONFINITE_STRINGS)}, got {value!r}")
        return NONFINITE_STRINGS[value]
    return float(value)


def _encode_any(value: Any) -> Any:
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, Mapping):
        return {k: _encode_any(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode_any(v) for v in value]
    return value


_FLOAT_KEYS = frozenset({"value", "threshold"})


def _decode_diagnosis(value: Any, key: str = "") -> Any:
    if isinstance(value, Mapping):
        return {k: _decode_diagnosis(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_diagnosis(v, key) for v in value]
    if key in _FLOAT_KEYS and value is not None and not isinstance(value, bool):
        return decode_float(value)
    return value


# -- run summaries -----------------------------------------------------------------------------------

_SUMMARY_FLOATS = ("final_train_loss", "final_val_loss", "final_train_accuracy", "final_val_accuracy")


@dataclass
class RunSummary:
    """One run's outcome. ``final_*`` come from the run's last evaluation (for a diverged run:
    ``final_train_loss`` is the loss that triggered the divergence and the others are None)."""

    id: str
    initializer: str
    activation: str
    init_params: dict
    activation_params: dict
    status: str  # "ok" | "diverged" | "failed" | "cancelled"
    final_train_loss: float | None = None
    final_val_loss: float | None = None
    final_train_accuracy: float | None = None
    final_val_accuracy: float | None = None
    diverged_at_step: int | None = None
    error: str | None = None
    diagnosis: dict = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in _SUMMARY_FLOATS:
            out[key] = encode_float(out[key])
        out["diagnosis"] = _encode_any(out["diagnosis"])
        out["init_params"] = _encode_any(out["init_params"])
        out["activation_params"] = _encode_any(out["activation_params"])
        return out

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in _SUMMARY_FLOATS:
            values[key] = decode_float(values.get(key))
        values["diagnosis"] = _decode_diagnosis(values.get("diagnosis") or {})
        return cls(**values)


# -- the result ----------------------------------------------------------------------------------------


class ExperimentResult:
    """The validated config, one :class:`RunSummary` per run (in config order) and the metric tables."""

    def __init__(
        self,
        config: ExperimentConfig,
        runs: list[RunSummary],
        steps: pd.DataFrame | None = None,
        evals: pd.DataFrame | None = None,
        layers: pd.DataFrame | None = None,
        histograms: pd.DataFrame | None = None,
        cancelled: bool = False,
        elapsed_s: float = 0.0,
        timings: Mapping[str, float] | None = None,
    ) -> None:
        self.config = config
        self.runs = runs
        self.steps = make_table("steps") if steps is None else steps
        self.evals = make_table("evals") if evals is None else evals
        self.layers = make_table("layers") if layers is None else layers
        self.histograms = make_table("histograms") if histograms is None else histograms
        self.cancelled = cancelled
        self.elapsed_s = elapsed_s
        #: Wall-clock seconds by phase ("init", "train", "eval", "snapshot", "total"); not in the JSON
        #: unless asked for. ``timings["snapshot"] / timings["train"]`` is the instrumentation overhead.
        self.timings: dict[str, float] = dict(timings or {})

    def __repr__(self) -> str:
        status = ", ".join(f"{r.id}: {r.status}" for r in self.runs)
        return f"ExperimentResult({len(self.runs)} runs [{status}], cancelled={self.cancelled})"

    # -- tables ----------------------------------------------------------------------------------
    def run(self, run_id: str) -> RunSummary:
        for r in self.runs:
            if r.id == run_id:
                return r
        raise KeyError(f"no run {run_id!r}; runs: {', '.join(r.id for r in self.runs)}")

    def runs_table(self) -> pd.DataFrame:
        """One row per run: id, initializer, activation, status, final metrics, verdict and message."""
        rows = []
        for r in self.runs:
            rows.append(
                {
                    "run": r.id,
                    "initializer": r.initializer,
                    "activation": r.activation,
                    "status": r.status,
                    "final_train_loss": r.final_train_loss,
                    "final_val_loss": r.final_val_loss,
                    "final_train_accuracy": r.final_train_accuracy,
                    "final_val_accuracy": r.final_val_accuracy,
                    "diverged_at_step": r.diverged_at_step,
                    "verdict": r.diagnosis.get("verdict"),
                    "diagnosis": r.diagnosis.get("message"),
                    "error": r.error,
                }
            )
        df = pd.DataFrame(rows)
        if not df.empty:
            df["diverged_at_step"] = df["diverged_at_step"].astype("Int64")
        return df

    def table(self, name: str) -> pd.DataFrame:
        """``steps``, ``evals``, ``layers``, ``histograms`` or ``runs``."""
        if name == "runs":
            return self.runs_table()
        if name not in METRIC_TABLES:
            raise KeyError(f"unknown table {name!r}; tables: {', '.join((*METRIC_TABLES, 'runs'))}")
        return getattr(self, name)

    # -- JSON ------------------------------------------------------------------------------------
    def to_json_dict(self, include_timing: bool = False) -> dict[str, Any]:
        metrics = {}
        for name in METRIC_TABLES:
            df = self.table(name)
            float_cols = [c for c, t in TABLE_COLUMNS[name].items() if t == "float64"]
            rows = table_rows(df)
            for row in rows:
                for c in float_cols:
                    row[c] = encode_float(row[c])
                if name == "histograms":
                    row["bin_edges"] = [encode_float(float(e)) for e in row["bin_edges"]]
                    row["counts"] = [int(c) for c in row["counts"]]
            metrics[name] = rows
        out: dict[str, Any] = {
            "config": self.config.to_dict(),
            "runs": [r.to_json_dict() for r in self.runs],
            "metrics": metrics,
            "cancelled": self.cancelled,
        }
        if include_timing:
            out["timing"] = {"elapsed_s": self.elapsed_s, **self.timings}
        return out

    def to_json(self, include_timing: bool = False, indent: int | None = None) -> str:
        return json.dumps(self.to_json_dict(include_timing), allow_nan=False, indent=indent)

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> ExperimentResult:
        missing = [k for k in ("config", "runs", "metrics") if k not in data]
        if missing:
            raise ValueError(f"not an initlab result: missing top-level key(s) {missing}")
        config = ExperimentConfig.from_dict(data["config"])
        runs = [RunSummary.from_json_dict(r) for r in data["runs"]]
        tables = {}
        for name in METRIC_TABLES:
            rows = list(data["metrics"].get(name, []))
            float_cols = [c for c, t in TABLE_COLUMNS[name].items() if t == "float64"]
            for row in rows:
                for c in float_cols:
                    row[c] = decode_float(row[c])
                if name == "histograms":
                    row["bin_edges"] = [decode_float(e) for e in row["bin_edges"]]
            tables[name] = rows_to_table(name, rows)
        timing = dict(data.get("timing") or {})
        elapsed = float(timing.pop("elapsed_s", 0.0))
        return cls(
            config,
            runs,
            cancelled=bool(data.get("cancelled", False)),
            elapsed_s=elapsed,
            timings=timing,
            **tables,
        )

    @classmethod
    def from_json(cls, text: str) -> ExperimentResult:
        return cls.from_json_dict(json.loads(text))

    def save_json(self, path: str | os.PathLike[str], include_timing: bool = False) -> Path:
        p = Path(path)
        p.write_text(self.to_json(include_timing), encoding="utf-8")
        return p

    @classmethod
    def load_json(cls, path: str | os.PathLike[str]) -> ExperimentResult:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    # -- CSV -------------------------------------------------------------------------------------
    def table_csv(self, name: str) -> str:
        """One table as CSV text. NaN is written ``NaN``, infinities ``inf``/``-inf`` (pandas reads
        both back); the histogram list columns are JSON arrays."""
        df = self.table(name)
        if name == "histograms":
            df = df.copy()
            df["bin_edges"] = [json.dumps(list(map(encode_float, e))) for e in df["bin_edges"]]
            df["counts"] = [json.dumps([int(c) for c in c_]) for c_ in df["counts"]]
        return df.to_csv(index=False, na_rep="NaN", lineterminator="\n")

    def to_csv(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write ``runs.csv`` and one CSV per metrics table into ``folder`` (created if needed)."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in ("runs", *METRIC_TABLES):
            path = out / f"{name}.csv"
            path.write_text(self.table_csv(name), encoding="utf-8")
            paths.append(path)
        return paths
