"""initlab's dashboard: ``streamlit run dashboard/app.py`` (``make run``).

Thin wiring only: the sidebar builds an ExperimentConfig, ``dashboard.jobs`` trains it in the
background with ``core.training.train``, and the tabs in ``dashboard.views`` chart the result.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:  # streamlit runs this file as a script; make the repo importable if initlab is not installed
    import core  # noqa: F401
except ModuleNotFoundError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import streamlit as st

from dashboard import live, sidebar, state, views
from dashboard.views.plugins import plugin_errors

SIDEBAR_WIDTH = 420  # pixels: room for a run row (initializer, activation, remove)


def _plugin_warning(reg) -> None:
    """Plugin load errors, politely: one warning, details folded away; the rest of the app works."""
    if not reg.errors:
        return
    names = ", ".join(sorted({e.plugin for e in reg.errors}))
    st.warning(
        f"{len(reg.errors)} plugin problem(s) ({names}); everything else works. "
        "Details below and in the **Plugins** tab.",
        icon=":material/extension_off:",
    )
    with st.expander("Plugin errors"):
        plugin_errors(reg)


def main() -> None:
    st.set_page_config(
        page_title="initlab — weight initialization, side by side",
        page_icon="🧪",
        layout="wide",
        initial_sidebar_state=SIDEBAR_WIDTH,
    )
    try:
        reg = state.registry()
    except Exception as exc:  # the registry itself never raises for a plugin; this is a broken install
        st.error(f"The plugin registry could not be loaded: {type(exc).__name__}: {exc}")
        st.stop()
    state.bootstrap(reg)
    st.title("initlab")
    st.caption("See, side by side, what a neural network's weight initialization does to training.")
    _plugin_warning(reg)
    for note in state.notices():
        st.info(note)
    state.notices().clear()
    with st.sidebar:
        sidebar.render(reg)
    job = state.current_job()
    live.render(job)
    snap = job.snapshot() if job is not None else None
    result = snap.result if snap is not None and snap.finished else None
    run_ids = tuple(r.id for r in result.runs) if result is not None else ()
    views.render_tabs(views.ViewContext(registry=reg, job=snap, result=result, run_ids=run_ids))


main()
