"""Gradients: the gradient-flow chart (norm per layer, log scale) and gradient histograms.

The flow chart offers two gradients: the back-propagated one (``pre_grad_norm``, the error signal
w.r.t. each layer's pre-activations, which is what vanishes or explodes) and the weight gradient
(``grad_norm``). The back-propagated one is the default when the result has it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, controls, export
from dashboard.views import View, ViewContext
from dashboard.views.weights import histogram_section

GRADIENT_CHOICES = {"pre_grad_norm": "backpropagated gradient (∂loss/∂pre-activation)", "grad_norm": "weight gradient"}
EXPLAIN = (
    "The **backpropagated gradient** is the error signal each layer passes down to the one below: it is "
    "what vanishes or explodes. A layer's **weight gradient** is that signal times the layer's input, "
    "which often shrinks or grows the opposite way, so it can look flat while the signal has vanished."
)


def available_gradients(layers: pd.DataFrame) -> list[str]:
    """The gradient columns this result has values for, the back-propagated one first."""
    found = []
    for column in GRADIENT_CHOICES:
        if column in layers and np.isfinite(pd.to_numeric(layers[column], errors="coerce")).any():
            found.append(column)
    return found


def render(ctx: ViewContext) -> None:
    layers = ctx.table("layers")
    run_ids = list(ctx.run_ids)
    if layers.empty:
        st.info("No per-layer statistics were recorded in this experiment.")
        return
    metrics = available_gradients(layers)
    if not metrics:
        st.info("No gradient norms were recorded in this experiment.")
        return
    metric = controls.choice(
        "gradient", metrics, "view.grad.metric", default=metrics[0], format_func=GRADIENT_CHOICES.get
    )
    st.caption(
        EXPLAIN + " A line dropping by orders of magnitude towards layer 0 is vanishing gradients; one climbing "
        "towards layer 0 is exploding. Crosses at the bottom are exactly zero."
    )
    steps = sorted(int(s) for s in layers["step"].unique())
    step = controls.step_slider("step", steps, "view.grad.step", default="first")
    chart = charts.gradient_flow_chart(layers, run_ids, step=step, depth=ctx.depth, metric=metric)
    export.show_chart(chart, "chart_gradient_flow", name=f"gradient-flow-{metric}-step{step}", width="stretch")
    layer = controls.choice(
        "gradient norm over training, layer",
        sorted(int(x) for x in layers["layer"].unique()),
        "view.grad.layer",
        default=0,
    )
    over = charts.layer_metric_over_steps_chart(layers, run_ids, metric=metric, layer=layer)
    export.show_chart(over, "chart_grad_over_steps", width="stretch", downloads=False)
    st.subheader("Gradient histograms")
    histogram_section(ctx, "grad", "view.grad_hist")


VIEW = View("Gradients", render, order=30)
