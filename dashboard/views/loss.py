"""Loss & accuracy: curves per run (one colour each), the summary table, downloads and the share link."""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from dashboard import charts, controls, export, summaries
from dashboard.query import JOB_KEY
from dashboard.views import View, ViewContext

TABLES = ("steps", "evals", "layers", "histograms")


def share_url(base_url: str, params: list[tuple[str, str]]) -> str:
    """The page address with the setup's query parameters (never the job id: the link is a recipe)."""
    kept = [(k, v) for k, v in params if k != JOB_KEY]
    return f"{base_url.split('?')[0]}?{urlencode(kept, safe='(),=@.')}" if kept else base_url.split("?")[0]


def _share_link() -> None:
    url = st.context.url
    if not url:
        return
    params = [(k, v) for k in st.query_params for v in st.query_params.get_all(k)]
    st.markdown("**Share this setup** — the link fills the sidebar with these settings; press Train to rerun:")
    st.code(share_url(url, params), language=None, wrap_lines=True)


def downloads(ctx: ViewContext) -> None:
    """Results as JSON, each table as CSV, the config as TOML/JSON (what `initlab run --config` reads)."""
    result = ctx.result
    st.subheader("Download")
    cols = st.columns(4)
    with cols[0]:
        export.text_download("Results (JSON)", result.to_json, "initlab-results.json", "application/json", "dl_json")
    with cols[1]:
        export.text_download(
            "Summary (CSV)",
            lambda: summaries.summary_frame(result.runs).to_csv(index=False),
            "initlab-summary.csv",
            "text/csv",
            "dl_summary",
        )
    with cols[2]:
        export.text_download(
            "Config (TOML)", result.config.to_toml, "initlab-config.toml", "application/toml", "dl_toml"
        )
    with cols[3]:
        export.text_download(
            "Config (JSON)", result.config.to_json, "initlab-config.json", "application/json", "dl_cfgjson"
        )
    cols = st.columns(4)
    for col, name in zip(cols, TABLES, strict=True):
        with col:
            export.text_download(
                f"{name} table (CSV)",
                lambda name=name: result.table_csv(name),
                f"initlab-{name}.csv",
                "text/csv",
                f"dl_{name}",
            )
    _share_link()


def render(ctx: ViewContext) -> None:
    result = ctx.result
    run_ids = list(ctx.run_ids)
    for level, message in summaries.status_lines(result.runs):
        (st.error if level == "error" else st.warning)(message)
    log_scale = controls.toggle("log-scale loss", key="view.loss_log", help="plot the loss on a log axis")
    chart = charts.loss_chart(
        ctx.table("steps"),
        ctx.table("evals"),
        run_ids,
        log_scale=log_scale,
        divergences=ctx.divergences(),
        clip_above=result.config.divergence_threshold,
    )
    export.show_chart(chart, "chart_loss", name="loss", width="stretch")
    acc = charts.accuracy_chart(ctx.table("evals"), run_ids)
    export.show_chart(acc, "chart_accuracy", name="accuracy", width="stretch")
    st.subheader("Summary")
    table = summaries.summary_frame(result.runs)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "final train loss": st.column_config.NumberColumn(format="%.4f"),
            "final val loss": st.column_config.NumberColumn(format="%.4f"),
            "val accuracy": st.column_config.NumberColumn(format="percent"),
            "diverged at step": st.column_config.NumberColumn(format="%d"),
        },
    )
    if result.cancelled:
        st.caption("This experiment was cancelled: the numbers are those reached before it stopped.")
    st.caption(f"Trained in {result.elapsed_s:.1f} s.")
    downloads(ctx)


VIEW = View("Loss & accuracy", render, order=10)
