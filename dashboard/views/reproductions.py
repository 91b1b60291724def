"""Reproductions: the presets of ``core.presets``, one click each, checked by their own inequalities.

The first tab, where a first-time visitor starts. Each preset is a card: its claim, what to look for
and why, a Run button (which loads the preset's config into the sidebar and trains it as the
session's job, so every other tab shows it too), a variant toggle where the preset has variants,
and, once this preset's result is the session's, a PASS/FAIL badge from ``preset.check`` with the
table of checks and the charts its ``ChartRef`` s name. A result of any other experiment is never
checked against a preset: that card says "run this preset to check it".
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.presets import ChartRef, Preset, all_presets
from dashboard import charts, controls, export, preset_runs, state
from dashboard.views import View, ViewContext

TITLE = "Reproductions"
INTRO = (
    "**Start here.** Seven small experiments, each reproducing one thing known about weight "
    "initialization, from *zero init never learns* to He et al.'s 30-layer network. Press **Run** on one: it "
    "trains in the background (about ten seconds or less), then a **PASS/FAIL** badge says whether the claim "
    "held on the numbers just measured, next to the charts that show it. The other tabs show the same "
    "result in full; the sidebar holds its settings, ready for you to change."
)
AS_SHIPPED = "as published"
# Metrics drawn on a log axis in "layer_metric" charts (they span orders of magnitude, or are exactly 0).
LOG_METRICS = {"grad_norm", "pre_grad_norm", "unit_spread", "weight_std", "act_std", "pre_std"}
CHART_HEIGHT = 260
PANEL_AREA = 600  # pixels the panels of a multi-layer chart share inside a card (plus axis and legend)

PILLS = {  # card status -> (label, colour, icon)
    preset_runs.NOT_RUN: ("not run yet", "gray", ":material/radio_button_unchecked:"),
    preset_runs.OTHER_VARIANT: ("not run yet", "gray", ":material/radio_button_unchecked:"),
    preset_runs.RUNNING: ("training…", "blue", ":material/hourglass_top:"),
    preset_runs.CANCELLED: ("cancelled", "orange", ":material/cancel:"),
    preset_runs.FAILED: ("training failed", "red", ":material/error:"),
}


def variant_key(preset: Preset) -> str:
    return f"repro_variant_{preset.slug}"


def _variant_control(preset: Preset) -> str | None:
    """The variant chosen on the card: a toggle for one variant, a segmented choice for several."""
    if not preset.variants:
        return None
    if len(preset.variants) == 1:
        variant = preset.variants[0]
        on = controls.toggle(variant.title, key=variant_key(preset), help=variant.explanation)
        return variant.slug if on else None
    options = [AS_SHIPPED, *(v.slug for v in preset.variants)]
    titles = {AS_SHIPPED: AS_SHIPPED, **{v.slug: v.title for v in preset.variants}}
    chosen = controls.choice("variant", options, variant_key(preset), format_func=titles.get)
    return None if chosen == AS_SHIPPED else chosen


def chart_for(ref: ChartRef, ctx: ViewContext) -> Any:
    """The Altair chart a preset's ``ChartRef`` names, drawn from the session's result."""
    layers = ctx.table("layers")
    run_ids = list(ctx.run_ids)
    if ref.kind == "loss":
        return charts.loss_chart(
            ctx.table("steps"),
            ctx.table("evals"),
            run_ids,
            divergences=ctx.divergences(),
            clip_above=ctx.result.config.divergence_threshold,
            height=CHART_HEIGHT,
        )
    if ref.kind == "gradient_flow":
        metric = ref.metric or "grad_norm"
        return charts.gradient_flow_chart(
            layers, run_ids, step=ref.step, depth=ctx.depth, metric=metric, height=CHART_HEIGHT
        )
    if ref.kind == "activation_std":
        return charts.activation_std_chart(layers, run_ids, step=ref.step, which="pre", height=CHART_HEIGHT)
    if ref.kind == "saturation":
        return charts.saturation_chart(layers, run_ids, step=ref.step)
    if ref.kind == "layer_metric":
        if not ref.metric:
            return charts.placeholder("This chart names no metric to draw.")
        hidden = tuple(range(ctx.depth or 0))
        return charts.layers_over_steps_chart(
            layers,
            run_ids,
            metric=ref.metric,
            layer_ids=ref.layers or hidden,
            log_scale=ref.metric in LOG_METRICS,
            depth=ctx.depth,
            width=PANEL_AREA,
        )
    return charts.placeholder(f"Unknown chart kind {ref.kind!r}.")


def _show_charts(preset: Preset, ctx: ViewContext) -> None:
    """The preset's charts, one per row (two to a row squeezed the plots beside long run legends)."""
    for i, ref in enumerate(preset.charts):
        st.markdown(f"**{ref.title}**")
        chart = chart_for(ref, ctx).properties(title="")  # the heading above says what it shows
        export.show_chart(chart, f"repro_chart_{preset.slug}_{i}", downloads=False)


