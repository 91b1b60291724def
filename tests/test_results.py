"""Results: tidy tables, lossless JSON (NaN/Inf included), CSV export."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from engine_helpers import blobs, test_registry

from core.experiment import ExperimentConfig, RunConfig
from core.results import TABLE_COLUMNS, ExperimentResult, RunSummary, decode_float, encode_float, make_table
from core.training import train


@pytest.fixture(scope="module")
def result() -> ExperimentResult:
    """One ok run, one NaN-diverged run, one failed run: every kind of value a result can hold."""
    config = ExperimentConfig(
        runs=tuple(RunConfig.parse(r, "relu") for r in ("he_normal@relu", "he_normal@nan_act", "broken_init@tanh")),
        depth=2,
        width=8,
        epochs=2,
        batch_size=64,
        snapshots=2,
    )
    return train(config, registry=test_registry(), bundle=blobs())


def test_tables_have_the_documented_columns_and_types(result):
    for name, columns in TABLE_COLUMNS.items():
        df = result.table(name)
        assert list(df.columns) == list(columns)
        for column, dtype in columns.items():
            if dtype in ("int64", "float64"):
                assert str(df[column].dtype) == dtype, (name, column)
    assert not result.steps.empty and not result.histograms.empty
    runs = result.table("runs")
    assert runs["status"].tolist() == ["ok", "diverged", "failed"]


def test_json_round_trip_is_lossless(result):
    text = result.to_json()
    assert "NaN" in text  # the diverged run's loss
    json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in the JSON"))
    back = ExperimentResult.from_json(text)
    assert back.to_json() == text
    assert back.config == result.config
    for name in TABLE_COLUMNS:
        pd.testing.assert_frame_equal(back.table(name), result.table(name), check_exact=True)
    for a, b in zip(back.runs, result.runs, strict=True):
        assert a.id == b.id and a.status == b.status and a.error == b.error
        assert a.diverged_at_step == b.diverged_at_step and a.diagnosis.keys() == b.diagnosis.keys()
    nan_run = back.runs[1]
    assert math.isnan(nan_run.final_train_loss) and nan_run.final_val_loss is None


def test_json_top_level_layout(result):
    data = result.to_json_dict()
    assert set(data) >= {"config", "runs", "metrics"}
    assert set(data["metrics"]) == {"steps", "evals", "layers", "histograms"}
    run = data["runs"][0]
    for key in ("id", "initializer", "activation", "final_train_loss", "final_val_accuracy", "diverged_at_step"):
        assert key in run
    assert run["diverged_at_step"] is None and data["runs"][1]["diverged_at_step"] == 0
    assert set(run["diagnosis"]) == {"verdict", "label", "message", "findings"}
    row = data["metrics"]["histograms"][0]
    assert isinstance(row["bin_edges"], list) and isinstance(row["counts"], list)
    assert "timing" not in data and "timing" in result.to_json_dict(include_timing=True)


def test_save_and_load(tmp_path, result):
    path = result.save_json(tmp_path / "result.json")
    assert ExperimentResult.load_json(path).to_json() == result.to_json()


def test_csv_export(tmp_path, result):
    paths = result.to_csv(tmp_path / "csv")
    assert sorted(p.name for p in paths) == sorted(f"{n}.csv" for n in ("runs", *TABLE_COLUMNS))
    steps = pd.read_csv(tmp_path / "csv" / "steps.csv")
    assert steps["train_loss"].isna().sum() == result.steps["train_loss"].isna().sum()
    pd.testing.assert_series_equal(steps["train_loss"], result.steps["train_loss"], check_exact=True)
    hist = pd.read_csv(tmp_path / "csv" / "histograms.csv")
    assert json.loads(hist["counts"].iloc[0]) == result.histograms["counts"].iloc[0]
    assert result.table_csv("evals").splitlines()[0] == ",".join(TABLE_COLUMNS["evals"])


@pytest.mark.parametrize("value", [0.1, -0.0, 1e-310, 1.7976931348623157e308, math.nan, math.inf, -math.inf, None])
def test_float_encoding_round_trips(value):
    encoded = encode_float(value)
    assert json.loads(json.dumps(encoded, allow_nan=False)) == encoded
    decoded = decode_float(encoded)
    if value is None:
        assert decoded is None
    elif math.isnan(value):
        assert math.isnan(decoded)
    else:
        assert decoded == value and math.copysign(1, decoded) == math.copysign(1, value)


def test_bad_inputs_are_rejected_clearly():
    with pytest.raises(ValueError, match="missing top-level"):
        ExperimentResult.from_json_dict({"runs": []})
    with pytest.raises(ValueError, match="NaN"):
        decode_float("nan")
    with pytest.raises(KeyError, match="tables"):
        ExperimentResult(ExperimentConfig(runs=(RunConfig("zeros", "relu"),)), []).table("nope")
    with pytest.raises(ValueError, match="missing columns"):
        make_table("steps", {"run": ["a"]})


def test_summary_from_json_ignores_unknown_keys():
    summary = RunSummary.from_json_dict(
        {"id": "a", "initializer": "x", "activation": "relu", "init_params": {}, "activation_params": {},
         "status": "ok", "future_field": 1}
    )  # fmt: skip
    assert summary.id == "a" and summary.final_val_accuracy is None
