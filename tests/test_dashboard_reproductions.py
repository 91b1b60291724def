"""The Reproductions page: every preset listed with its claim, Run trains it, the badge comes from the
preset's own checks and only for its own result, the variant toggle changes what trains; plus the
pure helpers behind the page, the multi-layer chart and the Gradients tab's gradient choice.

``run_every`` fragments do not tick under AppTest, so the tests join the job's thread and rerun.
"""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from dashboard_apptest import SMALL, app, finish, no_errors, open_tab
from dashboard_tables import RUNS, layers_table
from streamlit.testing.v1 import AppTest

from core.presets import CheckOutcome, all_presets, get_preset
from dashboard import charts, preset_runs, state
from dashboard.views import ViewContext, reproductions

BADGE_WORDS = ("PASS", "FAIL")


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [a.value for kind in (at.success, at.error, at.info, at.warning) for a in kind]
    return "\n".join(parts)


def badges(at: AppTest) -> list[str]:
    """The PASS/FAIL texts on the page (the pills and the big badge)."""
    found = [a.value for a in (*at.success, *at.error) if a.value.lstrip("*").startswith(BADGE_WORDS)]
    pills = [m.value for m in at.markdown if "-badge[" in m.value]  # st.badge is Markdown: ":green-badge[...]"
    return found + [word for pill in pills for word in BADGE_WORDS if pill.endswith(f" {word}]")]


def job_config(at: AppTest):
    return state.job_store().get(at.session_state["job_id"]).snapshot().config


# -- the page under AppTest -------------------------------------------------------------------------------


def test_the_page_opens_first_and_lists_every_preset_with_its_claim():
    at = app()
    no_errors(at)
    assert at.tabs[0].label == "Reproductions"
    assert at.session_state["tab"] == "Reproductions"  # what a first-time visitor sees
    page = texts(at)
    assert "Start here" in page
    subheaders = [h.value for h in at.subheader]
    for number, preset in enumerate(all_presets(), start=1):
        assert f"{number}. {preset.title}" in subheaders
        assert preset.claim in page
        assert preset.explanation in page  # in the "What to look for, and why" expander
        assert at.button(key=f"repro_run_{preset.slug}").label == "Run"
    assert page.count("Not checked yet") == len(all_presets())
    assert not badges(at)  # nothing has run: no badge anywhere
    # a toggle exactly where a preset has variants (he2015_fig3: Adam)
    toggles = {t.key for t in at.toggle if t.key.startswith("repro_variant_")}
    assert toggles == {reproductions.variant_key(p) for p in all_presets() if p.variants}


def test_run_trains_the_preset_and_shows_its_pass_badge_and_charts():
    preset = get_preset("zero_constant")  # the quickest preset (3 small runs, under a second of training)
    at = app()
    at.button(key="repro_run_zero_constant").click().run()
    no_errors(at)
    config = job_config(at)
    assert preset.mismatch(SimpleNamespace(config=config, cancelled=False)) == ""  # the preset's experiment
    assert at.selectbox(key="run0.initializer").value == "zeros"  # the sidebar holds it too
    assert at.number_input(key="cfg.depth").value == preset.config().depth
    at = finish(at)
    no_errors(at)
    assert at.session_state["tab"] == "Reproductions"  # the page stays open for the badge
    badge = next(a.value for a in at.success if "checks hold" in a.value)
    assert badge.startswith("**PASS — all ") and "checks hold" in badge
    assert "PASS" in badges(at)
    # the table lists every check, each passed, with its run and threshold
    table = at.table[0].value
    assert list(table.columns) == preset_runs.OUTCOME_COLUMNS
    assert len(table) >= 5 and set(table["result"]) == {preset_runs.PASS_TEXT}
    run_ids = [r.label for r in preset.config().runs]
    assert set(table["run"]) == set(run_ids)
    # the preset's charts: its loss curves and the spread between units of layers 0-2 over steps
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert len(specs) == len(preset.charts)
    spread = next(s for s in specs if "facet" in s)
    assert spread["spec"]["layer"][0]["encoding"]["y"]["field"] == "unit_spread"
    assert spread["facet"]["sort"] == ["layer 0", "layer 1", "layer 2"]  # the layers its ChartRef names
    for spec in specs:
        colours = [n["color"]["scale"]["domain"] for n in _spec_nodes(spec, []) if isinstance(n.get("color"), dict)]
        assert colours and all(domain == run_ids for domain in colours)
    # the other tabs show the same result
    job_id = at.session_state["job_id"]
    at = open_tab(at, "Loss & accuracy")
    no_errors(at)
    assert list(at.dataframe[0].value["run"]) == run_ids
    # a reload (a new session from the URL, which Reproductions keeps out of ?tab=) reopens the badge
    reloaded = app({"job": job_id})
    no_errors(reloaded)
    assert reloaded.session_state["tab"] == "Reproductions"
    assert "PASS" in badges(reloaded)


