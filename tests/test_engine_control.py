"""Determinism, progress, cancellation, threads, data order, data-dependent init and config errors."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
import torch
from engine_helpers import blobs, test_registry

from core.errors import ConfigError, UnknownNameError
from core.experiment import ExperimentConfig, RunConfig
from core.results import ExperimentResult
from core.training import ProgressUpdate, snapshot_steps, train


def _config(*runs: str, **kw) -> ExperimentConfig:
    base = dict(depth=2, width=16, epochs=3, batch_size=32, snapshots=2)
    base.update(kw)
    return ExperimentConfig(runs=tuple(RunConfig.parse(r, "relu") for r in runs), **base)


def test_same_config_and_seed_give_identical_json():
    config = _config("he_normal@relu", "xavier_uniform@tanh", "lecun_normal@selu", optimizer="adam", lr=1e-2)
    first = train(config).to_json()
    second = train(config).to_json()
    assert first == second
    assert train(_config("he_normal@relu", "xavier_uniform@tanh", "lecun_normal@selu", seed=1)).to_json() != first


def test_a_runs_initialization_does_not_depend_on_the_other_runs():
    alone = train(_config("he_normal@relu"), bundle=blobs())
    together = train(_config("he_normal@relu", "orthogonal@tanh", "zeros@relu"), bundle=blobs())
    rid = "he_normal@relu"
    for table in ("steps", "evals", "layers"):
        a = alone.table(table)
        b = together.table(table)
        pd.testing.assert_frame_equal(
            a[a["run"] == rid].reset_index(drop=True), b[b["run"] == rid].reset_index(drop=True)
        )


def test_steps_option_trains_exactly_that_many_steps_across_epochs():
    bundle = blobs(n_train=100)  # 100 // 32 = 3 steps per epoch, 4 samples dropped per epoch
    result = train(_config("he_normal@relu", steps=10, epochs=1), bundle=bundle)
    assert result.steps["step"].max() == 9
    evals = result.evals[result.evals["run"] == "he_normal@relu"]
    assert evals["step"].tolist() == [0, 3, 6, 9, 10]  # step 0, once per epoch, and the final step
    assert evals["epoch"].tolist() == pytest.approx([0, 1, 2, 3, 10 / 3])


def test_small_training_set_uses_whole_set_per_step():
    bundle = blobs(n_train=20)
    result = train(_config("he_normal@relu", epochs=2, batch_size=64), bundle=bundle)
    assert result.steps["step"].tolist() == [0, 1]


def test_progress_updates_carry_every_row_once():
    updates: list[ProgressUpdate] = []
    config = _config("he_normal@relu", "xavier_uniform@tanh", epochs=4)
    result = train(config, bundle=blobs(), progress=updates.append)
    steps_rows = [row for u in updates for row in u.steps_rows]
    evals_rows = [row for u in updates for row in u.evals_rows]
    streamed = pd.DataFrame(steps_rows).sort_values(["step", "run"]).reset_index(drop=True)
    table = result.steps.sort_values(["step", "run"]).reset_index(drop=True)
    assert streamed["step"].tolist() == table["step"].tolist()
    assert streamed["run"].tolist() == table["run"].tolist()
    assert streamed["train_loss"].tolist() == table["train_loss"].tolist()
    assert len(evals_rows) == len(result.evals)
    assert [u.step for u in updates] == sorted(u.step for u in updates)
    assert updates[-1].step == updates[-1].total_steps == 4 * (512 // 32)
    assert all(u.epoch == u.step // 16 for u in updates)
    assert len(updates) <= 100 + 5 + 2  # ~1% cadence plus evaluations


def test_cancellation_stops_early_with_valid_partial_results():
    cancel = threading.Event()

    def on_progress(update: ProgressUpdate) -> None:
        if update.step >= 5:
            cancel.set()

    config = _config("he_normal@relu", "xavier_uniform@tanh", epochs=20)
    result = train(config, bundle=blobs(), progress=on_progress, cancel=cancel)
    assert result.cancelled
    assert [r.status for r in result.runs] == ["cancelled", "cancelled"]
    last = int(result.steps["step"].max())
    assert 5 <= last < 20 * 16 - 1
    assert result.evals["step"].max() == last + 1  # a final evaluation where it stopped
    assert all(r.final_val_accuracy is not None for r in result.runs)
    back = ExperimentResult.from_json(result.to_json())
    assert back.cancelled and back.to_json() == result.to_json()


def test_cancel_before_start_trains_nothing():
    cancel = threading.Event()
    cancel.set()
    result = train(_config("he_normal@relu"), bundle=blobs(), cancel=cancel)
    assert result.cancelled and result.steps.empty
    assert result.evals["step"].tolist() == [0]


def test_threads_argument_is_restored():
    before = torch.get_num_threads()
    train(_config("he_normal@relu", epochs=1), bundle=blobs(), threads=2)
    assert torch.get_num_threads() == before
    with pytest.raises(ConfigError, match="threads"):
        train(_config("he_normal@relu"), bundle=blobs(), threads=0)


def test_lsuv_data_dependent_initialization_runs_in_the_engine():
    """LSUV scales each layer until its output variance on the calibration batch is 1 (within its
    tolerance). The engine's probe batch is that calibration batch and the biases are zero, so the
    measured step-0 pre-activation variance of every layer must be within the tolerance of 1."""
    result = train(_config("lsuv@relu", "lsuv@tanh", depth=3, width=32, snapshots=1), bundle=blobs())
    assert [r.status for r in result.runs] == ["ok", "ok"]
    step0 = result.layers[result.layers["step"] == 0]
    tolerance = result.config.runs[0].init_params["tolerance"]
    # LSUV measures torch.var (n - 1 denominator) without centring differences; ours is the population
    # variance of the pooled values, smaller by at most a factor (n - 1) / n and the squared mean.
    assert ((step0["pre_var"] - 1).abs() <= tolerance + 0.02).all(), step0[["run", "layer", "pre_var"]]
    assert step0["predicted_var"].isna().all()  # LSUV declares no variance


def test_snapshot_steps_are_spread_and_include_the_ends():
    assert snapshot_steps(100, 4) == [0, 25, 50, 75, 100]
    assert snapshot_steps(3, 10) == [0, 1, 2, 3]
    assert snapshot_steps(100, 0) == [0]
    result = train(_config("he_normal@relu", epochs=2, snapshots=4), bundle=blobs())
    assert sorted(result.layers["step"].unique()) == [0, 8, 16, 24, 32]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"depth": 0}, "depth"),
        ({"width": 5000}, "width"),
        ({"lr": 0.0}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"optimizer": "rmsprop"}, "optimizer"),
    ],
)
def test_invalid_configs_raise_config_error_naming_the_field(change, field):
    with pytest.raises(ConfigError) as info:
        train(_config("he_normal@relu", **change), bundle=blobs())
    assert info.value.field == field


def test_unknown_scheme_and_memory_budget(monkeypatch):
    with pytest.raises(UnknownNameError, match="he_normal"):
        train(_config("he_norml@relu"), bundle=blobs())
    monkeypatch.setenv("INITLAB_MEMORY_BUDGET_MB", "1")
    with pytest.raises(ConfigError, match="MiB"):
        train(_config("he_normal@relu", width=1024, depth=4), bundle=blobs())


def test_float64_training_reports_float64_precision_numbers():
    result = train(_config("he_normal@relu", dtype="float64", epochs=1), bundle=blobs(), registry=test_registry())
    assert result.config.dtype == "float64"
    assert result.runs[0].status == "ok"


def test_concurrent_trainings_in_threads_match_sequential_ones():
    """No shared mutable state: two trainings at once give exactly what each gives alone."""
    configs = [_config("he_normal@relu", "lsuv@tanh"), _config("xavier_uniform@tanh", "zeros@relu", seed=3)]
    alone = [train(c, bundle=blobs()).to_json() for c in configs]
    results: dict[int, str] = {}

    def work(i: int) -> None:
        results[i] = train(configs[i], bundle=blobs()).to_json()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[0], results[1]] == alone
