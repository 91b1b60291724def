"""Plugins: every registered initializer, activation and dataset with provenance, and load errors."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.registry import Registry
from dashboard.views import View, ViewContext


def plugin_errors(reg: Registry) -> None:
    """Each plugin failure as a warning with its traceback in an expander."""
    for err in reg.errors:
        where = " ".join(filter(None, [err.distribution or "no distribution", err.version]))
        st.warning(f"Plugin **{err.plugin}** ({where}) — {err.message}")
        if err.traceback:
            with st.expander(f"Traceback of {err.plugin} ({err.stage})", expanded=False):
                st.code(err.traceback, language="text")


def render(ctx: ViewContext) -> None:
    reg = ctx.registry
    items = pd.DataFrame(reg.items())
    counts = items["kind"].value_counts().to_dict() if not items.empty else {}
    st.markdown(
        f"{counts.get('initializer', 0)} initializers, {counts.get('activation', 0)} activations, "
        f"{counts.get('dataset', 0)} datasets registered."
    )
    st.dataframe(items, hide_index=True, width="stretch", height=min(36 * (len(items) + 1) + 4, 720))
    st.subheader("Load errors")
    if reg.errors:
        plugin_errors(reg)
    else:
        st.success("Every plugin loaded without errors.")


VIEW = View("Plugins", render, order=70, needs_result=False)
