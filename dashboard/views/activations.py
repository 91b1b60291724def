"""Activations: histograms per layer, std vs depth with the theory overlaid, saturation and dead units."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, controls, export
from dashboard.views import View, ViewContext
from dashboard.views.weights import histogram_section

KINDS = {"post": "after the activation", "pre": "before the activation"}


def render(ctx: ViewContext) -> None:
    layers = ctx.table("layers")
    run_ids = list(ctx.run_ids)
    if layers.empty:
        st.info("No per-layer statistics were recorded in this experiment.")
        return
    steps = sorted(int(s) for s in layers["step"].unique())
    a, b = st.columns([4, 1], vertical_alignment="bottom")
    with a:
        step = controls.step_slider("step", steps, "view.act.step", default="first")
    with b:
        log_scale = controls.toggle("log scale", key="view.act.log", default=True)
    st.caption(
        "Standard deviation of each layer's signal on a fixed batch. Left, before the nonlinearity, with the "
        "initializer's theory dashed (a prediction for initialization: shown at step 0). Right, after it. "
        "A flat line keeps the signal alive with depth; a falling one vanishes, a rising one explodes."
    )
    left, right = st.columns(2)
    with left:
        pre = charts.activation_std_chart(layers, run_ids, step=step, log_scale=log_scale, which="pre")
        export.show_chart(pre, "chart_act_std", name=f"pre-activation-std-step{step}", width="stretch")
    with right:
        post = charts.activation_std_chart(layers, run_ids, step=step, log_scale=log_scale, which="post")
        export.show_chart(post, "chart_post_std", name=f"activation-std-step{step}", width="stretch")
    sat = charts.saturation_chart(layers, run_ids, step=step)
    export.show_chart(sat, "chart_saturation", name=f"saturation-step{step}", width="content")
    st.subheader("Activation histograms")
    kind = controls.choice("values", list(KINDS), "view.act.kind", format_func=KINDS.get)
    histogram_section(ctx, kind, f"view.act_hist.{kind}")


VIEW = View("Activations", render, order=40)
