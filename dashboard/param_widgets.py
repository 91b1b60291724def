"""Widgets generated from a plugin's declared :class:`core.specs.Param` list.

:func:`plan_widget` is the pure part (which widget, with which arguments); :func:`render_param`
draws it. Values live in ``st.session_state`` under the widget key, so a config loaded from a link
or a preset sets the widgets by writing the same keys (:func:`seed_value`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from core.errors import ParamError
from core.specs import Param


@dataclass(frozen=True)
class WidgetPlan:
    """Which Streamlit widget shows a parameter, and its keyword arguments (besides key/value)."""

    widget: str  # number_input | checkbox | selectbox | text_input
    kwargs: dict[str, Any] = field(default_factory=dict)


def _float_step(param: Param) -> float:
    """A step that moves a value by a sensible amount: a tenth of its decade for log-scale params."""
    reference = abs(float(param.default)) if param.default else 0.0
    if param.min is not None and param.max is not None and param.max > param.min and not param.log_scale:
        span = float(param.max) - float(param.min)
        if math.isfinite(span):
            return 10.0 ** math.floor(math.log10(span / 10)) if span > 0 else 0.1
    if reference > 0:
        return 10.0 ** (math.floor(math.log10(reference)) - (1 if param.log_scale else 0))
    return 0.01


def plan_widget(param: Param, label: str | None = None) -> WidgetPlan:
    """The widget for ``param``: numbers get ranged inputs, choices a select box, paths a text box."""
    label = label or param.name.replace("_", " ")
    help_text = " ".join(filter(None, [param.help, f"Allowed: {param.describe_allowed()}."]))
    if param.type == "float":
        kwargs: dict[str, Any] = {"label": label, "step": _float_step(param), "format": "%g", "help": help_text}
        if param.min is not None:
            kwargs["min_value"] = float(param.min)
        if param.max is not None:
            kwargs["max_value"] = float(param.max)
        return WidgetPlan("number_input", kwargs)
    if param.type == "int":
        kwargs = {"label": label, "step": 1, "format": "%d", "help": help_text}
        if param.min is not None:
            kwargs["min_value"] = math.ceil(param.min)
        if param.max is not None:
            kwargs["max_value"] = math.floor(param.max)
        return WidgetPlan("number_input", kwargs)
    if param.type == "bool":
        return WidgetPlan("checkbox", {"label": label, "help": help_text})
    if param.type == "choice":
        return WidgetPlan("selectbox", {"label": label, "options": list(param.choices), "help": help_text})
    if param.type == "path":
        return WidgetPlan(
            "text_input",
            {
                "label": label,
                "placeholder": "/path/to/a/local/folder",
                "help": " ".join(
                    filter(None, [param.help, "A folder on the machine that runs the dashboard (nothing is uploaded)."])
                ),
            },
        )
    return WidgetPlan("text_input", {"label": label, "help": help_text})


def widget_value(param: Param, value: Any) -> Any:
    """``value`` converted to what the widget holds (float for float params, int for int params).

    Raises ParamError when it does not fit the parameter (wrong type, out of range, unknown choice).
    """
    coerced = param.coerce(value, owner="widget")
    if param.type == "float":
        return float(coerced)
    if param.type == "int":
        return int(coerced)
    return coerced


def param_key(prefix: str, param: Param) -> str:
    return f"{prefix}.{param.name}"


def seed_value(key: str, param: Param, value: Any = None, *, overwrite: bool = False) -> None:
    """Put ``value`` (or the default) into session state for the widget ``key`` unless already there.

    Values that do not fit the parameter fall back to its default instead of breaking the widget.
    """
    if not overwrite and key in st.session_state:
        return
    try:
        st.session_state[key] = widget_value(param, param.default if value is None else value)
    except ParamError:
        st.session_state[key] = widget_value(param, param.default)


def render_param(param: Param, key: str, *, label: str | None = None, disabled: bool = False) -> Any:
    """Draw the widget for ``param`` (value from session state, seeded with the default)."""
    seed_value(key, param)
    current = st.session_state[key]
    try:  # a stale value of the wrong type (a plugin changed its declaration) must not break the page
        widget_value(param, current)
    except ParamError:
        seed_value(key, param, overwrite=True)
    plan = plan_widget(param, label)
    draw = getattr(st, plan.widget)
    return draw(key=key, disabled=disabled, **plan.kwargs)


def render_params(params: Sequence[Param], prefix: str, *, disabled: bool = False) -> dict[str, Any]:
    """Draw a widget per parameter; return {name: value}. Two per row keeps the sidebar compact."""
    values: dict[str, Any] = {}
    params = list(params)
    for i in range(0, len(params), 2):
        pair = params[i : i + 2]
        columns = st.columns(len(pair)) if len(pair) > 1 else [st.container()]
        for column, param in zip(columns, pair, strict=True):
            with column:
                values[param.name] = render_param(param, param_key(prefix, param), disabled=disabled)
    return values


def seed_params(params: Sequence[Param], prefix: str, values: Mapping[str, Any] | None, *, overwrite: bool) -> None:
    """Seed every parameter's widget state from ``values`` (defaults for missing ones)."""
    values = values or {}
    for param in params:
        seed_value(param_key(prefix, param), param, values.get(param.name), overwrite=overwrite)


def read_params(params: Sequence[Param], prefix: str) -> dict[str, Any]:
    """The values currently held by the widgets of ``params`` (defaults where none was drawn)."""
    out = {}
    for param in params:
        key = param_key(prefix, param)
        out[param.name] = st.session_state.get(key, param.default)
    return out
