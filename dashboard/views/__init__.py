"""The tabs of the results area: one module per tab, each exposing ``VIEW = View(...)``.

Adding a tab (e.g. the Reproductions page) means adding a module here with a ``VIEW``; the app
discovers it, orders tabs by ``View.order`` and never needs editing. A view receives a
:class:`ViewContext` with the registry, the session's job and its result; it may load a config
into the sidebar with :func:`dashboard.state.request_config` (``train=True`` also starts it).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from core.registry import Registry
from dashboard.jobs import JobSnapshot

log = logging.getLogger(__name__)
TAB_KEY = "tab"
OPEN_RESULTS = "_open_results_tab"


@dataclass(frozen=True)
class ViewContext:
    """Everything a tab draws from. ``result`` is a ``core.results.ExperimentResult`` or None."""

    registry: Registry
    job: JobSnapshot | None
    result: Any = None
    run_ids: tuple[str, ...] = ()

    @property
    def depth(self) -> int | None:
        return None if self.result is None else int(self.result.config.depth)

    def table(self, name: str) -> pd.DataFrame:
        """A result table (``steps``, ``evals``, ``layers``, ``histograms``); empty when absent."""
        if self.result is None:
            return pd.DataFrame()
        return self.result.table(name)

    def divergences(self) -> dict[str, int]:
        if self.result is None:
            return {}
        return {r.id: int(r.diverged_at_step) for r in self.result.runs if r.diverged_at_step is not None}


@dataclass(frozen=True)
class View:
    """A tab: its title, where it sits, and how it draws itself."""

    title: str
    render: Callable[[ViewContext], None]
    order: int = 100
    needs_result: bool = True  # when True, the tab shows a hint until an experiment has finished


def discover() -> list[View]:
    """Every ``VIEW`` of the modules in this package, by ``order`` then title.

    A module that fails to import is logged and skipped (the other tabs still work).
    """
    found = []
    for info in pkgutil.iter_modules(__path__):
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
        except Exception:
            log.exception("dashboard view module %s failed to import", info.name)
            continue
        view = getattr(module, "VIEW", None)
        if isinstance(view, View):
            found.append(view)
    return sorted(found, key=lambda v: (v.order, v.title))


def _draw(view: View, ctx: ViewContext) -> None:
    """Draw one tab; an error becomes a message naming the tab and the cause, never a traceback."""
    if view.needs_result and ctx.result is None:
        if ctx.job is not None and not ctx.job.finished:
            st.info("Training… this tab fills in when the experiment finishes (live loss curves are above).")
        elif ctx.job is not None and ctx.job.error:
            st.info("The last experiment did not produce results; see the message above.")
        else:
            st.info("Choose runs in the sidebar and press **Train** to see this tab.")
        return
    try:
        view.render(ctx)
    except Exception as exc:
        log.exception("the %s tab failed", view.title)
        st.error(f"The {view.title} tab could not be drawn: {type(exc).__name__}: {exc}")


def open_results_tab() -> None:
    """Ask the next :func:`render_tabs` to leave a tab that shows no result (Reproductions, Data,
    Plugins) for the first tab that does, e.g. after Train in the sidebar. A results tab stays open."""
    st.session_state[OPEN_RESULTS] = True


def _switch_to_results(views: list[View]) -> None:
    if not st.session_state.pop(OPEN_RESULTS, False):
        return
    current = st.session_state.get(TAB_KEY) or st.query_params.get(TAB_KEY) or views[0].title
    by_title = {v.title: v for v in views}
    if current in by_title and by_title[current].needs_result:
        return
    first = next((v for v in views if v.needs_result), None)
    if first is not None:
        st.session_state[TAB_KEY] = first.title


def render_tabs(ctx: ViewContext, views: list[View] | None = None) -> None:
    """The tab strip; only the open tab runs (lazy tabs), each inside its own fragment so its view
    controls rerun just that tab. The open tab is kept in the URL (``?tab=...``)."""
    views = discover() if views is None else views
    if not views:
        st.error("No dashboard views could be loaded.")
        return
    _switch_to_results(views)
    containers = st.tabs([v.title for v in views], key=TAB_KEY, bind="query-params")
    for view, container in zip(views, containers, strict=True):
        if container.open is False:
            continue
        with container:
            st.fragment(_draw)(view, ctx)
