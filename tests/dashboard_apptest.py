"""Shared AppTest helpers for the dashboard tests: start the app, train, open a tab."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from dashboard import state

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
SMALL = {  # a quick experiment: two runs, one epoch, a narrow net
    "run": ["zeros@tanh", "xavier_uniform@tanh"],
    "epochs": "1",
    "depth": "2",
    "width": "16",
}


def app(query: dict | None = None) -> AppTest:
    """The app after its first run, with ``query`` as the URL's query string."""
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def job_of(at: AppTest):
    """The session's training job."""
    job = state.job_store().get(at.session_state["job_id"])
    assert job is not None
    return job


def finish(at: AppTest) -> AppTest:
    """Wait for the session's job (what the polling fragment would do), then rerun."""
    assert job_of(at).join(timeout=300), "training did not finish"
    return at.run()


def train(at: AppTest) -> AppTest:
    """Press Train, wait for the worker thread, rerun."""
    at.button(key="train").click().run()
    no_errors(at)
    return finish(at)


def open_tab(at: AppTest, title: str) -> AppTest:
    """Open a tab as a click would. The tabs are bound to ``?tab=`` and AppTest sends the URL again on
    every run (like a reload), so once the app has put a tab in the URL the test sets both."""
    at.query_params["tab"] = title
    at.session_state["tab"] = title
    return at.run()
