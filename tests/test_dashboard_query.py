"""The URL codec: a config survives encode -> decode, and bad values are reported, not fatal."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qs, urlencode

import pytest

from core.experiment import ExperimentConfig, RunConfig
from core.registry import get_registry
from dashboard import query, state
from dashboard.views.loss import share_url

BASE = ExperimentConfig(runs=(RunConfig("zeros", "tanh"),))


def through_a_url(params: dict) -> dict:
    """What the browser hands back: every value a string, repeated keys as lists."""
    text = urlencode([(k, v) for k, vs in params.items() for v in (vs if isinstance(vs, list) else [vs])])
    return {k: (v if len(v) > 1 or k == query.RUN_KEY else v[0]) for k, v in parse_qs(text).items()}


@pytest.mark.parametrize(
    "config",
    [
        state.DEFAULT_CONFIG,
        ExperimentConfig(
            runs=(
                RunConfig("he_normal", "leaky_relu", {"mode": "fan_out"}, {"negative_slope": 0.2}),
                RunConfig("small_normal", "tanh", {"std": 0.003}),
                RunConfig("small_normal", "tanh", {"std": 0.003}),  # a repeat stays a repeat
            ),
            dataset="synthetic",
            dataset_params={"n_train": 500, "noise": 0.5},
            depth=12,
            width=33,
            optimizer="adam",
            lr=3e-4,
            momentum=0.9,
            batch_size=17,
            epochs=2,
            steps=40,
            seed=123,
            bias_init="constant",
            bias_value=-0.25,
            snapshots=4,
            eval_every=7,
            divergence_threshold=500.0,
            dtype="float64",
        ),
    ],
)
def test_round_trip_through_a_real_query_string(config):
    registry = get_registry()
    decoded, problems = query.decode(through_a_url(query.encode(config)), BASE)
    assert problems == []
    assert decoded.validated(registry).to_dict() == config.validated(registry).to_dict()


@pytest.mark.parametrize(
    "changes",
    [
        {"steps": 500, "snapshots": 4, "eval_every": 25},  # a preset's shape
        {"steps": None, "snapshots": None, "eval_every": None},  # epochs, auto snapshots, once per epoch
        {"steps": 1, "snapshots": 0, "eval_every": 1},  # the smallest allowed values
        {"steps": 1_000_000, "snapshots": 200, "eval_every": 1_000_000},  # the largest
    ],
)
def test_length_snapshots_and_evaluation_round_trip_over_the_dashboards_defaults(changes):
    """Decoded on top of the dashboard's own defaults (10 snapshots), unset fields stay unset."""
    config = replace(state.DEFAULT_CONFIG, **changes)
    decoded, problems = query.decode(through_a_url(query.encode(config)), state.DEFAULT_CONFIG)
    assert problems == []
    assert (decoded.steps, decoded.snapshots, decoded.eval_every) == (
        changes["steps"],
        changes["snapshots"],
        changes["eval_every"],
    )
    assert decoded == config


def test_unset_optional_fields_read_from_auto_none_empty_and_zero_evaluations():
    base = replace(state.DEFAULT_CONFIG, steps=40, eval_every=5)
    assert query.encode(replace(base, snapshots=None))["snapshots"] == "auto"
    for text in ("auto", "AUTO", "none", ""):
        decoded, problems = query.decode({"snapshots": text, "steps": text, "eval_every": text}, base)
        assert problems == [] and (decoded.steps, decoded.snapshots, decoded.eval_every) == (None, None, None)
    decoded, problems = query.decode({"eval_every": "0"}, base)  # the form's "0 = once per epoch"
    assert problems == [] and decoded.eval_every is None
    decoded, problems = query.decode({"snapshots": "lots", "steps": "1.5"}, base)
    assert (decoded.snapshots, decoded.steps) == (10, 40)
    assert problems == [
        "steps='1.5' is not an integer or 'auto'; kept 40",
        "snapshots='lots' is not an integer or 'auto'; kept 10",
    ]
    assert query.decode({"depth": "auto"}, base)[1] == ["depth='auto' is not an integer; kept 5"]


def test_defaults_are_left_out_but_the_main_settings_are_always_there():
    encoded = query.encode(state.DEFAULT_CONFIG)
    for name in query.ALWAYS:
        assert name in encoded
    assert "steps" not in encoded and "dtype" not in encoded and "divergence_threshold" not in encoded
    assert encoded["run"] == [r.compact() for r in state.DEFAULT_CONFIG.runs]


def test_bad_values_are_reported_and_the_base_value_kept():
    decoded, problems = query.decode(
        {"depth": "three", "lr": "inf", "epochs": "2.5", "width": "32", "run": ["he_normal(mode=fan_out@relu"]}, BASE
    )
    assert decoded.depth == BASE.depth and decoded.lr == BASE.lr and decoded.epochs == BASE.epochs
    assert decoded.width == 32
    assert decoded.runs == BASE.runs  # the unreadable run was dropped, so the base runs stay
    assert len(problems) == 4
    assert any(p.startswith("depth='three' is not an integer") for p in problems)
    assert any(p.startswith("lr='inf' is not a finite number") for p in problems)
    assert any("cannot read run" in p for p in problems)


def test_has_config_ignores_unrelated_keys():
    assert not query.has_config({"tab": "Weights", "job": "abc"})
    assert query.has_config({"lr": "0.1"})
    assert query.has_config({"dataset.path": "/data"})


def test_sanitize_drops_what_the_registry_cannot_run():
    registry = get_registry()
    config = ExperimentConfig(
        runs=(RunConfig("nope", "tanh"), RunConfig("small_normal", "tanh", {"std": "-1"}), RunConfig("zeros", "relu"))
    )
    clean, problems = state.sanitize(config, registry)
    assert [r.initializer for r in clean.runs] == ["zeros"]
    assert len(problems) == 2
    assert "run 1 (nope@tanh) was left out" in problems[0]
    assert "run 2" in problems[1] and "std" in problems[1]


def test_share_url_never_carries_the_job():
    url = share_url("http://host:8501/?job=x", [("lr", "0.1"), ("job", "abc"), ("run", "he_normal(mode=fan_out)@relu")])
    assert url == "http://host:8501/?lr=0.1&run=he_normal(mode=fan_out)@relu"
    assert "job" not in url
