"""The Reproductions page in a real Chromium: the first tab lists the presets; Run on one trains it, the
PASS badge appears next to its charts (drawn, by their pixels), and the other tabs show the same result.

Screenshots go to ``test-output/browser/`` (``reproductions-*.png``): look at them after a change.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from streamlit_page import (
    TRAIN_TIMEOUT_MS,
    drawn_chart,
    full_page_screenshot,
    no_exception,
    non_background_fraction,
    pixels_near,
    wait_idle,
)

from core.presets import all_presets, get_preset
from dashboard.charts import PALETTE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PRESET = "zero_constant"  # the quickest preset: three small runs, about a second of training


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
