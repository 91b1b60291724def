"""Chart functions: encodings in the Vega-Lite spec, one colour per run everywhere, row caps, log toggles."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from dashboard_tables import RUNS, evals_table, histograms_table, layers_table, steps_table

from dashboard import charts, export


def _walk(node, found):
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            _walk(value, found)
    elif isinstance(node, list):
        for value in node:
            _walk(value, found)
    return found


def color_scales(chart) -> list[dict]:
    """Every scale of a ``color`` encoding in the chart's spec."""
    return [
        n["color"]["scale"]
        for n in _walk(chart.to_dict(), [])
        if isinstance(n.get("color"), dict) and "scale" in n["color"]
    ]


def data_of(chart, name_contains: str | None = None) -> list[pd.DataFrame]:
    spec = chart.to_dict()
    return [pd.DataFrame(rows) for rows in spec.get("datasets", {}).values()]


def y_scales(chart) -> list[dict]:
    return [
        n["y"].get("scale", {})
        for n in _walk(chart.to_dict(), [])
        if isinstance(n.get("y"), dict) and "field" in n["y"]
    ]


# -- colours ---------------------------------------------------------------------------------------


def test_every_chart_gives_a_run_the_same_colour():
    run_ids = ["b@tanh", "a@tanh", "c@tanh"]
    tables = dict(runs=run_ids)
    built = [
        charts.loss_chart(steps_table(**tables), evals_table(**tables), run_ids),
        charts.accuracy_chart(evals_table(**tables), run_ids),
        charts.histogram_chart(histograms_table(**tables), run_ids, layout="overlay"),
        charts.histogram_chart(histograms_table(**tables), run_ids, layout="grid"),
        charts.gradient_flow_chart(layers_table(**tables), run_ids),
        charts.activation_std_chart(layers_table(**tables), run_ids),
        charts.saturation_chart(layers_table(**tables), run_ids),
    ]
    expected = {"domain": run_ids, "range": list(charts.PALETTE[:3])}
    for chart in built:
        scales = color_scales(chart)
        assert scales, f"{type(chart).__name__} has no colour scale"
        for scale in scales:
            assert scale == expected  # experiment order, not alphabetical: b keeps the first colour


def test_sixteen_runs_get_sixteen_distinct_colours():
    ids = [f"run{i}" for i in range(16)]
    scale = charts.run_color_scale(ids).to_dict()
    assert len(set(scale["range"])) == 16
    assert charts.color_of(ids, "run3") == scale["range"][3]


# -- loss -------------------------------------------------------------------------------------------


def test_bucket_means_keeps_the_mean_of_a_linear_curve():
    # train_loss = 3 * step + 1 is linear, so each bucket's mean loss is exactly 3 * (mean step) + 1
    steps = pd.DataFrame({"run": "r", "step": np.arange(1, 10_001), "train_loss": 3.0 * np.arange(1, 10_001) + 1})
    out = charts.bucket_means(steps, ["train_loss"], max_points=100)
    assert len(out) == 100
    np.testing.assert_allclose(out["train_loss"], 3.0 * out["step"] + 1, rtol=1e-12)
    # 100 equal buckets of 100 steps: the mean of the bucket means is the overall mean
    assert out["train_loss"].mean() == pytest.approx(steps["train_loss"].mean(), rel=1e-12)


def test_loss_chart_stays_under_the_row_cap_for_sixteen_long_runs():
    ids = [f"run{i}" for i in range(16)]
    steps = steps_table(runs=ids, n_steps=5_000)  # 80,000 rows
    chart = charts.loss_chart(steps, evals_table(runs=ids, epochs=50), ids)
    rows = charts.chart_rows(chart)
    assert rows <= charts.MAX_CHART_ROWS
    train = charts.loss_frame(steps, None, ids)
    assert set(train["run"]) == set(ids)  # every run still drawn
    assert train.groupby("run")["step"].max().min() > 4_800  # the curve still reaches the end


