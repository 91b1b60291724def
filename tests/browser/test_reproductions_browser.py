"""The Reproductions page in a real Chromium: the first tab lists the presets; Run on one trains it, the
PASS badge appears next to its charts (drawn, by their pixels), and the other tabs show the same result.

Screenshots go to ``test-output/browser/`` (``reproductions-*.png``): look at them after a change.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from core.presets import all_presets, get_preset
from dashboard.charts import PALETTE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

APP_READY = "[data-testid='stApp'][data-test-connection-state='CONNECTED']"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
PRESET = "zero_constant"  # the quickest preset: three small runs, about a second of training
TRAIN_TIMEOUT_MS = 240_000


def wait_idle(page, timeout: int = 60_000) -> None:
    page.wait_for_selector(APP_READY, timeout=timeout)
    page.wait_for_selector(IDLE, timeout=timeout)
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=timeout)


def drawn_chart(page, key: str):
    """The chart in the container keyed ``key``, once Vega has drawn its marks."""
    chart = page.locator(f".st-key-{key} [data-testid='stVegaLiteChart']").first
    chart.scroll_into_view_if_needed()
    chart.locator("svg.marks").first.wait_for(state="visible", timeout=60_000)
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=60_000)
    page.wait_for_timeout(400)  # Vega's transitions
    return chart


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def non_background_fraction(png: bytes) -> float:
    return float((pixels(png).min(axis=-1) < 235).mean())


def pixels_near(png: bytes, hex_color: str, tolerance: int = 40) -> int:
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


def test_a_preset_runs_end_to_end_and_shows_its_pass_badge(page, streamlit_url, output_dir):
    preset = get_preset(PRESET)
    run_ids = [run.label for run in preset.config().runs]
    page.goto(streamlit_url, wait_until="domcontentloaded")
    wait_idle(page)
    # the first tab, open on first load, lists every preset with its Run button
    expect(page.get_by_role("tab", name="Reproductions")).to_have_attribute("aria-selected", "true")
    main = page.locator("[data-testid='stMain']")
    expect(main).to_contain_text("Start here")
    for number, item in enumerate(all_presets(), start=1):
        expect(page.locator(f".st-key-repro_{item.slug}")).to_contain_text(f"{number}. {item.title}")
        expect(page.locator(f".st-key-repro_run_{item.slug} button")).to_have_count(1)
    no_exception(page, "on first load")
    full_page_screenshot(page, output_dir / "reproductions-first-load.png")

    card = page.locator(f".st-key-repro_{PRESET}")
    card.locator(f".st-key-repro_run_{PRESET} button").click()
    badge = page.locator(f".st-key-repro_badge_{PRESET}")
    try:
        badge.wait_for(timeout=TRAIN_TIMEOUT_MS)
    finally:
        page.screenshot(path=str(output_dir / "reproductions-after-run.png"))
    wait_idle(page)
    no_exception(page, "after the run")
    expect(badge).to_contain_text("PASS — all")
    expect(badge).to_contain_text("checks hold")
    # the checks table: every check passed, each named with its run
    table = card.locator("[data-testid='stTable']")
    table_text = table.inner_text()
    assert "FAIL" not in table_text
    for run in run_ids:
        assert run in table_text
    # the preset's charts are drawn, in the runs' colours
    for i, ref in enumerate(preset.charts):
        chart = drawn_chart(page, f"repro_chart_{PRESET}_{i}")
        png = chart.screenshot()
        (output_dir / f"reproductions-{PRESET}-{ref.kind}-element.png").write_bytes(png)
        assert non_background_fraction(png) > 0.01, f"the {ref.kind} chart looks blank"
        for colour_index, run in enumerate(run_ids):
            assert pixels_near(png, PALETTE[colour_index]) > 30, f"no pixels of {run}'s colour in the {ref.kind} chart"
    # no other card claims this result
    for item in all_presets():
        if item.slug != PRESET:
            expect(page.locator(f".st-key-repro_{item.slug}")).to_contain_text("Not checked yet")
    full_page_screenshot(page, output_dir / "reproductions-after-pass.png")

    # the other tabs show the same result
    page.get_by_role("tab", name="Loss & accuracy").click()
    wait_idle(page)
    loss = drawn_chart(page, "chart_loss")
    assert non_background_fraction(loss.screenshot()) > 0.01
    no_exception(page, "on the Loss & accuracy tab")