def test_a_result_of_another_config_gets_no_badge():
    """A near miss (the preset's config with fewer steps) and a sidebar experiment are never checked."""
    preset = get_preset("zero_constant")
    at = app()
    state_key = state.PENDING  # what request_config stores
    at.session_state[state_key] = (replace(preset.config(), steps=20), True)
    at = finish(at.run())
    no_errors(at)
    assert job_config(at).steps == 20
    assert not badges(at)
    page = texts(at)
    assert "your own experiment" in page
    assert page.count("Not checked yet") == len(all_presets())
    # and one from the sidebar form
    at = app(SMALL)
    at.button(key="train").click().run()
    at = finish(at)
    at = open_tab(at, "Reproductions")
    no_errors(at)
    assert not badges(at)
    assert "your own experiment" in texts(at)


def test_the_variant_toggle_changes_what_trains(monkeypatch):
    from core import training

    real_train = training.train

    def cancelled_at_once(config, *, cancel, **kwargs):  # keeps the test short: stop after the first step
        cancel.set()
        return real_train(config, cancel=cancel, **kwargs)

    monkeypatch.setattr(training, "train", cancelled_at_once)
    preset = get_preset("he2015_fig3")
    variant = preset.variants[0]
    at = app()
    at.toggle(key=reproductions.variant_key(preset)).set_value(True).run()
    assert variant.explanation in texts(at)  # what the variant changes, said on the card
    at.button(key="repro_run_he2015_fig3").click().run()
    config = job_config(at)
    assert (config.optimizer, config.lr) == (variant.overrides["optimizer"], variant.overrides["lr"])
    expected = preset.config(variant.slug).runs
    assert [(r.initializer, r.activation, r.label) for r in config.runs] == [
        (r.initializer, r.activation, r.label) for r in expected
    ]
    at = finish(at)
    no_errors(at)
    assert any("cancelled before the end" in w.value for w in at.warning)  # a cancelled run is not checked
    assert not badges(at)
    at.toggle(key=reproductions.variant_key(preset)).set_value(False).run()
    assert f"this preset's “{variant.title}” version" in texts(at)
    at.button(key="repro_run_he2015_fig3").click().run()
    config = job_config(at)
    assert (config.optimizer, config.lr) == (preset.config().optimizer, preset.config().lr)
    finish(at)


# -- pure helpers -----------------------------------------------------------------------------------------


def test_find_preset_names_each_preset_and_variant_and_ignores_the_seed():
    for preset in all_presets():
        match = preset_runs.find_preset(preset.config(seed=7))
        assert match is not None and (match.preset.slug, match.variant) == (preset.slug, None)
        for variant in preset.variants:
            match = preset_runs.find_preset(preset.config(variant.slug))
            assert (match.preset.slug, match.variant) == (preset.slug, variant.slug)
            assert variant.title in match.title
    zero = get_preset("zero_constant").config()
    assert preset_runs.find_preset(replace(zero, width=zero.width + 1)) is None
    assert preset_runs.find_preset(replace(zero, runs=zero.runs[:2])) is None
    assert preset_runs.find_preset(None) is None


def _job(config, *, finished=True, result=None, error=None):
    return SimpleNamespace(config=config, finished=finished, result=result, error=error)


def test_card_state_checks_only_this_presets_finished_result():
    preset = get_preset("he2015_fig3")
    other = get_preset("zero_constant")
    config = preset.config()
    assert preset_runs.card_state(preset, None, None).status == preset_runs.NOT_RUN
    assert preset_runs.card_state(preset, None, _job(other.config())).status == preset_runs.NOT_RUN
    assert preset_runs.card_state(preset, None, _job(config, finished=False)).status == preset_runs.RUNNING
    card = preset_runs.card_state(preset, "adam", _job(config, finished=False))
    assert (card.status, card.ran_variant) == (preset_runs.OTHER_VARIANT, None)
    card = preset_runs.card_state(preset, None, _job(config, error="boom"))
    assert (card.status, card.error) == (preset_runs.FAILED, "boom")
    cancelled = SimpleNamespace(config=config, cancelled=True)
    assert preset_runs.card_state(preset, None, _job(config, result=cancelled)).status == preset_runs.CANCELLED
    assert preset_runs.card_state(preset, None, _job(config, finished=False)).passed is None