def test_loss_chart_log_toggle_switches_the_y_scale_and_drops_non_positive_losses():
    steps = steps_table()
    steps.loc[0, "train_loss"] = 0.0
    linear = charts.loss_chart(steps, evals_table(), RUNS, log_scale=False)
    log = charts.loss_chart(steps, evals_table(), RUNS, log_scale=True)
    assert all(s.get("type") != "log" for s in y_scales(linear))
    assert any(s.get("type") == "log" for s in y_scales(log))
    log_rows = pd.concat(data_of(log))
    assert (log_rows["loss"] > 0).all()
    assert (pd.concat(data_of(linear))["loss"] == 0).any()


def test_loss_chart_marks_divergence_and_drops_non_finite_losses():
    steps = steps_table()
    bad = (steps["run"] == RUNS[1]) & (steps["step"] > 30)
    steps.loc[bad, "train_loss"] = np.inf
    steps.loc[(steps["run"] == RUNS[1]) & (steps["step"] == 40), "train_loss"] = np.nan
    chart = charts.loss_chart(steps, evals_table(), RUNS, divergences={RUNS[1]: 31})
    spec = chart.to_dict()
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"]]
    assert "rule" in marks and "point" in marks
    frames = data_of(chart)
    marker = next(f for f in frames if "label" in f)
    assert marker.to_dict("records")[0]["step"] == 31
    assert marker.to_dict("records")[0]["run"] == RUNS[1]
    losses = next(f for f in frames if "split" in f)
    assert np.isfinite(losses["loss"]).all()
    assert losses[(losses["run"] == RUNS[1]) & (losses["split"] == "train")]["step"].max() <= 30


def test_loss_chart_without_data_is_a_placeholder_not_an_error():
    chart = charts.loss_chart(pd.DataFrame(columns=["run", "step", "train_loss"]), None, RUNS)
    assert chart.to_dict()["mark"]["type"] == "text"


# -- histograms --------------------------------------------------------------------------------------


def test_histogram_bins_are_shared_across_runs_and_fractions_sum_to_one():
    frame = charts.histogram_frame(histograms_table(), RUNS, kind="weight", step=20)
    assert set(frame["step"]) == {20}
    for _, layer in frame.groupby("layer"):
        edge_sets = {tuple(g["bin_start"]) for _, g in layer.groupby("run")}
        assert len(edge_sets) == 1  # identical bins for every run
    body = frame[~frame["last"]]
    sums = body.groupby(["run", "layer"])["fraction"].sum()
    np.testing.assert_allclose(sums, 1.0, rtol=1e-12)


def test_coarsen_bins_preserves_counts_and_edges():
    edges = np.linspace(-2, 2, 41).tolist()
    counts = list(range(40))
    new_edges, new_counts = charts.coarsen_bins(edges, counts, max_bins=15)
    assert len(new_counts) == 14  # groups of ceil(40 / 15) = 3 bins: 13 full groups and one of 1
    assert sum(new_counts) == sum(counts)
    assert new_edges[0] == -2 and new_edges[-1] == 2
    assert set(new_edges) <= set(edges)


def test_histogram_step_snaps_to_the_nearest_snapshot():
    frame = charts.histogram_frame(histograms_table(steps=(0, 20)), RUNS, kind="grad", step=7)
    assert set(frame["step"]) == {0}
    assert charts.nearest_step([0, 20, 40], None) == 40


def test_histogram_layouts_facet_by_layer_and_by_run():
    overlay = charts.histogram_chart(histograms_table(), RUNS, layout="overlay").to_dict()
    grid = charts.histogram_chart(histograms_table(), RUNS, layout="grid").to_dict()
    assert overlay["facet"]["field"] == "layer_name"
    assert overlay["columns"] == charts.HIST_OVERLAY_COLUMNS  # wrapped: never wider than the page
    assert grid["facet"]["row"]["field"] == "run"
    assert grid["facet"]["column"]["field"] == "layer_name"
    assert overlay["spec"]["mark"]["interpolate"] == "step-after"
    with pytest.raises(ValueError, match="layout"):
        charts.histogram_chart(histograms_table(), RUNS, layout="stacked")


