"""Offline export: charts as PNG/SVG (vl-convert, no network), tables as CSV, results as JSON.

Download buttons get *callables*, so a file is only built when someone clicks (Streamlit runs
the callable on demand); nothing is converted on ordinary page runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import altair as alt
import streamlit as st
import vl_convert as vlc

EXPORT_WIDTH = 760  # charts drawn at the container's width get this width in a file


def export_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart's Vega-Lite spec with a fixed width in place of the page's container width."""
    spec = chart.to_dict()
    if spec.get("width") == "container":
        spec["width"] = EXPORT_WIDTH
    spec.setdefault("background", "white")
    return spec


def chart_png(chart: alt.TopLevelMixin, scale: float = 2.0) -> bytes:
    return vlc.vegalite_to_png(export_spec(chart), scale=scale)


def chart_svg(chart: alt.TopLevelMixin) -> str:
    return vlc.vegalite_to_svg(export_spec(chart))


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "chart"


def chart_downloads(chart: alt.TopLevelMixin, name: str, key: str) -> None:
    """Two small buttons under a chart: PNG and SVG, built only when clicked."""
    formats = (("PNG", chart_png, "png", "image/png"), ("SVG", chart_svg, "svg", "image/svg+xml"))
    with st.container(horizontal=True, gap="small"):
        for label, render, ext, mime in formats:
            st.download_button(
                label,
                data=lambda render=render: render(chart),
                file_name=f"{slug(name)}.{ext}",
                mime=mime,
                key=f"{key}_{ext}",
                on_click="ignore",
                icon=":material/download:",
                help=f"download this chart as {'a PNG' if ext == 'png' else 'an SVG'} image",
            )


def show_chart(
    chart: alt.TopLevelMixin, key: str, *, name: str | None = None, width: str = "stretch", downloads: bool = True
) -> None:
    """Draw ``chart`` in a container keyed ``key`` (CSS class ``st-key-<key>``), with PNG/SVG buttons."""
    with st.container(key=key):
        st.altair_chart(chart, width=width)
        if downloads:
            chart_downloads(chart, name or key, f"export_{key}")


def text_download(label: str, make: Callable[[], str | bytes], file_name: str, mime: str, key: str) -> None:
    st.download_button(
        label, data=make, file_name=file_name, mime=mime, key=key, on_click="ignore", icon=":material/download:"
    )