def test_badge_and_table_from_outcomes():
    good = CheckOutcome("final train loss", 0.1, "≤ 0.5", True, "He")
    bad = CheckOutcome("diagnosis", "healthy", "= vanishing_gradients", False, "Xavier")
    assert preset_runs.badge_text([good, good]) == (True, "PASS — all 2 checks hold")
    assert preset_runs.badge_text([good, bad]) == (False, "FAIL — 1 of 2 checks do not hold")
    assert preset_runs.badge_text([])[0] is False  # nothing checked is not a pass
    table = preset_runs.outcomes_frame([good, bad, CheckOutcome("runs", None, "= x", False)])
    assert table.to_dict("list") == {
        "run": ["He", "Xavier", "all runs"],
        "check": ["final train loss", "diagnosis", "runs"],
        "measured": ["0.1", "healthy", "-"],
        "threshold": ["≤ 0.5", "= vanishing_gradients", "= x"],
        "result": ["pass", "FAIL", "FAIL"],
    }


def test_config_summary_names_runs_network_optimizer_and_length():
    config = get_preset("he2015_fig3").config("adam")
    text = preset_runs.config_summary(config)
    assert text.startswith("2 runs: Xavier; He")
    for part in ("30 hidden layers × 64 units", "Adam, lr 0.0003, batch 64", "600 steps", "digits"):
        assert part in text


# -- charts -------------------------------------------------------------------------------------------------


def full_layers(runs=RUNS, depth: int = 3, steps=(0, 10, 20)) -> pd.DataFrame:
    """The dashboard fixture plus the columns the presets' charts read, with known values."""
    table = layers_table(runs=runs, depth=depth, steps=steps)
    run_index = table["run"].map({r: i for i, r in enumerate(runs)})
    table["pre_grad_norm"] = 10.0 ** (-(depth - table["layer"]) * run_index)  # run 0 flat, others vanish
    table["unit_spread"] = np.where(run_index == 0, 0.0, 0.5 * run_index)  # run 0: exactly symmetric
    table["act_mean"] = 0.5 - 0.01 * table["layer"] * table["step"] * (run_index == 1)
    return table


def _spec_nodes(node, found):
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            _spec_nodes(value, found)
    elif isinstance(node, list):
        for value in node:
            _spec_nodes(value, found)
    return found


def test_layers_over_steps_chart_draws_one_panel_per_layer_in_order():
    layers = full_layers()
    chart = charts.layers_over_steps_chart(layers, RUNS, metric="act_mean", layer_ids=(2, 0, 1))
    spec = chart.to_dict()
    assert spec["facet"]["field"] == "panel"
    assert spec["facet"]["sort"] == ["layer 2", "layer 0", "layer 1"]  # the order asked for
    assert "resolve" not in spec  # the y axis is shared, so the panels compare directly
    data = pd.DataFrame(next(iter(spec["datasets"].values())))
    assert sorted(data["layer"].unique()) == [0, 1, 2]
    merged = data.merge(layers, on=["run", "step", "layer"], suffixes=("", "_table"))
    assert len(merged) == len(RUNS) * 3 * 3  # runs x layers x snapshots, nothing else
    np.testing.assert_array_equal(merged["act_mean"], merged["act_mean_table"])
    colours = [n["color"]["scale"] for n in _spec_nodes(spec, []) if isinstance(n.get("color"), dict)]
    assert colours and all(c == {"domain": RUNS, "range": list(charts.PALETTE[:3])} for c in colours)


def test_layers_over_steps_chart_on_a_log_axis_marks_exact_zeros():
    layers = full_layers()
    chart = charts.layers_over_steps_chart(layers, RUNS, metric="unit_spread", layer_ids=(0, 1), log_scale=True)
    spec = chart.to_dict()
    data = pd.DataFrame(next(iter(spec["datasets"].values())))
    zeros = data[data["value"] == "exactly zero"]
    assert set(zeros["run"]) == {RUNS[0]}  # the run whose spread is exactly 0
    assert (zeros["unit_spread"] > 0).all()  # drawn a decade under the smallest positive value, not lost
    np.testing.assert_allclose(zeros["unit_spread"], data.loc[data["value"] == "measured", "unit_spread"].min() / 10)
    y = next(n["y"] for n in _spec_nodes(spec, []) if isinstance(n.get("y"), dict) and "scale" in n["y"])
    assert y["scale"]["type"] == "log"
    with pytest.raises(ValueError, match="layer_ids"):
        charts.layers_over_steps_chart(layers, RUNS, metric="act_mean", layer_ids=())
    placeholder = charts.layers_over_steps_chart(layers, RUNS, metric="no_such_metric", layer_ids=(0,))
    assert "No no such metric recorded" in json.dumps(placeholder.to_dict())


