"""Helpers for driving the Streamlit app in Chromium: waiting, charts by their pixels, screenshots."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

APP_READY = "[data-testid='stApp'][data-test-connection-state='CONNECTED']"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
TRAIN_TIMEOUT_MS = 240_000


def wait_idle(page, timeout: int = 60_000) -> None:
    """Connected, the script not running, and the running indicator gone."""
    page.wait_for_selector(APP_READY, timeout=timeout)
    page.wait_for_selector(IDLE, timeout=timeout)
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=timeout)


def drawn_chart(page, key: str):
    """The chart in the container keyed ``key``, once Vega has drawn its marks (the status widget
    leaves about 0.4 s before a chart draws, so wait for the marks first)."""
    chart = page.locator(f".st-key-{key} [data-testid='stVegaLiteChart']").first
    chart.scroll_into_view_if_needed()
    chart.locator("svg.marks").first.wait_for(state="visible", timeout=60_000)
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=60_000)
    page.wait_for_timeout(400)  # Vega's transitions
    return chart


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def non_background_fraction(png: bytes) -> float:
    """Share of pixels darker than near-white: a blank chart has almost none."""
    return float((pixels(png).min(axis=-1) < 235).mean())


def pixels_near(png: bytes, hex_color: str, tolerance: int = 40) -> int:
    """How many pixels are within ``tolerance`` (per channel) of ``hex_color``."""
    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels(png) - rgb).max(axis=-1) <= tolerance).sum())


def full_page_screenshot(page, path: Path) -> None:
    """Streamlit scrolls inside stMain: grow the viewport to its height first."""
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1440, "height": max(1000, int(height) + 40)})
    page.wait_for_timeout(700)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.wait_for_timeout(300)


def no_exception(page, where: str) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, f"an exception is shown {where}"
