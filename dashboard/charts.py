"""Every chart of the dashboard: a pure function from tidy DataFrames to an Altair chart.

The input tables are those of :class:`core.results.ExperimentResult` (``steps``, ``evals``,
``layers``, ``histograms``). Each function aggregates before charting so a chart carries at most
:data:`MAX_CHART_ROWS` rows, and colours runs with :func:`run_color_scale` built from the full
run-id list, so one run keeps one colour across every chart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

MAX_CHART_ROWS = 4_500  # Altair refuses more than 5,000 inline rows; Streamlit ships every row
MAX_POINTS = 3_200  # budget for the training-loss points of one chart (all runs together)
MAX_EVAL_POINTS = 800  # budget for the evaluation points of one chart (all runs together)
MAX_BINS = 40  # histogram bins drawn per (run, layer); finer bins (or too many panels) merge bins
MAX_LAYERS = 8  # layers drawn side by side; deeper nets show an evenly spaced subset
VALUE_FLOOR = 1e-30  # lowest value drawn on a log axis; zeros go a decade below the smallest positive value
HIST_KINDS = {"weight": "Weights", "grad": "Gradients", "pre": "Pre-activations", "post": "Activations"}

# Tableau 10 then 6 more distinct hues: MAX_RUNS (16) runs never share a colour.
PALETTE: tuple[str, ...] = (
    "#4C78A8",
    "#F58518",
    "#E45756",
    "#72B7B2",
    "#54A24B",
    "#EECA3B",
    "#B279A2",
    "#FF9DA6",
    "#9D755D",
    "#BAB0AC",
    "#1F3A93",
    "#8C564B",
    "#17BECF",
    "#BCBD22",
    "#7F3C8D",
    "#2F4F4F",
)


# -- colours and shared helpers ---------------------------------------------------------------------


def run_color_scale(run_ids: Sequence[str]) -> alt.Scale:
    """One fixed colour per run: the domain is the full run list, in experiment order."""
    ids = list(dict.fromkeys(run_ids))
    return alt.Scale(domain=ids, range=[PALETTE[i % len(PALETTE)] for i in range(len(ids))])


def run_color(run_ids: Sequence[str], *, legend: bool = True) -> alt.Color:
    return alt.Color(
        "run:N",
        scale=run_color_scale(run_ids),
        legend=alt.Legend(title="run", orient="right", labelLimit=260) if legend else None,
    )


def color_of(run_ids: Sequence[str], run: str) -> str:
    """The hex colour a run gets in every chart."""
    ids = list(dict.fromkeys(run_ids))
    return PALETTE[ids.index(run) % len(PALETTE)]


def _finite(df: pd.DataFrame, column: str) -> pd.DataFrame:
    values = pd.to_numeric(df[column], errors="coerce")
    return df[np.isfinite(values.to_numpy(dtype=float))]


def _empty(message: str) -> alt.Chart:
    """A small placeholder chart saying why there is nothing to draw."""
    return (
        alt.Chart(pd.DataFrame({"text": [message]}))
        .mark_text(fontSize=13, color="#666")
        .encode(text="text:N")
        .properties(height=60, width=400)
    )


def placeholder(message: str) -> alt.Chart:
    """A small chart that says why there is nothing to draw (for views that pick charts by name)."""
    return _empty(message)


def bucket_means(
    df: pd.DataFrame, value_columns: Sequence[str], max_points: int, by: Sequence[str] = ("run",)
) -> pd.DataFrame:
    """Downsample a per-step table to at most ``max_points`` rows per group (``by``, default per run)
    by averaging equal-width step buckets.

    The buckets span the whole table, so every run is cut at the same steps; ``step`` becomes the
    bucket's mean step. Tables already small enough are returned as they are.
    """
    by = list(by)
    if df.empty or df.groupby(by).size().max() <= max_points:
        return df.reset_index(drop=True)
    lo, hi = float(df["step"].min()), float(df["step"].max())
    width = max((hi - lo) / max_points, 1e-12)
    bucket = np.minimum(((df["step"] - lo) / width).astype(int), max_points - 1)
    grouped = df.assign(_bucket=bucket).groupby([*by, "_bucket"], sort=False)
    return grouped[["step", *value_columns]].mean().reset_index().drop(columns="_bucket")


def _log_ready(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """Clamp non-positive values for a log axis, keeping a ``zero`` flag.

    They are drawn a decade below the smallest positive value (at least :data:`VALUE_FLOOR`), so a
    run whose values are exactly zero sits visibly at the bottom without squashing the others.
    """
    out = df.copy()
    values = out[column].astype(float)
    out["zero"] = values <= 0
    positive = values[values > 0]
    floor = max(VALUE_FLOOR, float(positive.min()) / 10) if not positive.empty else 1e-3
    out[column] = values.clip(lower=floor)
    return out


def log_scale_for(values: pd.Series | Sequence[float]) -> alt.Scale:
    """A log scale with an explicit domain around the positive ``values``.

    An explicit domain keeps a theme's ``zero: true`` (Streamlit's) from stretching a log axis
    towards 0, which squashes every line into a sliver at the top.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return alt.Scale(type="log", domain=[0.1, 10])
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo * 1.0001:
        lo, hi = lo / 2, hi * 2
    return alt.Scale(type="log", domain=[lo / 1.3, hi * 1.3], zero=False, nice=False)