def test_histogram_y_scale_choice():
    for choice in ("sqrt", "log"):
        chart = charts.histogram_chart(histograms_table(), RUNS, y_scale=choice)
        assert any(s.get("type") == choice for s in y_scales(chart))
    linear = charts.histogram_chart(histograms_table(), RUNS, y_scale="linear")
    assert all("type" not in s for s in y_scales(linear))
    log_rows = data_of(charts.histogram_chart(histograms_table(), RUNS, y_scale="log"))[0]
    assert (log_rows["fraction"] > 0).all()  # empty bins sit on the floor, not at log(0)
    with pytest.raises(ValueError, match="y_scale"):
        charts.histogram_chart(histograms_table(), RUNS, y_scale="cubic")


def test_histograms_of_a_deep_wide_experiment_stay_under_the_cap():
    ids = [f"run{i}" for i in range(16)]
    table = histograms_table(runs=ids, depth=30, steps=(0,), kinds=("weight",))
    for layout in ("overlay", "grid"):
        chart = charts.histogram_chart(table, ids, layout=layout)
        assert charts.chart_rows(chart) <= charts.MAX_CHART_ROWS
    shown = sorted(charts.histogram_frame(table, ids, kind="weight")["layer"].unique())
    assert len(shown) == charts.MAX_LAYERS and shown[0] == 0 and shown[-1] == 30


def test_pick_layers_keeps_first_and_last():
    assert charts.pick_layers(range(5)) == [0, 1, 2, 3, 4]
    picked = charts.pick_layers(range(101), 8)
    assert len(picked) == 8 and picked[0] == 0 and picked[-1] == 100


# -- per-layer statistics ------------------------------------------------------------------------------


def test_gradient_flow_is_log_scaled_and_flags_exact_zeros():
    chart = charts.gradient_flow_chart(layers_table(), RUNS, step=0)
    assert any(s.get("type") == "log" for s in y_scales(chart))
    data = data_of(chart)[0]
    zeros = data[data["zero"]]
    # the zero-init run has exactly-zero hidden gradients (layers 0..2 in the fixture)
    assert set(zeros["run"]) == {RUNS[0]} and len(zeros) == 3
    assert set(zeros["value"]) == {"exactly zero"}  # drawn as crosses (shape scale below)
    shape = next(n["shape"] for n in _walk(chart.to_dict(), []) if isinstance(n.get("shape"), dict))
    assert shape["scale"] == {"domain": ["measured", "exactly zero"], "range": ["circle", "cross"]}
    smallest_positive = data.loc[~data["zero"], "grad_norm"].min()
    np.testing.assert_allclose(zeros["grad_norm"], smallest_positive / 10, rtol=1e-12)


def test_pre_activation_std_overlays_sqrt_of_predicted_variance():
    layers = layers_table()
    chart = charts.activation_std_chart(layers, RUNS, step=20, log_scale=False, which="pre")
    data = pd.concat(data_of(chart))
    theory = data[data["source"] == "theory"].drop_duplicates(["run", "layer"])
    measured = data[data["source"] == "measured"].drop_duplicates(["run", "layer"])
    expected = layers[(layers["step"] == 20) & layers["predicted_var"].notna()]
    merged = theory.merge(expected, on=["run", "layer"])
    assert len(merged) == len(expected) > 0
    np.testing.assert_allclose(merged["std"], np.sqrt(merged["predicted_var"]), rtol=1e-12)
    np.testing.assert_allclose(
        measured.merge(layers[layers["step"] == 20], on=["run", "layer"]).eval("std - pre_std"), 0.0, atol=1e-15
    )
    assert RUNS[0] not in set(theory["run"])  # NaN prediction: no dashed line for that run
    spec = chart.to_dict()
    dash = next(n["strokeDash"] for n in _walk(spec, []) if isinstance(n.get("strokeDash"), dict))
    assert dash["field"] == "source"


def test_post_activation_std_has_no_theory_line():
    layers = layers_table()
    chart = charts.activation_std_chart(layers, RUNS, step=20, log_scale=False, which="post")
    data = pd.concat(data_of(chart))
    assert set(data["source"]) == {"measured"}
    merged = data.drop_duplicates(["run", "layer"]).merge(layers[layers["step"] == 20], on=["run", "layer"])
    np.testing.assert_allclose(merged["std"], merged["act_std"], rtol=1e-12)
    with pytest.raises(ValueError, match="which"):
        charts.activation_std_chart(layers, RUNS, which="both")


