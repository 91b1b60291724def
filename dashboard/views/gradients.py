"""Gradients: the gradient-flow chart (norm per layer, log scale) and gradient histograms."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, controls, export
from dashboard.views import View, ViewContext
from dashboard.views.weights import histogram_section


def render(ctx: ViewContext) -> None:
    layers = ctx.table("layers")
    run_ids = list(ctx.run_ids)
    if layers.empty:
        st.info("No per-layer statistics were recorded in this experiment.")
        return
    st.caption(
        "Gradient norm of each layer's weights. A line dropping by orders of magnitude towards layer 0 is "
        "vanishing gradients; one climbing towards layer 0 is exploding. Crosses at the bottom are exactly zero."
    )
    steps = sorted(int(s) for s in layers["step"].unique())
    step = controls.step_slider("step", steps, "view.grad.step", default="first")
    chart = charts.gradient_flow_chart(layers, run_ids, step=step, depth=ctx.depth)
    export.show_chart(chart, "chart_gradient_flow", name=f"gradient-flow-step{step}", width="stretch")
    layer = controls.choice(
        "gradient norm over training, layer",
        sorted(int(x) for x in layers["layer"].unique()),
        "view.grad.layer",
        default=0,
    )
    over = charts.layer_metric_over_steps_chart(layers, run_ids, metric="grad_norm", layer=layer)
    export.show_chart(over, "chart_grad_over_steps", width="stretch", downloads=False)
    st.subheader("Gradient histograms")
    histogram_section(ctx, "grad", "view.grad_hist")


VIEW = View("Gradients", render, order=30)