def decade_axis(values: pd.Series | Sequence[float], title: str, max_ticks: int = 7) -> alt.Axis:
    """A log axis labelled at powers of ten only (``1e-6``, not ``0.000001``; 0.01 to 1000 written out),
    at most ``max_ticks`` of them; plain ticks when the values span less than two decades."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0 or v.max() / v.min() < 100:
        return alt.Axis(title=title, format="~g")
    low, high = math.floor(math.log10(v.min())), math.ceil(math.log10(v.max()))
    stride = max(1, math.ceil((high - low + 1) / max_ticks))
    ticks = [10.0**k for k in range(low, high + 1, stride)]
    plain = "datum.value >= 0.01 && datum.value <= 1000"  # 0.01 .. 1000 read better written out
    return alt.Axis(
        title=title, values=ticks, format="~e", labelExpr=f"{plain} ? format(datum.value, '~g') : datum.label"
    )


def pick_layers(layers: Sequence[int], max_layers: int = MAX_LAYERS) -> list[int]:
    """At most ``max_layers`` layer indices, evenly spaced, always keeping the first and last."""
    ordered = sorted(set(int(x) for x in layers))
    if len(ordered) <= max_layers:
        return ordered
    idx = np.unique(np.round(np.linspace(0, len(ordered) - 1, max_layers)).astype(int))
    return [ordered[i] for i in idx]


def nearest_step(available: Sequence[int], step: int | None) -> int | None:
    """The snapshot step closest to ``step`` (the last one when ``step`` is None)."""
    steps = sorted(set(int(s) for s in available))
    if not steps:
        return None
    if step is None:
        return steps[-1]
    return min(steps, key=lambda s: (abs(s - step), s))


def layer_title(layer: int, depth: int | None) -> str:
    if depth is not None and layer == depth:
        return f"{layer} (output)"
    return str(layer)


# -- loss and accuracy ---------------------------------------------------------------------------


def loss_frame(
    steps: pd.DataFrame, evals: pd.DataFrame | None, run_ids: Sequence[str], *, max_points: int = MAX_POINTS
) -> pd.DataFrame:
    """Tidy rows (run, step, loss, split) for the loss chart: training loss per step (bucket means)
    plus validation loss at each evaluation. Non-finite losses are dropped (divergence is marked apart)."""
    n_runs = max(1, len(set(run_ids)))
    parts = []
    if steps is not None and not steps.empty:
        train = bucket_means(
            _finite(steps[["run", "step", "train_loss"]], "train_loss"), ["train_loss"], max(20, max_points // n_runs)
        )
        parts.append(train.rename(columns={"train_loss": "loss"}).assign(split="train"))
    elif evals is not None and not evals.empty:
        train = _finite(evals[["run", "step", "train_loss"]], "train_loss")
        parts.append(train.rename(columns={"train_loss": "loss"}).assign(split="train"))
    if evals is not None and not evals.empty and "val_loss" in evals:
        per_run = max(10, MAX_EVAL_POINTS // n_runs)
        val = bucket_means(_finite(evals[["run", "step", "val_loss"]], "val_loss"), ["val_loss"], per_run)
        parts.append(val.rename(columns={"val_loss": "loss"}).assign(split="validation"))
    if not parts:
        return pd.DataFrame(columns=["run", "step", "loss", "split"])
    out = pd.concat(parts, ignore_index=True)
    return out[out["run"].isin(run_ids)].reset_index(drop=True)


def loss_chart(
    steps: pd.DataFrame,
    evals: pd.DataFrame | None,
    run_ids: Sequence[str],
    *,
    log_scale: bool = False,
    divergences: Mapping[str, int] | None = None,
    clip_above: float | None = None,
    max_points: int = MAX_POINTS,
    height: int = 320,
) -> alt.Chart | alt.LayerChart:
    """Training (solid) and validation (dashed) loss vs step, one colour per run.

    ``divergences`` maps run id -> the step it diverged at; each gets a vertical rule and a cross,
    and its losses from that step on are left out (they would flatten every other curve).
    ``clip_above`` (the config's divergence threshold) drops losses above it, for live curves whose
    divergences are not known yet.
    """
    data = loss_frame(steps, evals, run_ids, max_points=max_points)
    divergences = {r: int(s) for r, s in (divergences or {}).items() if s is not None}
    for run, step in divergences.items():  # blown-up losses would flatten every other curve
        data = data[~((data["run"] == run) & (data["step"] >= step))]
    if clip_above is not None:
        data = data[data["loss"] <= clip_above]
    if data.empty and not divergences:
        return _empty("No loss values yet.")
    if log_scale:
        data = data[data["loss"] > 0]
    y_scale = log_scale_for(data["loss"]) if log_scale else alt.Scale(zero=False)
    base = alt.Chart(data).encode(
        x=alt.X("step:Q", title="step"),
        y=alt.Y("loss:Q", title="loss (cross-entropy)" + (", log scale" if log_scale else ""), scale=y_scale),
        color=run_color(run_ids),
        strokeDash=alt.StrokeDash(
            "split:N",
            scale=alt.Scale(domain=["train", "validation"], range=[[1, 0], [6, 3]]),
            legend=alt.Legend(title="split", orient="right", symbolType="stroke"),
        ),
        tooltip=["run:N", "split:N", "step:Q", alt.Tooltip("loss:Q", format=".4g")],
    )
    chart = base.mark_line(strokeWidth=2, clip=True)
    marks = divergence_layer(data, run_ids, divergences or {})
    if marks is not None:
        chart = alt.layer(chart, *marks)
    return chart.properties(height=height, width="container")


def divergence_layer(
    data: pd.DataFrame, run_ids: Sequence[str], divergences: Mapping[str, int]
) -> list[alt.Chart] | None:
    """A dashed rule at each divergence step and a cross at the run's last drawn loss (at the top of
    the chart when it diverged before any loss was drawn)."""
    rows = []
    for run, step in divergences.items():
        if run not in run_ids or step is None:
            continue
        before = data[(data["run"] == run) & (data["step"] <= step)].sort_values("step")
        top = float(data["loss"].max()) if not data.empty else 1.0
        loss = float(before["loss"].iloc[-1]) if not before.empty else top
        rows.append({"run": run, "step": int(step), "loss": loss, "label": f"{run} diverged at step {int(step)}"})
    if not rows:
        return None
    marks = pd.DataFrame(rows)
    color = run_color(run_ids, legend=False)
    rule = (
        alt.Chart(marks)
        .mark_rule(strokeDash=[2, 2], strokeWidth=1.5)
        .encode(x="step:Q", color=color, tooltip=["label:N"])
    )
    point = (
        alt.Chart(marks)
        .mark_point(shape="cross", size=160, filled=True)
        .encode(x="step:Q", y="loss:Q", color=color, tooltip=["label:N"])
    )
    return [rule, point]


def accuracy_chart(evals: pd.DataFrame, run_ids: Sequence[str], *, height: int = 260) -> alt.Chart:
    """Validation (solid) and training (dashed) accuracy at each evaluation."""
    if evals is None or evals.empty:
        return _empty("No evaluations yet.")
    long = evals.melt(
        id_vars=["run", "step"],
        value_vars=[c for c in ("train_accuracy", "val_accuracy") if c in evals],
        var_name="split",
        value_name="accuracy",
    )
    long["split"] = long["split"].map({"train_accuracy": "train", "val_accuracy": "validation"})
    per_run = max(10, MAX_EVAL_POINTS // max(1, len(set(run_ids))))
    long = bucket_means(_finite(long, "accuracy"), ["accuracy"], per_run, by=("run", "split"))
    long = long[long["run"].isin(run_ids)]
    return (
        alt.Chart(long)
        .mark_line(point=True, strokeWidth=2)
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])),
            color=run_color(run_ids),
            strokeDash=alt.StrokeDash(
                "split:N",
                scale=alt.Scale(domain=["train", "validation"], range=[[6, 3], [1, 0]]),
                legend=alt.Legend(title="split", orient="right", symbolType="stroke"),
            ),
            tooltip=["run:N", "split:N", "step:Q", alt.Tooltip("accuracy:Q", format=".3f")],
        )
        .properties(height=height, width="container")
    )


# -- histograms ----------------------------------------------------------------------------------


def coarsen_bins(edges: Sequence[float], counts: Sequence[int], max_bins: int = MAX_BINS) -> tuple[list, list]:
    """Merge adjacent bins (groups of ``ceil(n / max_bins)``) so at most ``max_bins`` remain.

    The same ``edges`` always give the same merged edges, so bins shared across runs stay shared.
    """
    n = len(counts)
    if n <= max_bins:
        return list(map(float, edges)), list(map(float, counts))
    k = math.ceil(n / max_bins)
    merged_counts = [float(sum(counts[i : i + k])) for i in range(0, n, k)]
    merged_edges = [float(edges[i]) for i in range(0, n, k)] + [float(edges[n])]
    return merged_edges, merged_counts


def histogram_frame(
    histograms: pd.DataFrame,
    run_ids: Sequence[str],
    *,
    kind: str,
    step: int | None = None,
    layers: Sequence[int] | None = None,
    max_bins: int = MAX_BINS,
) -> pd.DataFrame:
    """One row per (run, layer, bin) at the snapshot nearest ``step``: bin_start, bin_end, fraction.

    ``fraction`` is the bin's count over the run-layer total, so runs compare on one scale. Each
    (run, layer) ends with a closing row (``last`` = True, bin_start = the last edge, the last bin's
    fraction) so a step-after line draws the top of the last bin.
    """
    cols = ["run", "layer", "step", "bin_start", "bin_end", "fraction", "count", "last"]
    if histograms is None or histograms.empty:
        return pd.DataFrame(columns=cols)
    table = histograms[(histograms["kind"] == kind) & histograms["run"].isin(run_ids)]
    chosen = nearest_step(table["step"].tolist(), step)
    if chosen is None:
        return pd.DataFrame(columns=cols)
    table = table[table["step"] == chosen]
    keep = set(pick_layers(table["layer"].tolist()) if layers is None else layers)
    panels = max(1, table["run"].nunique() * len(keep))
    max_bins = max(4, min(max_bins, MAX_CHART_ROWS // panels - 1))
    rows = []
    for rec in table.itertuples(index=False):
        if int(rec.layer) not in keep:
            continue
        edges, counts = coarsen_bins(list(rec.bin_edges), list(rec.counts), max_bins)
        total = sum(counts) or 1.0
        for i, c in enumerate(counts):
            rows.append((rec.run, int(rec.layer), chosen, edges[i], edges[i + 1], c / total, c, False))
        rows.append((rec.run, int(rec.layer), chosen, edges[-1], edges[-1], counts[-1] / total, 0.0, True))
    return pd.DataFrame(rows, columns=cols)


HIST_Y_SCALES = ("sqrt", "linear", "log")
HIST_AREA_WIDTH = 660  # pixels the histogram panels of one row share (the legend sits to their right)
HIST_OVERLAY_COLUMNS = 3  # panels per row in the overlay layout


def histogram_chart(
    histograms: pd.DataFrame,
    run_ids: Sequence[str],
    *,
    kind: str = "weight",
    step: int | None = None,
    layout: str = "overlay",
    depth: int | None = None,
    y_scale: str = "sqrt",
    width: int = HIST_AREA_WIDTH,
) -> alt.Chart | alt.FacetChart:
    """Histograms of ``kind`` (weight, grad, pre, post) per layer, bins shared across runs.

    ``layout="overlay"``: one panel per layer (wrapped, three per row), runs drawn as step outlines
    on top of each other. ``layout="grid"``: small multiples, a row per run and a column per layer.
    ``y_scale`` is ``sqrt`` (default: a zero-init spike holding every value does not flatten the
    other runs), ``linear`` or ``log``.
    """
    if layout not in ("overlay", "grid"):
        raise ValueError(f"layout must be 'overlay' or 'grid', got {layout!r}")
    if y_scale not in HIST_Y_SCALES:
        raise ValueError(f"y_scale must be one of {', '.join(HIST_Y_SCALES)}, got {y_scale!r}")
    data = histogram_frame(histograms, run_ids, kind=kind, step=step)
    if data.empty:
        return _empty(f"No {HIST_KINDS.get(kind, kind).lower()} histograms recorded.")
    data["layer_name"] = [f"layer {layer_title(x, depth)}" for x in data["layer"]]
    layer_order = [f"layer {layer_title(x, depth)}" for x in sorted(data["layer"].unique())]
    y_title = "fraction of values" + ("" if y_scale == "linear" else f" ({y_scale} scale)")
    floor = 1e-4 if y_scale == "log" else 0.0
    if y_scale == "log":
        data["fraction"] = data["fraction"].clip(lower=floor)
    if y_scale == "log":
        scale = log_scale_for(data["fraction"])
    else:
        scale = alt.Scale(type="sqrt", zero=True) if y_scale == "sqrt" else alt.Scale(zero=True)
    x = alt.X("bin_start:Q", title=HIST_KINDS.get(kind, kind).lower(), axis=alt.Axis(format="~g", tickCount=4))
    tooltip = [
        "run:N",
        "layer:O",
        alt.Tooltip("bin_start:Q", format=".3g", title="from"),
        alt.Tooltip("bin_end:Q", format=".3g", title="to"),
        alt.Tooltip("fraction:Q", format=".3f"),
    ]
    n_layers = len(layer_order)
    if layout == "overlay":
        columns = min(HIST_OVERLAY_COLUMNS, n_layers)
        chart = (
            alt.Chart(data)
            .mark_line(interpolate="step-after", strokeWidth=1.6, opacity=0.9)
            .encode(x=x, y=alt.Y("fraction:Q", title=y_title, scale=scale), color=run_color(run_ids), tooltip=tooltip)
            .properties(width=max(120, width // columns - 70), height=150)
        )
        facet = alt.Facet("layer_name:N", sort=layer_order, title=None, header=alt.Header(labelFontSize=12))
        return chart.facet(facet=facet, columns=columns).resolve_scale(x="independent", y="independent")
    bars = data[~data["last"]]
    chart = (
        alt.Chart(bars)
        .mark_rect(opacity=0.85)
        .encode(
            x=x,
            x2="bin_end:Q",
            y=alt.Y("fraction:Q", title=None, scale=scale),
            y2=alt.datum(floor),
            color=run_color(run_ids, legend=False),
            tooltip=tooltip,
        )
        .properties(width=max(70, (width - 180) // n_layers - 20), height=70)
    )
    run_header = alt.Header(labelAngle=0, labelAlign="left", labelLimit=170)
    return chart.facet(
        row=alt.Facet("run:N", sort=list(run_ids), title=None, header=run_header),
        column=alt.Facet("layer_name:N", sort=layer_order, title=None),
    ).resolve_scale(x="independent", y="independent")


# -- per-layer statistics ------------------------------------------------------------------------


def _layer_rows(layers: pd.DataFrame, run_ids: Sequence[str], step: int | None, columns: Sequence[str]):
    if layers is None or layers.empty:
        return pd.DataFrame(columns=["run", "layer", "step", *columns]), None
    table = layers[layers["run"].isin(run_ids)]
    chosen = nearest_step(table["step"].tolist(), step)
    table = table[table["step"] == chosen]
    keep = [c for c in ("run", "layer", "step", *columns) if c in table]
    return table[keep].reset_index(drop=True), chosen


GRADIENT_METRICS = {  # layers-table column -> what it is, in words
    "pre_grad_norm": "back-propagated gradient (∂loss/∂pre-activation)",
    "grad_norm": "weight gradient (∂loss/∂W)",
}
METRIC_LABELS = {  # layers-table column -> axis title
    "grad_norm": "weight-gradient norm",
    "pre_grad_norm": "back-propagated gradient norm",
    "weight_std": "weight std",
    "act_mean": "mean activation",
    "act_std": "activation std",
    "pre_mean": "mean pre-activation",
    "pre_std": "pre-activation std",
    "saturated_fraction": "saturated fraction",
    "dead_fraction": "dead-unit fraction",
    "unit_spread": "spread between units",
}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def gradient_flow_chart(
    layers: pd.DataFrame,
    run_ids: Sequence[str],
    *,
    step: int | None = None,
    depth: int | None = None,
    metric: str = "grad_norm",
    height: int = 300,
) -> alt.Chart | alt.LayerChart:
    """Gradient norm per layer on a log scale (the gradient-flow chart) at the snapshot nearest ``step``.

    ``metric``: ``grad_norm`` (the gradient w.r.t. each layer's weights) or ``pre_grad_norm`` (the
    back-propagated gradient w.r.t. its pre-activations, the error signal that vanishes or explodes).
    A line falling steeply from the output layer (right) to the input (left) is vanishing gradients;
    a rising one is exploding. Zero gradients (symmetry not broken) are drawn at the floor as crosses.
    """
    if metric not in GRADIENT_METRICS:
        raise ValueError(f"metric must be one of {', '.join(GRADIENT_METRICS)}, got {metric!r}")
    data, chosen = _layer_rows(layers, run_ids, step, [metric])
    data = _finite(data, metric) if metric in data else data.iloc[0:0]
    if data.empty:
        return _empty(f"No {GRADIENT_METRICS[metric].split(' (')[0]} norms recorded.")
    data = _log_ready(data, metric)
    data["value"] = np.where(data["zero"], "exactly zero", "measured")
    x = alt.X("layer:O", title="layer (0 = input side)", axis=alt.Axis(labelAngle=0))
    axis = decade_axis(data[metric], "gradient norm (log scale)")  # the title says which gradient
    y = alt.Y(f"{metric}:Q", scale=log_scale_for(data[metric]), axis=axis)
    tooltip = ["run:N", "layer:O", alt.Tooltip(f"{metric}:Q", format=".3e"), "value:N"]
    title = f"{GRADIENT_METRICS[metric].split(' (')[0]} per layer, step {chosen}"
    chart = _line_with_zero_markers(data, x, y, run_color(run_ids), tooltip, legend_title="gradient")
    return chart.properties(height=height, width="container", title=title)


def _zero_shape(legend_title: str | None) -> alt.Shape:
    """Point shape by the ``value`` column of ``_log_ready`` data: circles measured, crosses exact zeros."""
    legend = alt.Legend(title=legend_title, orient="right") if legend_title else None
    return alt.Shape(
        "value:N", scale=alt.Scale(domain=["measured", "exactly zero"], range=["circle", "cross"]), legend=legend
    )


def _line_with_zero_markers(
    data: pd.DataFrame, x: alt.X, y: alt.Y, color: alt.Color, tooltip: list, *, legend_title: str
) -> alt.LayerChart:
    """Lines with a point per row: circles for measured values, crosses for exact zeros (which a log
    axis can only draw clamped at its floor; ``data`` has the ``value`` column from ``_log_ready``)."""
    line = alt.Chart(data).mark_line(strokeWidth=2).encode(x=x, y=y, color=color)
    points = (
        alt.Chart(data)
        .mark_point(filled=True, size=60)
        .encode(
            x=x,
            y=y,
            color=color,
            shape=_zero_shape(legend_title),
            tooltip=tooltip,
        )
    )
    return alt.layer(line, points)


def activation_std_chart(
    layers: pd.DataFrame,
    run_ids: Sequence[str],
    *,
    step: int | None = None,
    log_scale: bool = True,
    which: str = "pre",
    height: int = 280,
) -> alt.Chart | alt.LayerChart:
    """Standard deviation of each layer's signal vs depth, one colour per run.

    ``which="pre"``: pre-activations (``pre_std``, solid) with the theory's ``sqrt(predicted_var)``
    dashed on top (the engine predicts the pre-activation variance at initialization, so the
    dashed line appears at step 0). ``which="post"``: the activations after the nonlinearity
    (``act_std``).
    """
    if which not in ("pre", "post"):
        raise ValueError(f"which must be 'pre' or 'post', got {which!r}")
    column = "pre_std" if which == "pre" else "act_std"
    data, chosen = _layer_rows(layers, run_ids, step, [column, "predicted_var"])
    if data.empty or column not in data:
        return _empty(f"No {'pre-activation' if which == 'pre' else 'activation'} statistics recorded.")
    measured = _finite(data[["run", "layer", column]], column).rename(columns={column: "std"})
    parts = [measured.assign(source="measured")]
    if which == "pre" and "predicted_var" in data:
        theory = _finite(data[["run", "layer", "predicted_var"]], "predicted_var")
        theory = theory[theory["predicted_var"] >= 0]
        theory = theory.assign(std=np.sqrt(theory["predicted_var"].astype(float)), source="theory")
        parts.append(theory[["run", "layer", "std", "source"]])
    long = pd.concat(parts, ignore_index=True)
    if log_scale:
        long = _log_ready(long, "std")
    what = "pre-activation std" if which == "pre" else "activation std"
    if log_scale:
        y = alt.Y("std:Q", scale=log_scale_for(long["std"]), axis=decade_axis(long["std"], what + " (log scale)"))
    else:
        y = alt.Y("std:Q", title=what, scale=alt.Scale(zero=True))
    x = alt.X("layer:O", title="layer (0 = next to the input)", axis=alt.Axis(labelAngle=0))
    dash = alt.StrokeDash(
        "source:N",
        scale=alt.Scale(domain=["measured", "theory"], range=[[1, 0], [6, 4]]),
        legend=alt.Legend(title="", orient="right", symbolStrokeWidth=2, symbolSize=300),
    )
    lines = (
        alt.Chart(long)
        .mark_line(strokeWidth=2)
        .encode(
            x=x,
            y=y,
            color=run_color(run_ids),
            strokeDash=dash,
            detail="source:N",
            tooltip=["run:N", "source:N", "layer:O", alt.Tooltip("std:Q", format=".3g")],
        )
    )
    points = (
        alt.Chart(long[long["source"] == "measured"])
        .mark_point(filled=True, size=45)
        .encode(x=x, y=y, color=run_color(run_ids, legend=False))
    )
    title = f"{what} by layer, step {chosen}"
    return alt.layer(lines, points).properties(height=height, width="container", title=title)


def saturation_chart(
    layers: pd.DataFrame, run_ids: Sequence[str], *, step: int | None = None, height: int = 220
) -> alt.Chart | alt.FacetChart:
    """Saturated and dead-unit fractions per layer, side by side, one colour per run."""
    data, chosen = _layer_rows(layers, run_ids, step, ["saturated_fraction", "dead_fraction"])
    value_vars = [c for c in ("saturated_fraction", "dead_fraction") if c in data]
    if data.empty or not value_vars:
        return _empty("No saturation or dead-unit statistics recorded.")
    long = data.melt(id_vars=["run", "layer"], value_vars=value_vars, var_name="metric", value_name="fraction")
    long = _finite(long, "fraction")
    names = {"saturated_fraction": "saturated units", "dead_fraction": "dead units"}
    long["metric"] = long["metric"].map(names)
    if long.empty:
        return _empty("This activation neither saturates nor dies: nothing to show.")
    chart = (
        alt.Chart(long)
        .mark_line(point=True, strokeWidth=2)
        .encode(
            x=alt.X("layer:O", title="layer", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("fraction:Q", title="fraction of units", scale=alt.Scale(domain=[0, 1])),
            color=run_color(run_ids),
            tooltip=["run:N", "metric:N", "layer:O", alt.Tooltip("fraction:Q", format=".1%")],
        )
        .properties(width=300, height=height)
    )
    return chart.facet(column=alt.Facet("metric:N", sort=list(names.values()), title=f"step {chosen}"))


def layer_metric_over_steps_chart(
    layers: pd.DataFrame,
    run_ids: Sequence[str],
    *,
    metric: str,
    layer: int,
    log_scale: bool = True,
    height: int = 240,
) -> alt.Chart:
    """One per-layer statistic (e.g. ``grad_norm``, ``weight_std``) of one layer over the snapshots."""
    if layers is None or layers.empty or metric not in layers:
        return _empty(f"No {metric} recorded.")
    data = layers[(layers["layer"] == layer) & layers["run"].isin(run_ids)][["run", "step", metric]]
    data = _finite(data, metric)
    if data.empty:
        return _empty(f"No {metric} recorded for layer {layer}.")
    x = alt.X("step:Q", title="step")
    # two-line title: a rotated title longer than the plot is tall makes Vega's "fit" shrink the plot
    title = [metric_label(metric), "(log scale)"] if log_scale else metric_label(metric)
    tooltip = ["run:N", "step:Q", alt.Tooltip(f"{metric}:Q", format=".3e")]
    if log_scale:
        data = _log_ready(data, metric)
        data["value"] = np.where(data["zero"], "exactly zero", "measured")
        y = alt.Y(f"{metric}:Q", title=title, scale=log_scale_for(data[metric]))
        chart = _line_with_zero_markers(data, x, y, run_color(run_ids), [*tooltip, "value:N"], legend_title="value")
    else:
        y = alt.Y(f"{metric}:Q", title=title, scale=alt.Scale(zero=False))
        chart = alt.Chart(data).mark_line(point=True, strokeWidth=2).encode(x=x, y=y, color=run_color(run_ids))
        chart = chart.encode(tooltip=tooltip)
    return chart.properties(height=height, width="container")  # no title: it costs plot height; the view labels it


LAYER_PANEL_AREA = 600  # pixels the panels of a multi-layer chart share (axis and legend come on top)
LAYER_PANEL_COLUMNS = 4  # panels per row


def _repeats_an_earlier_run(data: pd.DataFrame, metric: str, ids: Sequence[str]) -> pd.Series:
    """Per row: whether its run's line in its panel is identical to an earlier run's (e.g. two symmetric
    inits whose spread is exactly zero throughout). Such a line is drawn dashed, so the earlier run's
    colour shows through the gaps instead of being hidden under it."""
    order = {run: i for i, run in enumerate(ids)}
    repeated: set[tuple[str, str]] = set()
    for panel, rows in data.groupby("panel", sort=False):
        seen: list[tuple] = []
        for run in sorted(rows["run"].unique(), key=lambda r: order.get(r, len(order))):
            series = tuple(rows.loc[rows["run"] == run, ["step", metric]].sort_values("step").itertuples(index=False))
            if series in seen:
                repeated.add((panel, run))
            seen.append(series)
    return pd.Series([(p, r) in repeated for p, r in zip(data["panel"], data["run"], strict=True)], index=data.index)


def layers_over_steps_chart(
    layers: pd.DataFrame,
    run_ids: Sequence[str],
    *,
    metric: str,
    layer_ids: Sequence[int],
    log_scale: bool = False,
    depth: int | None = None,
    width: int = LAYER_PANEL_AREA,
    height: int = 200,
) -> alt.Chart | alt.FacetChart:
    """``metric`` over the snapshots for several layers: one panel per layer (in ``layer_ids`` order),
    one line per run in its fixed colour, the y axis shared so the panels compare directly.

    E.g. Glorot & Bengio's mean activation per hidden layer over training (``metric="act_mean"``,
    ``layer_ids=(0, 1, 2, 3)``). With ``log_scale`` exact zeros sit a decade below the smallest
    positive value, drawn as crosses.
    """
    wanted = [int(x) for x in dict.fromkeys(layer_ids)]
    if layers is None or layers.empty or metric not in layers:
        return _empty(f"No {metric_label(metric)} recorded.")
    if not wanted:
        raise ValueError("layer_ids must name at least one layer")
    data = layers[layers["layer"].isin(wanted) & layers["run"].isin(run_ids)][["run", "step", "layer", metric]]
    data = _finite(data, metric)
    if data.empty:
        return _empty(f"No {metric_label(metric)} recorded for layers {', '.join(map(str, wanted))}.")
    data = _log_ready(data, metric) if log_scale else data.assign(zero=False)
    data["value"] = np.where(data["zero"], "exactly zero", "measured")
    order = [f"layer {layer_title(x, depth)}" for x in wanted]
    data["panel"] = [f"layer {layer_title(int(x), depth)}" for x in data["layer"]]
    title = metric_label(metric) + (" (log scale)" if log_scale else "")
    if log_scale:
        y = alt.Y(f"{metric}:Q", scale=log_scale_for(data[metric]), axis=decade_axis(data[metric], title))
    else:
        y = alt.Y(f"{metric}:Q", title=title, scale=alt.Scale(zero=False))
    x = alt.X("step:Q", title="step", axis=alt.Axis(tickCount=4))
    color = run_color(run_ids)
    tooltip = ["run:N", "layer:O", "step:Q", alt.Tooltip(f"{metric}:Q", format=".3g"), "value:N"]
    data["repeats_earlier_run"] = _repeats_an_earlier_run(data, metric, ids=list(dict.fromkeys(run_ids)))
    dash = alt.StrokeDash(
        "repeats_earlier_run:N", scale=alt.Scale(domain=[False, True], range=[[1, 0], [6, 4]]), legend=None
    )
    line = alt.Chart().mark_line(strokeWidth=2).encode(x=x, y=y, color=color, strokeDash=dash)
    points = (
        alt.Chart()
        .mark_point(filled=True, size=40)
        .encode(
            x=x,
            y=y,
            color=color,
            shape=_zero_shape("value" if log_scale else None),
            tooltip=tooltip,
        )
    )
    columns = min(LAYER_PANEL_COLUMNS, len(order))
    panel_width = max(100, width // columns - 30)
    return (
        alt.layer(line, points, data=data)
        .properties(width=panel_width, height=height)
        .facet(
            facet=alt.Facet("panel:N", sort=order, title=None, header=alt.Header(labelFontSize=12)),
            columns=columns,
        )
    )


# -- inspection ------------------------------------------------------------------------------------


def chart_rows(chart: alt.TopLevelMixin) -> int:
    """Total number of data rows a chart ships (all inline datasets)."""
    spec = chart.to_dict()
    datasets = spec.get("datasets", {})
    return sum(len(v) for v in datasets.values())