def test_saturation_chart_shows_both_fractions_on_a_unit_axis():
    chart = charts.saturation_chart(layers_table(), RUNS)
    spec = chart.to_dict()
    assert spec["facet"]["column"]["field"] == "metric"
    data = data_of(chart)[0]
    assert set(data["metric"]) == {"saturated units", "dead units"}
    assert {"domain": [0, 1]} in y_scales(chart)


def test_layer_metric_over_steps_picks_one_layer():
    chart = charts.layer_metric_over_steps_chart(layers_table(), RUNS, metric="weight_std", layer=2, log_scale=False)
    data = data_of(chart)[0]
    assert sorted(data["step"].unique()) == [0, 10, 20]
    assert len(data) == 3 * len(RUNS)


def test_layer_metric_over_steps_marks_exact_zeros_on_a_log_axis():
    # RUNS[0]'s grad_norm is exactly 0 in the hidden layers: a log axis can only draw it clamped at the
    # floor, so its points must be crosses ("exactly zero"), not circles that read as a small value.
    chart = charts.layer_metric_over_steps_chart(layers_table(), RUNS, metric="grad_norm", layer=1, log_scale=True)
    data = data_of(chart)[0]
    zero_rows = data[data["run"] == RUNS[0]]
    assert set(zero_rows["value"]) == {"exactly zero"}
    assert set(data.loc[data["run"] != RUNS[0], "value"]) == {"measured"}
    assert (zero_rows["grad_norm"] < data.loc[data["run"] != RUNS[0], "grad_norm"].min()).all()
    shapes = [layer["encoding"].get("shape") for layer in chart.to_dict()["layer"]]
    assert {"domain": ["measured", "exactly zero"], "range": ["circle", "cross"]} in [s["scale"] for s in shapes if s]


# -- export ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_charts_export_offline_as_png_and_svg():
    chart = charts.loss_chart(steps_table(), evals_table(), RUNS)
    png = export.chart_png(chart, scale=1)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png[16:20], "big")
    assert width >= export.EXPORT_WIDTH  # the container width became a fixed one
    svg = export.chart_svg(charts.histogram_chart(histograms_table(), RUNS))
    assert svg.lstrip().startswith("<svg") and "layer 0" in svg
    assert math.isfinite(len(svg))


def test_accuracy_downsampling_keeps_train_and_validation_apart():
    ids = [f"run{i}" for i in range(4)]
    evals = evals_table(runs=ids, epochs=600, steps_per_epoch=1)
    evals["train_accuracy"] = 0.9
    evals["val_accuracy"] = 0.5
    chart = charts.accuracy_chart(evals, ids)
    data = data_of(chart)[0]
    assert charts.chart_rows(chart) <= charts.MAX_CHART_ROWS
    assert set(data.loc[data["split"] == "train", "accuracy"]) == {0.9}
    assert set(data.loc[data["split"] == "validation", "accuracy"]) == {0.5}


def test_a_blown_up_run_does_not_flatten_the_others():
    steps = steps_table()
    blown = (steps["run"] == RUNS[2]) & (steps["step"] >= 10)
    steps.loc[blown, "train_loss"] = 1e9  # finite but huge: the divergence threshold was crossed at step 10
    chart = charts.loss_chart(steps, None, RUNS, divergences={RUNS[2]: 10})
    frames = data_of(chart)
    losses = next(f for f in frames if "split" in f)
    assert losses["loss"].max() < 10  # the fixture's healthy losses are below 2.4
    marker = next(f for f in frames if "label" in f).iloc[0]
    assert marker["step"] == 10 and marker["loss"] < 10


def test_live_curves_drop_losses_above_the_divergence_threshold():
    steps = steps_table()
    steps.loc[(steps["run"] == RUNS[0]) & (steps["step"] == 5), "train_loss"] = 5e4
    data = charts.loss_frame(steps, None, RUNS)
    assert data["loss"].max() == 5e4
    chart = charts.loss_chart(steps, None, RUNS, clip_above=1e4)
    assert pd.concat(data_of(chart))["loss"].max() < 1e4
