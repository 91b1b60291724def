"""Diagnosis: per run, the plain-language verdict with the numbers behind it, and why it happens."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, explanations, summaries
from dashboard.views import View, ViewContext

LEVEL = {"healthy": st.success, "failed": st.error, "diverged": st.error, "exploding_gradients": st.error}


def anchor(key: str) -> str:
    return f"why-{key.replace('_', '-')}"


def render(ctx: ViewContext) -> None:
    runs = ctx.result.runs
    st.table(summaries.diagnosis_frame(runs).set_index("run"))
    for run in runs:
        diag = run.diagnosis if isinstance(run.diagnosis, dict) else {}
        verdict = diag.get("verdict", "failed" if run.status == "failed" else "")
        color = charts.color_of(list(ctx.run_ids), run.id) if run.id in ctx.run_ids else "#888"
        with st.container(border=True):
            st.markdown(
                f"<span style='color:{color};font-size:1.2em'>●</span> **{run.id}** — "
                f"{diag.get('label') or verdict or run.status}",
                unsafe_allow_html=True,
            )
            show = LEVEL.get(verdict, st.warning)
            show(diag.get("message") or run.error or "No diagnosis was produced for this run.")
            findings = summaries.findings_frame(run)
            if not findings.empty:
                st.dataframe(findings, hide_index=True, width="stretch")
            links = [f"[{e.title}](#{anchor(e.key)})" for e in explanations.for_verdict(verdict)]
            if links:
                st.markdown("Read: " + " · ".join(links))
    st.divider()
    st.header("Why initialization matters", anchor="why-initialization-matters")
    for item in explanations.EXPLANATIONS.values():
        st.subheader(item.title, anchor=anchor(item.key))
        st.markdown(item.body)
        st.caption(f"Where to see it: {item.where_to_look}")


VIEW = View("Diagnosis", render, order=50)
