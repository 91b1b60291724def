"""Weights: histograms per layer x run with shared bins, from initialization to the end of training."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, controls, export
from dashboard.views import View, ViewContext

LAYOUTS = {"overlay": "Overlay runs", "grid": "Small multiples"}


def histogram_section(ctx: ViewContext, kind: str, prefix: str, *, default_step: str = "first") -> None:
    """Step slider, layout and log controls, then the histogram chart of ``kind`` with downloads."""
    table = ctx.table("histograms")
    steps = sorted(table.loc[table["kind"] == kind, "step"].unique()) if not table.empty else []
    if not steps:
        st.info(f"No {charts.HIST_KINDS.get(kind, kind).lower()} histograms were recorded in this experiment.")
        return
    a, b, c = st.columns([5, 3, 3], vertical_alignment="bottom")
    with a:
        step = controls.step_slider("step (0 = right after initialization)", steps, f"{prefix}.step", default_step)
    with b:
        layout = controls.choice("layout", list(LAYOUTS), f"{prefix}.layout", format_func=LAYOUTS.get)
    with c:
        y_scale = controls.choice("y scale", list(charts.HIST_Y_SCALES), f"{prefix}.yscale")
    chart = charts.histogram_chart(
        table, list(ctx.run_ids), kind=kind, step=step, layout=layout, depth=ctx.depth, y_scale=y_scale
    )
    key = f"chart_{prefix.replace('.', '_')}"
    export.show_chart(chart, key, name=f"{kind}-histograms-step{step}", width="content")
    shown = charts.pick_layers(table["layer"].unique())
    if len(shown) < table["layer"].nunique():
        st.caption(f"Deep network: showing layers {', '.join(map(str, shown))} of {table['layer'].nunique()}.")


def render(ctx: ViewContext) -> None:
    st.caption(
        "Each panel is one layer (0 is next to the input); bins are shared by all runs, so shapes compare "
        "directly. Slide from step 0 (right after initialization) to the end of training."
    )
    histogram_section(ctx, "weight", "view.weights")
    layers = ctx.table("layers")
    if not layers.empty and "weight_std" in layers:
        layer = controls.choice(
            "weight std over training, layer",
            sorted(int(x) for x in layers["layer"].unique()),
            "view.weights.std_layer",
            default=0,
        )
        chart = charts.layer_metric_over_steps_chart(layers, list(ctx.run_ids), metric="weight_std", layer=layer)
        export.show_chart(chart, "chart_weight_std", width="stretch", downloads=False)


VIEW = View("Weights", render, order=20)
