"""A run that diverges or fails must not touch the other runs' numbers, and must stop where it broke."""

from __future__ import annotations

import math

import pandas as pd
import torch
from engine_helpers import blobs, probe_indices, test_registry

from core.experiment import ExperimentConfig, RunConfig
from core.results import ExperimentResult
from core.stacked_mlp import initialize_run, layer_dims
from core.training import ProgressUpdate, _Trainer, load_bundle, train

GOOD = ("he_normal@relu", "xavier_uniform@tanh")


def _config(*runs: str, **kw) -> ExperimentConfig:
    base = dict(depth=3, width=32, epochs=2, batch_size=32, optimizer="adam", lr=1e-3, snapshots=3)
    base.update(kw)
    return ExperimentConfig(runs=tuple(RunConfig.parse(r, "relu") for r in runs), **base)


def _rows_of(result: ExperimentResult, table: str, run_ids) -> pd.DataFrame:
    df = result.table(table)
    return df[df["run"].isin(run_ids)].reset_index(drop=True)


def _assert_unchanged(with_bad: ExperimentResult, without: ExperimentResult) -> None:
    """Bitwise: every table row of the good runs is identical in both trainings."""
    ids = [r.id for r in without.runs]
    for table in ("steps", "evals", "layers"):
        a, b = _rows_of(with_bad, table, ids), _rows_of(without, table, ids)
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    a, b = _rows_of(with_bad, "histograms", ids), _rows_of(without, "histograms", ids)
    assert a["counts"].tolist() == b["counts"].tolist()
    for r in without.runs:
        assert with_bad.run(r.id).final_val_loss == r.final_val_loss


def test_divergence_freezes_the_run_and_leaves_the_others_bitwise_unchanged():
    registry = test_registry()
    bundle = blobs()
    messages: list[str] = []
    config = _config(*GOOD, "huge_normal@relu")
    with_bad = train(config, registry=registry, bundle=bundle, progress=lambda u: messages.append(u.message))
    without = train(_config(*GOOD), registry=registry, bundle=bundle)
    _assert_unchanged(with_bad, without)

    bad = with_bad.runs[2]
    assert bad.status == "diverged"
    assert bad.diverged_at_step == 0  # weights of std 50 give logits in the thousands at once
    assert bad.final_train_loss > config.divergence_threshold
    assert bad.diagnosis["verdict"] == "diverged"
    steps = with_bad.steps[with_bad.steps["run"] == bad.id]
    assert steps["step"].tolist() == [0]  # nothing recorded after the divergence
    assert any("diverged at step 0" in m and bad.id in m for m in messages)
    assert with_bad.layers[with_bad.layers["run"] == bad.id].empty  # diverged before the step-0 snapshot


def test_a_diverged_run_keeps_its_parameters():
    """Frozen at step 0 means: the parameters after training are the initial ones, exactly."""
    registry = test_registry()
    bundle = blobs()
    config = _config(*GOOD, "huge_normal@relu", optimizer="sgd", lr=0.1, momentum=0.9).validated(registry)
    trainer = _Trainer(config, registry, bundle, None, None)
    trainer.run()
    model = trainer.model
    k = trainer.internal_of[2]
    dims = layer_dims(config, bundle.num_features, bundle.num_classes)
    probe = bundle.x_train[probe_indices(bundle.x_train.shape[0], config.seed)]
    init = registry.initializer("huge_normal")
    start = initialize_run(registry, config, 2, init, registry.activation("relu"), {}, dims, probe, torch.float32)
    for layer, w0 in enumerate(start.weights):
        assert torch.equal(model.weights[layer][k].detach(), w0)
        assert torch.equal(model.biases[layer][k, 0].detach(), start.biases[layer])
    other = trainer.internal_of[0]
    assert not torch.equal(model.weights[0][other].detach(), torch.zeros_like(model.weights[0][other]))


def test_a_nan_loss_is_caught_and_isolated():
    registry = test_registry()
    bundle = blobs()
    with_bad = train(_config(*GOOD, "he_normal@nan_act"), registry=registry, bundle=bundle)
    without = train(_config(*GOOD), registry=registry, bundle=bundle)
    _assert_unchanged(with_bad, without)
    bad = with_bad.runs[2]
    assert bad.status == "diverged" and bad.diverged_at_step == 0
    assert math.isnan(bad.final_train_loss)
    assert "NaN" in bad.diagnosis["message"] or "nan" in bad.diagnosis["message"]


def test_failed_initializer_fails_only_its_run():
    registry = test_registry()
    bundle = blobs()
    with_bad = train(_config(*GOOD, "broken_init@relu"), registry=registry, bundle=bundle)
    without = train(_config(*GOOD), registry=registry, bundle=bundle)
    _assert_unchanged(with_bad, without)
    bad = with_bad.runs[2]
    assert bad.status == "failed"
    assert "engine_test_plugin" in bad.error and "deliberate failure" in bad.error
    assert bad.diagnosis["verdict"] == "failed"
    assert bad.final_val_accuracy is None
    assert with_bad.steps[with_bad.steps["run"] == bad.id].empty
    assert [r.status for r in with_bad.runs[:2]] == ["ok", "ok"]


def test_activation_failing_during_training_fails_only_its_runs():
    registry = test_registry()
    bundle = blobs()
    updates: list[ProgressUpdate] = []
    with_bad = train(
        _config(*GOOD, "he_normal@breaks_later"), registry=registry, bundle=bundle, progress=updates.append
    )
    without = train(_config(*GOOD), registry=registry, bundle=bundle)
    _assert_unchanged(with_bad, without)
    bad = with_bad.runs[2]
    assert bad.status == "failed"
    assert "breaks_later" in bad.error and "cannot handle real batches" in bad.error
    assert any("failed" in u.message for u in updates)
    assert any(
        f.stage == "call" and f.plugin == "engine_test_plugin" and "cannot handle" in f.message for f in registry.errors
    )


def test_all_runs_failing_returns_a_result():
    registry = test_registry()
    result = train(_config("broken_init@relu"), registry=registry, bundle=blobs())
    assert [r.status for r in result.runs] == ["failed"]
    assert result.steps.empty and result.layers.empty
    assert ExperimentResult.from_json(result.to_json()).to_json() == result.to_json()


def test_every_run_diverging_stops_training_early():
    registry = test_registry()
    result = train(_config("huge_normal@relu", "huge_normal@identity"), registry=registry, bundle=blobs())
    assert [r.status for r in result.runs] == ["diverged", "diverged"]
    assert result.timings["steps"] == 1  # both diverge in step 0's forward; the loop stops before step 1


def test_digits_float64_divergence_isolation():
    """Same property in float64 on the real default dataset, with SGD momentum."""
    registry = test_registry()
    bundle = load_bundle(_config(*GOOD).validated(registry), registry)
    kw = dict(dtype="float64", optimizer="sgd", lr=0.05, momentum=0.9, epochs=1, batch_size=64)
    with_bad = train(_config(*GOOD, "huge_normal@relu", **kw), registry=registry, bundle=bundle)
    without = train(_config(*GOOD, **kw), registry=registry, bundle=bundle)
    _assert_unchanged(with_bad, without)