def _styled(frame: pd.DataFrame) -> Any:
    """The checks table with its result column coloured (st.table renders cells as Markdown, so a
    threshold starting with '>' is escaped, or it would become a quote)."""
    frame = frame.assign(threshold=frame["threshold"].str.replace(r"^>", r"\\>", regex=True))

    def colour(value: str) -> str:
        good = value == preset_runs.PASS_TEXT
        return f"background-color: {'#e3f4e1' if good else '#fbe3e3'}; font-weight: 600"

    return frame.style.map(colour, subset=["result"])


def _results(preset: Preset, card: preset_runs.CardState, ctx: ViewContext) -> None:
    passed, text = preset_runs.badge_text(card.outcomes)
    with st.container(key=f"repro_badge_{preset.slug}"):
        if passed:
            st.success(f"**{text}** on this result: the claim holds.", icon=":material/verified:")
        else:
            st.error(f"**{text}** on this result (see the table below).", icon=":material/gpp_bad:")
    _show_charts(preset, ctx)
    st.markdown("**The checks** (the same inequalities as the test suite):")
    st.table(_styled(preset_runs.outcomes_frame(card.outcomes)), hide_index=True)
    st.caption("The other tabs (Loss & accuracy, Weights, Gradients, Activations, Diagnosis) show this result in full.")


def _status(preset: Preset, card: preset_runs.CardState, ctx: ViewContext) -> None:
    if card.status == preset_runs.CHECKED:
        _results(preset, card, ctx)
    elif card.status == preset_runs.RUNNING:
        st.info("Training… the progress bar is at the top of the page; the badge appears here when it finishes.")
    elif card.status == preset_runs.OTHER_VARIANT:
        ran = preset.variant(card.ran_variant)
        name = ran.title if ran else AS_SHIPPED
        st.info(
            f"The current result is this preset's “{name}” version. Run this preset to check the one selected here."
        )
    elif card.status == preset_runs.CANCELLED:
        st.warning("This run was cancelled before the end, so it is not checked. Run this preset to check it.")
    elif card.status == preset_runs.FAILED:
        st.error(f"Training did not finish: {card.error}")
    else:
        st.caption("Not checked yet: run this preset to check it.")


def _pill(card: preset_runs.CardState) -> None:
    if card.status == preset_runs.CHECKED:
        if card.passed:
            st.badge("PASS", icon=":material/check_circle:", color="green")
        else:
            st.badge("FAIL", icon=":material/cancel:", color="red")
        return
    label, color, icon = PILLS[card.status]
    st.badge(label, icon=icon, color=color)


def _card(number: int, preset: Preset, ctx: ViewContext) -> None:
    with st.container(border=True, key=f"repro_{preset.slug}"):
        header = st.container()
        st.markdown(preset.claim)
        left, middle, right = st.columns([1.1, 2.2, 5], vertical_alignment="center")
        with middle:
            variant = _variant_control(preset)
        card = preset_runs.card_state(preset, variant, ctx.job)
        with left:
            clicked = st.button("Run", key=f"repro_run_{preset.slug}", type="primary", icon=":material/play_arrow:")
        with right:
            st.caption(preset_runs.config_summary(preset.config(variant)))
        with header:
            title, pill = st.columns([5, 1], vertical_alignment="center")
            with title:
                st.subheader(f"{number}. {preset.title}", anchor=False)
            with pill:
                _pill(card)
        chosen = preset.variant(variant)
        if chosen is not None:
            st.caption(f"**{chosen.title}.** {chosen.explanation}")
        active = card.status != preset_runs.NOT_RUN
        with st.expander("What to look for, and why", expanded=active):
            st.markdown(preset.explanation)
            st.markdown(f"**Where to look.** {preset.where}")
        _status(preset, card, ctx)
    if clicked:
        state.request_config(preset.config(variant), train=True)
        st.rerun()


def _current(ctx: ViewContext) -> None:
    """One line on which result the page is checking."""
    if ctx.job is None:
        return
    match = preset_runs.find_preset(ctx.job.config)
    if match is None:
        st.info(
            "The current result is your own experiment from the sidebar, not one of these presets, so no "
            "preset is checked against it. Run a preset to check its claim.",
            icon=":material/info:",
        )
    elif not ctx.job.finished:
        st.markdown(f"Training **{match.title}**; its card below shows the result when it finishes.")
    else:
        card = preset_runs.card_state(match.preset, match.variant, ctx.job)
        verdict = {True: " — **PASS**", False: " — **FAIL**", None: ""}[card.passed]
        st.markdown(f"Current result: **{match.title}**{verdict}; details in its card below.")


def render(ctx: ViewContext) -> None:
    st.markdown(INTRO)
    _current(ctx)
    for number, preset in enumerate(all_presets(), start=1):
        _card(number, preset, ctx)


VIEW = View(TITLE, render, order=5, needs_result=False)
