"""The dashboard in a real Chromium: choose three schemes, train, check charts, tables and a download.

Screenshots of each visited tab go to ``test-output/browser/`` (look at them after a change).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

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

from dashboard.charts import PALETTE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KEPT_RUNS = ["zeros@tanh", "xavier_uniform@tanh", "he_normal@tanh"]  # default runs 1, 4 and 5


def assert_drawn_in_run_colours(chart, name: str, output_dir: Path) -> None:
    png = chart.screenshot()
    (output_dir / f"{name}-element.png").write_bytes(png)
    assert non_background_fraction(png) > 0.01, f"the {name} chart looks blank"
    for i, run in enumerate(KEPT_RUNS):
        assert pixels_near(png, PALETTE[i]) > 30, f"no pixels of {run}'s colour {PALETTE[i]} in the {name} chart"


def open_tab(page, title: str) -> None:
    page.get_by_role("tab", name=title).click()
    wait_idle(page)
    no_exception(page, f"on the {title} tab")


def test_three_schemes_train_and_every_result_renders(page, streamlit_url, output_dir):
    page.goto(streamlit_url, wait_until="domcontentloaded")
    wait_idle(page)
    # choose three schemes: drop small_normal (slot 1) and large_normal (slot 2) from the defaults
    for slot in (1, 2):
        button = page.locator(f".st-key-remove_run{slot} button:visible")
        expect(button).to_have_count(1, timeout=30_000)  # not while a rerun shows stale copies
        button.click()
        wait_idle(page)
        expect(page.locator(f".st-key-remove_run{slot}")).to_have_count(0, timeout=30_000)
    sidebar = page.locator("[data-testid='stSidebar']")
    assert sidebar.get_by_text("Run 4").count() == 0
    # the training length, snapshots and the Advanced expander (evaluation cadence, bias)
    expect(sidebar.locator(".st-key-cfg-length input")).to_have_value("5")
    expect(sidebar.get_by_role("radio", name="epochs")).to_be_checked()
    expect(sidebar.locator(".st-key-cfg-snapshots input")).to_have_value("10")
    sidebar.get_by_text("Advanced", exact=True).click()
    expect(sidebar.locator(".st-key-cfg-eval_every input")).to_be_visible()
    sidebar.locator(".st-key-cfg-length").scroll_into_view_if_needed()
    page.screenshot(path=str(output_dir / "sidebar-form.png"))
    page.locator(".st-key-train button:visible").click()
    outcome = page.locator("[data-testid='stAlertContentSuccess'], [data-testid='stAlertContentError']")
    try:
        outcome.first.wait_for(timeout=TRAIN_TIMEOUT_MS)
    finally:
        page.screenshot(path=str(output_dir / "after-train.png"))
    wait_idle(page)
    errors = page.locator("[data-testid='stAlertContentError']")
    assert errors.count() == 0, f"training failed: {errors.first.inner_text()}"
    expect(page.locator("[data-testid='stAlertContentSuccess']")).to_contain_text("Trained 3 runs")
    assert "job=" in page.url and page.url.count("run=") == 3  # the setup is mirrored in the URL

    loss = drawn_chart(page, "chart_loss")
    assert_drawn_in_run_colours(loss, "loss", output_dir)
    full_page_screenshot(page, output_dir / "dashboard-loss.png")

    with page.expect_download() as download_info:
        page.locator(".st-key-dl_summary button:visible").click()
    download = download_info.value
    assert download.suggested_filename == "initlab-summary.csv"
    csv_text = Path(download.path()).read_text()
    assert csv_text.splitlines()[0].startswith("run,status,final train loss")
    for run in KEPT_RUNS:
        assert run in csv_text

    open_tab(page, "Weights")
    hist = drawn_chart(page, "chart_view_weights")
    assert_drawn_in_run_colours(hist, "weight-histograms", output_dir)
    full_page_screenshot(page, output_dir / "dashboard-weights.png")
    # the step slider spans training: from initialization (step 0) to the last snapshot
    thumb = page.locator(".st-key-view-weights-step [data-testid='stSliderThumbValue']")
    expect(thumb).to_have_text("0")
    at_init = hist.screenshot()
    page.locator(".st-key-view-weights-step input[type='range']").focus()
    page.keyboard.press("End")
    wait_idle(page)
    expect(thumb).not_to_have_text("0")
    last_step = int(thumb.inner_text())
    assert last_step > 0
    hist = drawn_chart(page, "chart_view_weights")
    at_end = hist.screenshot()
    assert at_end != at_init, "the weight histograms at the last snapshot look like those at initialization"
    assert_drawn_in_run_colours(hist, "weight-histograms-end", output_dir)
    full_page_screenshot(page, output_dir / "dashboard-weights-end.png")
    page.locator(".st-key-view-weights-step input[type='range']").focus()
    page.keyboard.press("Home")
    wait_idle(page)
    expect(thumb).to_have_text("0")
    job_before = parse_qs(urlsplit(page.url).query)["job"]
    page.locator("[class*='st-key-view-weights-layout'] button", has_text="Small multiples").click()
    wait_idle(page)
    grid = drawn_chart(page, "chart_view_weights")
    assert_drawn_in_run_colours(grid, "weight-histograms-grid", output_dir)
    assert parse_qs(urlsplit(page.url).query)["job"] == job_before  # a view change never retrains
    full_page_screenshot(page, output_dir / "dashboard-weights-grid.png")

    open_tab(page, "Gradients")
    flow = drawn_chart(page, "chart_gradient_flow")
    assert non_background_fraction(flow.screenshot()) > 0.01
    full_page_screenshot(page, output_dir / "dashboard-gradients.png")

    open_tab(page, "Activations")
    drawn_chart(page, "chart_act_std")
    full_page_screenshot(page, output_dir / "dashboard-activations.png")

    open_tab(page, "Diagnosis")
    table = page.locator("[data-testid='stTable']").first
    table.wait_for(timeout=30_000)
    text = table.inner_text()
    for run in KEPT_RUNS:
        assert run in text, f"{run} missing from the diagnosis table"
    assert "Symmetry not broken" in text  # the zero-init run's verdict
    full_page_screenshot(page, output_dir / "dashboard-diagnosis.png")

    open_tab(page, "Data")
    page.locator("[data-testid='stImage']").first.wait_for(timeout=30_000)
    full_page_screenshot(page, output_dir / "dashboard-data.png")

    open_tab(page, "Plugins")
    page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=30_000)
    full_page_screenshot(page, output_dir / "dashboard-plugins.png")

    assert page.locator("[data-testid='stException']").count() == 0
