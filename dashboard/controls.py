"""View controls that keep their value while their tab is hidden.

Streamlit forgets a widget's state when a run does not draw it, and lazy tabs draw only the open
tab; these helpers keep a copy under ``_view_values`` and restore it when the tab comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

STORE = "_view_values"


def _store() -> dict[str, Any]:
    return st.session_state.setdefault(STORE, {})


def remember(key: str) -> None:
    _store()[key] = st.session_state.get(key)


def restore(key: str, default: Any, valid: Callable[[Any], bool] | None = None) -> None:
    """Before drawing widget ``key``: give it its last value (or ``default`` if that is not valid)."""
    if key in st.session_state:
        current = st.session_state[key]
        if valid is None or valid(current):
            return
    value = _store().get(key, default)
    st.session_state[key] = value if (valid is None or valid(value)) else default


def toggle(label: str, key: str, default: bool = False, help: str | None = None) -> bool:
    restore(key, default, lambda v: isinstance(v, bool))
    return st.toggle(label, key=key, on_change=remember, args=(key,), help=help)


def choice(label: str, options: Sequence[Any], key: str, default: Any = None, **kwargs: Any) -> Any:
    """A horizontal segmented choice; always returns one of ``options``."""
    options = list(options)
    fallback = options[0] if default is None else default
    restore(key, fallback, lambda v: v in options)
    value = st.segmented_control(label, options, key=key, on_change=remember, args=(key,), **kwargs)
    return fallback if value is None else value


def step_slider(label: str, steps: Sequence[int], key: str, default: str = "last") -> int | None:
    """A slider over the snapshot steps (initialization = step 0 to the end)."""
    steps = sorted(set(int(s) for s in steps))
    if not steps:
        return None
    if len(steps) == 1:
        st.caption(
            f"{label}: {steps[0]} (the only snapshot; set **snapshots** in the sidebar to record more during training)"
        )
        return steps[0]
    restore(key, steps[-1] if default == "last" else steps[0], lambda v: v in steps)
    return st.select_slider(
        label,
        options=steps,
        key=key,
        on_change=remember,
        args=(key,),
        help=f"{len(steps)} snapshots, from step 0 to step {steps[-1]}; the sidebar's **snapshots** sets how many.",
    )