def test_layers_over_steps_chart_dashes_a_line_that_repeats_an_earlier_run():
    """Two runs with the very same values in a panel (e.g. zeros and a constant, both with spread exactly 0)
    would draw one line over the other: the later one is dashed, so the earlier colour shows through."""
    layers = full_layers()
    same = layers["run"] == RUNS[1]
    layers.loc[same, "unit_spread"] = 0.0  # run 1 now equals run 0 (exactly zero) everywhere ...
    layers.loc[same & (layers["layer"] == 2), "unit_spread"] = 0.3  # ... except in layer 2
    chart = charts.layers_over_steps_chart(layers, RUNS, metric="unit_spread", layer_ids=(0, 1, 2), log_scale=True)
    spec = chart.to_dict()
    data = pd.DataFrame(next(iter(spec["datasets"].values())))
    dashed = data.groupby(["panel", "run"])["repeats_earlier_run"].agg(set).to_dict()
    assert dashed == {
        (panel, run): {run == RUNS[1] and panel != "layer 2"}
        for panel in ("layer 0", "layer 1", "layer 2")
        for run in RUNS
    }
    dash = next(n["strokeDash"] for n in _spec_nodes(spec, []) if isinstance(n.get("strokeDash"), dict))
    assert dash["scale"] == {"domain": [False, True], "range": [[1, 0], [6, 4]]}  # solid, dashed


def test_gradient_flow_chart_draws_the_chosen_gradient():
    layers = full_layers()
    chart = charts.gradient_flow_chart(layers, RUNS, step=0, metric="pre_grad_norm")
    data = pd.DataFrame(next(iter(chart.to_dict()["datasets"].values())))
    expected = layers[layers["step"] == 0].set_index(["run", "layer"])["pre_grad_norm"]
    got = data.set_index(["run", "layer"])["pre_grad_norm"]
    np.testing.assert_allclose(got.sort_index(), expected.sort_index())
    axis = next(n["y"]["axis"] for n in _spec_nodes(chart.to_dict(), []) if isinstance(n.get("y"), dict))
    # run 2 spans 10^-6..1: ticks only at powers of ten, written 1e-6
    assert all(np.isclose(np.log10(v), round(np.log10(v))) for v in axis["values"]) and axis["format"] == "~e"
    with pytest.raises(ValueError, match="metric"):
        charts.gradient_flow_chart(layers, RUNS, metric="act_mean")


def _context(layers: pd.DataFrame, depth: int = 3) -> ViewContext:
    tables = {"layers": layers, "steps": pd.DataFrame(columns=["run", "step", "train_loss"]), "evals": None}
    steps = []
    for i, run in enumerate(RUNS):
        steps += [{"run": run, "step": s, "train_loss": 2.3 / (1 + s * i)} for s in range(0, 21)]
    tables["steps"] = pd.DataFrame(steps)
    result = SimpleNamespace(
        config=SimpleNamespace(depth=depth, divergence_threshold=1e4),
        runs=[SimpleNamespace(id=r, diverged_at_step=None) for r in RUNS],
        table=lambda name: tables[name],
    )
    return ViewContext(registry=None, job=None, result=result, run_ids=tuple(RUNS))


def test_every_chart_a_preset_names_is_drawn_from_the_result():
    ctx = _context(full_layers())
    fields = {"loss": "loss", "gradient_flow": None, "activation_std": "std", "saturation": "fraction"}
    for preset in all_presets():
        for ref in preset.charts:
            spec = reproductions.chart_for(ref, ctx).to_dict()
            rows = sum(len(v) for v in spec.get("datasets", {}).values())
            assert rows > len(RUNS), f"{preset.slug}: the {ref.kind} chart is empty"
            y_fields = {n["y"]["field"] for n in _spec_nodes(spec, []) if isinstance(n.get("y"), dict)}
            expected = fields.get(ref.kind) or ref.metric  # gradient flow and layer metric: the ChartRef's metric
            assert expected in y_fields, (preset.slug, ref.kind, y_fields)
    unknown = reproductions.chart_for(SimpleNamespace(kind="pie", metric=None, step=0, layers=()), ctx)
    assert "Unknown chart kind" in json.dumps(unknown.to_dict())


# -- the Gradients tab ------------------------------------------------------------------------------------


def test_gradients_tab_defaults_to_the_backpropagated_gradient_and_switches():
    at = app(SMALL)
    at.button(key="train").click().run()
    at = open_tab(finish(at), "Gradients")
    no_errors(at)

    def flow_field() -> str:
        spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
        return next(n["y"]["field"] for n in _spec_nodes(spec, []) if isinstance(n.get("y"), dict))

    assert flow_field() == "pre_grad_norm"
    assert "backpropagated gradient" in " ".join(c.value for c in at.caption)
    at.button_group(key="view.grad.metric").set_value("grad_norm").run()
    no_errors(at)
    assert flow_field() == "grad_norm"
