"""The training panel above the tabs: progress, live loss curves and Cancel while a job runs."""

from __future__ import annotations

import logging

import streamlit as st

from dashboard import charts, export, state
from dashboard.jobs import CANCELLED, DONE, FAILED, Job

log = logging.getLogger(__name__)
POLL_SECONDS = 0.7
LIVE_CHART = "_live_chart"


def live_loss_chart(job: Job, run_ids: list[str]):
    """The loss chart of the rows received so far, rebuilt only when the job's version changed.

    Re-emitting the very same chart object on a poll produces an identical message, which
    Streamlit's message cache sends to the browser as a short reference, not the data again.
    """
    version = job.snapshot().version
    cached = st.session_state.get(LIVE_CHART)
    if cached is not None and cached[0] == (job.id, version):
        return cached[1]
    chart = charts.loss_chart(
        job.live_frame("steps"),
        job.live_frame("evals"),
        run_ids,
        clip_above=job.config.divergence_threshold,
        height=260,
    )
    st.session_state[LIVE_CHART] = ((job.id, version), chart)
    return chart


@st.fragment(run_every=POLL_SECONDS)
def _poll(job_id: str) -> None:
    try:
        _progress(job_id)
    except Exception as exc:
        log.exception("the progress panel failed")
        st.error(f"The progress panel could not be drawn: {type(exc).__name__}: {exc}")


def _progress(job_id: str) -> None:
    job = state.job_store().get(job_id)
    if job is None:
        return
    snap = job.snapshot()
    if snap.finished:
        st.rerun()  # the whole page: the tabs now draw the final result
    run_ids = snap.config.run_ids()
    cancelling = job.cancel_event.is_set()
    text = (
        f"Training {len(run_ids)} runs — step {snap.step:,} of {snap.total_steps:,} (epoch {snap.epoch})"
        if snap.total_steps
        else f"Preparing {len(run_ids)} runs (loading data, initializing)…"
    )
    if cancelling:
        text = "Cancelling after the current step…"
    left, right = st.columns([6, 1], vertical_alignment="bottom")
    with left:
        st.progress(snap.fraction, text=text)
    with right:
        st.button("Cancel", key="cancel_job", on_click=job.cancel, disabled=cancelling, width="stretch")
    if snap.message:
        st.caption(snap.message)
    export.show_chart(live_loss_chart(job, run_ids), "chart_live_loss", width="stretch", downloads=False)


def render(job: Job | None) -> None:
    """Progress while training (a polling fragment), or one line on how the last job ended."""
    if job is None:
        return
    snap = job.snapshot()
    if not snap.finished:
        _poll(job.id)
        return
    seconds = (snap.finished_at or snap.started_at) - snap.started_at
    if snap.status == DONE:
        st.success(f"Trained {len(snap.config.runs)} runs in {seconds:.1f} s.", icon=":material/check_circle:")
    elif snap.status == CANCELLED:
        st.warning(f"Cancelled at step {snap.step:,} of {snap.total_steps:,}; the tabs show the results so far.")
    elif snap.status == FAILED:
        st.error(f"Training did not finish: {snap.error}")
