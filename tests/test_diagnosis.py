"""Diagnosis: thresholds on hand-made snapshot tables, then the seed's claims on real trainings."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from core import diagnosis as dx
from core.experiment import ExperimentConfig, RunConfig
from core.results import RunSummary
from core.training import train

DEPTH, WIDTH = 3, 8


def _summary(status: str = "ok", **kw) -> RunSummary:
    return RunSummary(
        id="r", initializer="x", activation="relu", init_params={}, activation_params={}, status=status, **kw
    )


def _layers(overrides: dict | None = None) -> pd.DataFrame:
    """A healthy two-snapshot table; ``overrides[(step, layer, column)] = value`` changes cells."""
    rows = []
    for step in (0, 10):
        for layer in range(DEPTH + 1):
            rows.append(
                {
                    "run": "r",
                    "step": step,
                    "layer": layer,
                    "weight_std": 0.2,
                    "grad_norm": 0.5,
                    "act_mean": 0.3,
                    "act_std": 0.6,
                    "saturated_fraction": math.nan,
                    "dead_fraction": 0.05 if layer < DEPTH else math.nan,
                    "predicted_var": math.nan,
                    "pre_mean": 0.0,
                    "pre_std": 1.0,
                    "pre_var": 1.0,
                    "pre_grad_norm": 0.1,
                    "unit_spread": 0.9,
                }
            )
    df = pd.DataFrame(rows)
    for (step, layer, column), value in (overrides or {}).items():
        df.loc[(df["step"] == step) & (df["layer"] == layer), column] = value
    return df


def _verdict(layers: pd.DataFrame, summary: RunSummary | None = None) -> dict:
    return dx.diagnose(summary or _summary(), layers, depth=DEPTH, width=WIDTH)


def test_healthy():
    d = _verdict(_layers())
    assert d["verdict"] == "healthy" and d["label"] == "Healthy" and d["findings"] == []
    assert "1 times" in d["message"]


def test_symmetry_uses_the_final_snapshot_and_hidden_layers_only():
    assert _verdict(_layers({(10, 1, "unit_spread"): 0.0}))["verdict"] == "symmetry_not_broken"
    assert _verdict(_layers({(0, 1, "unit_spread"): 0.0}))["verdict"] == "healthy"  # broken later
    assert _verdict(_layers({(10, DEPTH, "unit_spread"): 0.0}))["verdict"] == "healthy"  # output layer
    tiny = dx.SYMMETRY_TOLERANCE * 0.5
    assert _verdict(_layers({(10, 2, "unit_spread"): tiny}))["verdict"] == "symmetry_not_broken"
    wide = dx.SYMMETRY_TOLERANCE * 2
    assert _verdict(_layers({(10, 2, "unit_spread"): wide}))["verdict"] == "healthy"
    width_one = dx.diagnose(_summary(), _layers({(10, 1, "unit_spread"): 0.0}), depth=DEPTH, width=1)
    assert width_one["verdict"] == "healthy"


@pytest.mark.parametrize(
    ("first", "verdict"),
    [(0.1 * dx.VANISHING_RATIO * 0.9, "vanishing_gradients"), (0.1 * dx.VANISHING_RATIO * 1.1, "healthy")],
)
def test_vanishing_threshold(first, verdict):
    d = _verdict(_layers({(0, 0, "pre_grad_norm"): first}))
    assert d["verdict"] == verdict
    if verdict != "healthy":
        finding = d["findings"][0]
        assert finding["threshold"] == dx.VANISHING_RATIO
        assert finding["value"] == pytest.approx(first / 0.1)


def test_exploding_by_ratio_or_by_norm():
    assert _verdict(_layers({(0, 0, "pre_grad_norm"): 0.1 * dx.EXPLODING_RATIO * 2}))["verdict"] == (
        "exploding_gradients"
    )
    assert _verdict(_layers({(10, 2, "grad_norm"): dx.EXPLODING_GRAD_NORM * 2}))["verdict"] == "exploding_gradients"
    assert _verdict(_layers({(10, 2, "grad_norm"): math.inf}))["verdict"] == "exploding_gradients"


def test_saturation_and_dead_units_thresholds():
    sat = dx.SATURATION_THRESHOLD
    assert _verdict(_layers({(10, 1, "saturated_fraction"): sat + 0.01}))["verdict"] == "saturated"
    assert _verdict(_layers({(10, 1, "saturated_fraction"): sat - 0.01}))["verdict"] == "healthy"
    assert _verdict(_layers({(10, DEPTH, "saturated_fraction"): 1.0}))["verdict"] == "healthy"  # output layer
    dead = dx.DEAD_THRESHOLD
    assert _verdict(_layers({(10, 2, "dead_fraction"): dead + 0.01}))["verdict"] == "dead_units"
    assert _verdict(_layers({(10, 2, "dead_fraction"): dead - 0.01}))["verdict"] == "healthy"


def test_priority_order():
    vanishing = {(0, 0, "pre_grad_norm"): 1e-9}
    late_sat = {(10, 1, "saturated_fraction"): 0.9}
    early_dead = {(0, 1, "dead_fraction"): 1.0}
    # vanishing outranks saturation that only appears late...
    d = _verdict(_layers({**vanishing, **late_sat}))
    assert d["verdict"] == "vanishing_gradients"
    assert [f["code"] for f in d["findings"]] == ["vanishing_gradients", "saturated"]
    # ...but dead units present at step 0 explain the vanishing gradient and come first.
    assert _verdict(_layers({**vanishing, **early_dead}))["verdict"] == "dead_units"
    # symmetry beats everything measured; divergence and failure beat symmetry.
    sym = {(10, 1, "unit_spread"): 0.0}
    assert _verdict(_layers({**vanishing, **sym}))["verdict"] == "symmetry_not_broken"
    diverged = _summary("diverged", diverged_at_step=3, final_train_loss=math.nan)
    d = _verdict(_layers(sym), diverged)
    assert d["verdict"] == "diverged" and "step 3" in d["message"]
    failed = _summary("failed", error="initializer 'x' (plugin p): raised boom")
    d = dx.diagnose(failed, _layers().iloc[0:0], depth=DEPTH, width=WIDTH)
    assert d["verdict"] == "failed" and "boom" in d["message"]


def test_every_finding_has_the_documented_keys():
    d = _verdict(_layers({(0, 0, "pre_grad_norm"): 1e-9, (10, 1, "saturated_fraction"): 0.9}))
    for f in d["findings"]:
        assert set(f) == {"code", "label", "message", "value", "threshold"}
        assert f["label"] == dx.LABELS[f["code"]]


# -- the seed's claims, on real trainings ------------------------------------------------------


def test_deep_relu_zero_xavier_he():
    """30 ReLU layers on digits with SGD: zero init never breaks symmetry; Xavier's variance halves at
    every layer so the back-propagated gradient reaching layer 0 is ~2^-15 of the output's (vanishing);
    He keeps it at order 1 (healthy)."""
    runs = tuple(RunConfig.parse(s, "relu") for s in ("zeros", "xavier_uniform", "xavier_normal", "he_normal"))
    config = ExperimentConfig(runs=runs, depth=30, width=32, steps=40, optimizer="sgd", lr=0.01, snapshots=2)
    result = train(config)
    verdicts = [r.diagnosis["verdict"] for r in result.runs]
    assert verdicts == ["symmetry_not_broken", "vanishing_gradients", "vanishing_gradients", "healthy"]
    assert "orders of magnitude" in result.runs[1].diagnosis["message"]
