"""The reproductions: every preset trained through the engine, its claim checked on the measured numbers.

Each preset test asserts (1) every outcome of the preset's own check function (the same functions drive
the dashboard's badge), (2) a few of the same facts read straight from the result tables, so that a
check function reading the wrong column, layer or step would be caught, and (3) the engine's diagnosis.
The thresholds and their calibration (seeds 0-4, measured ranges, margins) are documented next to each
constant in ``core/presets.py``; ``bench/calibrate_presets.py`` re-measures them.
"""

from __future__ import annotations

import copy
import math
from functools import cache

import pandas as pd
import pytest

from core import presets as P
from core.errors import ConfigError, UnknownNameError
from core.experiment import ExperimentConfig
from core.registry import get_registry
from core.results import ExperimentResult
from core.training import train

LN10 = math.log(10)
CHART_KINDS = {"loss", "gradient_flow", "activation_std", "saturation", "layer_metric"}
VERDICTS = {
    "healthy",
    "symmetry_not_broken",
    "vanishing_gradients",
    "exploding_gradients",
    "diverged",
    "saturated",
    "dead_units",
    "failed",
}


@cache
def trained(slug: str, variant: str | None = None, seed: int | None = None) -> ExperimentResult:
    """Train a preset once per test session (several tests read the same result)."""
    overrides = {} if seed is None else {"seed": seed}
    return train(P.get_preset(slug).config(variant, **overrides), threads=1)


def assert_claim(slug: str, result: ExperimentResult, variant: str | None = None) -> list[P.CheckOutcome]:
    outcomes = P.get_preset(slug).check(result, variant)
    failed = [o for o in outcomes if not o.passed]
    report = "\n".join(f"  {o.run}: {o.name} = {o.value_text()}, expected {o.threshold}" for o in failed)
    assert not failed, f"preset {slug} ({variant or 'as shipped'}, seed {result.config.seed}) failed:\n{report}"
    return outcomes


def rows(result: ExperimentResult, index: int, step: int | None = 0) -> pd.DataFrame:
    """Layers rows of run ``index`` at ``step`` (None: the final snapshot), read directly from the table."""
    layers = result.layers
    run = layers[layers["run"] == result.runs[index].id]
    step = int(run["step"].max()) if step is None else step
    return run[run["step"] == step].set_index("layer").sort_index()


def outcome(outcomes: list[P.CheckOutcome], run: str, name_start: str) -> P.CheckOutcome:
    matches = [o for o in outcomes if o.run == run and o.name.startswith(name_start)]
    assert len(matches) == 1, f"expected one outcome {name_start!r} for {run!r}, got {matches}"
    return matches[0]


def verdicts(result: ExperimentResult) -> list[str]:
    return [r.diagnosis["verdict"] for r in result.runs]


# -- the presets as data -------------------------------------------------------------------------------


def test_every_toml_in_the_folder_is_a_preset_and_every_preset_has_its_toml():
    files = {p.name for p in P.PRESET_DIR.glob("*.toml")}
    assert files == {p.config_file for p in P.all_presets()}
    assert len(P.all_presets()) >= 7


@pytest.mark.parametrize("preset", P.all_presets(), ids=lambda p: p.slug)
def test_preset_config_loads_validates_and_round_trips(preset):
    config = ExperimentConfig.load(preset.path)
    assert config.name.strip() and config.description.strip()
    validated = config.validated(get_registry())
    assert validated.steps is not None, "presets train an exact number of steps"
    assert ExperimentConfig.from_dict(validated.to_dict()) == validated
    for variant in preset.variants:
        changed = preset.config(variant.slug).validated(get_registry())
        for key, value in variant.overrides.items():
            assert getattr(changed, key) == value


@pytest.mark.parametrize("preset", P.all_presets(), ids=lambda p: p.slug)
def test_preset_record_is_complete(preset):
    assert preset.slug == preset.path.stem
    assert preset.title and preset.where
    assert "\n" not in preset.claim and len(preset.claim) < 200
    assert preset.explanation.count(". ") >= 2, "a few sentences for students"
    assert preset.charts and all(c.kind in CHART_KINDS for c in preset.charts)
    assert len({v.slug for v in preset.variants}) == len(preset.variants)


def test_slugs_are_unique_and_unknown_names_get_suggestions():
    slugs = [p.slug for p in P.all_presets()]
    assert len(set(slugs)) == len(slugs)
    with pytest.raises(UnknownNameError, match="he2015_fig3"):
        P.get_preset("he2015_fig")
    with pytest.raises(ConfigError, match="variants: adam"):
        P.get_preset("he2015_fig3").config("rmsprop")
    with pytest.raises(ConfigError, match="variants: none"):
        P.get_preset("selu_lecun").check(None, "adam")


def test_config_overrides_apply_after_the_variant():
    config = P.get_preset("he2015_fig3").config("adam", seed=7)
    assert (config.optimizer, config.lr, config.seed) == ("adam", 0.0003, 7)
    assert P.get_preset("he2015_fig3").config().optimizer == "sgd"


# -- the check helpers -------------------------------------------------------------------------------


def test_compare_and_within_fail_on_missing_or_nan_values():
    assert P.compare("x", 1.0, "≤", 1.0).passed
    assert not P.compare("x", 1.0, "<", 1.0).passed
    assert not P.compare("x", math.nan, "≥", 0.0).passed
    assert not P.compare("x", None, "≥", 0.0).passed
    assert math.isnan(P.compare("x", math.nan, "≥", 0.0).value)  # shown as measured ("nan"), and failed
    assert P.compare("x", None, "≥", 0.0).value_text() == "-"
    assert P.within("x", 0.25, 0.25, 4).passed and not P.within("x", 4.01, 0.25, 4).passed
    assert not P.within("x", math.inf, 0.25, 4).passed
    assert P.compare("x", 2.0, "≥", 1.5, note="why").threshold == "≥ 1.5 (why)"


def test_checks_fail_when_the_measurement_contradicts_the_claim():
    """The checks are not vacuous: edit one number of a real result and the matching check fails."""
    result = trained("zero_constant")
    broken = copy.copy(result)
    layers = result.layers.copy()
    zeros = result.runs[P.ZERO].id
    mask = (layers["run"] == zeros) & (layers["layer"] == 1) & (layers["step"] == layers["step"].max())
    layers.loc[mask, "weight_std"] = 1e-3
    broken.layers = layers
    outcomes = P.check_zero_constant(broken)
    failed = {o.name for o in outcomes if not o.passed}
    assert failed == {"largest hidden-layer weight std, all snapshots"}
    broken.runs = copy.deepcopy(result.runs)
    broken.runs[P.RANDOM].diagnosis["verdict"] = "dead_units"
    assert not P.get_preset("zero_constant").passed(broken)


def test_checks_of_a_run_without_snapshots_fail_instead_of_raising():
    result = trained("zero_constant")
    empty = copy.copy(result)
    empty.layers = result.layers.iloc[0:0]
    outcomes = P.check_zero_constant(empty)
    by_name = {o.name: o for o in outcomes}
    assert not by_name["largest spread between units of a hidden layer, all snapshots"].passed
    assert all(o.passed for o in outcomes if o.name == "final train loss")


def test_a_result_from_another_config_or_a_cancelled_training_is_not_checked():
    result = trained("zero_constant")
    (other,) = P.get_preset("too_small").check(result)
    assert not other.passed and other.name == "the result is a finished run of preset too_small"
    assert "depth 3 (preset: 8)" in other.value and "runs [" in other.value
    (adam,) = P.get_preset("he2015_fig3").check(trained("he2015_fig3", None, 0), "adam")
    assert not adam.passed and "optimizer 'sgd' (preset: 'adam')" in adam.value
    cancelled = copy.copy(result)
    cancelled.cancelled = True
    assert [o.value for o in P.get_preset("zero_constant").check(cancelled)] == ["training was cancelled"]


# -- 1. zero and constant init ----------------------------------------------------------------------


def test_zero_and_constant_init_never_break_symmetry():
    result = trained("zero_constant")
    outcomes = assert_claim("zero_constant", result)
    depth = result.config.depth
    zeros, constant, rand = (r.id for r in result.runs)
    layers = result.layers
    hidden = layers[layers["layer"] < depth]
    # Zero init: hidden weights and their gradients are exactly 0 at every snapshot.
    assert (hidden.loc[hidden["run"] == zeros, ["weight_std", "grad_norm"]] == 0).all().all()
    # The loss stays at chance: a bias-only model cannot beat the label entropy (ln 10 - 1.3e-4 here).
    last_eval = result.evals[result.evals["run"] == zeros].iloc[-1]
    assert last_eval["train_loss"] >= LN10 - 1e-3
    assert outcome(outcomes, zeros, "final train loss").value == pytest.approx(last_eval["train_loss"], abs=0)
    # Constant init: the units of every hidden layer stay identical at every snapshot.
    assert hidden.loc[hidden["run"] == constant, "unit_spread"].max() < 1e-6
    assert hidden.loc[hidden["run"] == rand, "unit_spread"].min() > 0.1
    assert verdicts(result) == ["symmetry_not_broken", "symmetry_not_broken", "healthy"]


# -- 2. too small ---------------------------------------------------------------------------------------


def test_too_small_weights_vanish_the_gradient_and_stall_the_loss():
    result = trained("too_small")
    outcomes = assert_claim("too_small", result)
    depth = result.config.depth
    for index in (P.SMALL_SIGMOID, P.SMALL_TANH):
        run = result.runs[index].id
        start = rows(result, index, 0)
        ratio = start.at[0, "pre_grad_norm"] / start.at[depth, "pre_grad_norm"]
        assert ratio < 1e-6
        assert outcome(outcomes, run, "gradient at the first layer").value == pytest.approx(ratio, rel=1e-12)
        # The backward signal shrinks at every layer on its way to the input.
        assert start["pre_grad_norm"].is_monotonic_increasing
        assert result.runs[index].final_train_loss >= 0.98 * LN10
    # Sigmoid: the weight gradients themselves fall by >= 10 orders of magnitude toward the input.
    sigmoid = rows(result, P.SMALL_SIGMOID, 0)
    assert sigmoid.at[0, "grad_norm"] < 1e-10 * sigmoid.at[depth, "grad_norm"]
    assert result.runs[P.SMALL_REFERENCE].final_train_loss < 0.25 * LN10
    assert verdicts(result) == ["vanishing_gradients", "vanishing_gradients", "healthy"]


# -- 3. too large -----------------------------------------------------------------------------------------


def test_too_large_weights_saturate_tanh_and_diverge_relu():
    result = trained("too_large")
    outcomes = assert_claim("too_large", result)
    depth = result.config.depth
    tanh1 = rows(result, P.LARGE_TANH, 0)
    saturated = tanh1.loc[tanh1.index < depth, "saturated_fraction"].max()
    assert saturated >= 0.5
    run = result.runs[P.LARGE_TANH].id
    assert outcome(outcomes, run, "largest saturated fraction").value == saturated
    steps = result.steps
    first = steps[(steps["run"] == run) & (steps["step"] == 0)]["train_loss"].item()
    assert first >= 2 * LN10
    relu = result.runs[P.LARGE_RELU]
    assert relu.status == "diverged" and relu.diverged_at_step is not None
    assert relu.final_train_loss > result.config.divergence_threshold or not math.isfinite(relu.final_train_loss)
    tanh3 = rows(result, P.HUGE_TANH, 0)
    assert tanh3.loc[tanh3.index < depth, "saturated_fraction"].min() >= 0.85
    assert verdicts(result)[:2] == ["saturated", "diverged"]
    assert verdicts(result)[2] in {"saturated", "exploding_gradients"}


# -- 4. matched pairs -------------------------------------------------------------------------------------


def test_matched_pairs_keep_the_variance_and_follow_the_theory():
    result = trained("matched_pairs")
    outcomes = assert_claim("matched_pairs", result)
    last = result.config.depth - 1
    for index, low, high in ((P.HE_RELU, 0.25, 4.0), (P.XAVIER_TANH, 0.25, 4.0), (P.XAVIER_RELU, 0.0, 1e-3)):
        start = rows(result, index, 0)
        ratio = start.at[last, "pre_std"] / start.at[0, "pre_std"]
        assert low <= ratio <= high, (result.runs[index].id, ratio)
        assert outcome(outcomes, result.runs[index].id, "pre-activation std").value == pytest.approx(ratio)
    # The theory predicts the collapse itself: Xavier + ReLU is predicted to halve at every layer.
    xavier = rows(result, P.XAVIER_RELU, 0)
    predicted = xavier["predicted_var"]
    # (the quadrature behind E[relu(z)^2] is accurate to ~1e-6 relative per layer: 28 layers, rel 1e-4)
    assert predicted.at[last] / predicted.at[1] == pytest.approx(0.5 ** (last - 1), rel=1e-4)
    measured_error = (xavier.loc[xavier.index <= last, "pre_var"] / predicted.loc[:last]).map(math.log10).abs().max()
    assert measured_error <= 1.0
    assert verdicts(result) == ["healthy", "vanishing_gradients", "healthy"]


# -- 5. He et al. 2015, Fig. 3 ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_he2015_fig3_xavier_stalls_and_he_trains_with_sgd(seed):
    result = trained("he2015_fig3", None, seed)
    assert_claim("he2015_fig3", result)
    xavier, he = result.runs
    evals = result.evals
    he_curve = evals[evals["run"] == he.id]["train_loss"].to_numpy()
    xavier_curve = evals[evals["run"] == xavier.id]["train_loss"].to_numpy()
    assert xavier_curve.min() >= 0.98 * LN10, "Xavier never leaves chance"
    assert he_curve[-1] <= 0.75 * LN10
    assert he.final_train_loss == he_curve[-1]
    start = rows(result, P.FIG3_XAVIER, 0)
    assert start.at[0, "pre_grad_norm"] < 1e-3 * start.at[result.config.depth, "pre_grad_norm"]
    assert verdicts(result) == ["vanishing_gradients", "healthy"]


def test_he2015_fig3_adam_masks_the_stall():
    result = trained("he2015_fig3", "adam")
    assert result.config.optimizer == "adam"
    assert_claim("he2015_fig3", result, "adam")
    sgd = trained("he2015_fig3", None, 0)
    # Same initialization (same seed), so the same step-0 gradients: only the optimizer differs.
    pd.testing.assert_frame_equal(rows(result, P.FIG3_XAVIER, 0), rows(sgd, P.FIG3_XAVIER, 0))
    assert result.runs[P.FIG3_XAVIER].final_train_loss < 0.25 * LN10
    assert verdicts(result) == ["vanishing_gradients", "healthy"]
    # The SGD checks fail on the Adam result: the loss alone no longer shows the bad initialization.
    assert not P.get_preset("he2015_fig3").passed(result)


# -- 6. Glorot & Bengio 2010 ----------------------------------------------------------------------------


def test_glorot2010_top_sigmoid_layer_is_driven_toward_zero():
    result = trained("glorot2010_sigmoid")
    outcomes = assert_claim("glorot2010_sigmoid", result)
    top = result.config.depth - 1
    sigmoid = result.runs[P.GLOROT_SIGMOID].id
    layers = result.layers
    means = layers[(layers["run"] == sigmoid) & (layers["layer"] < result.config.depth)].pivot(
        index="step", columns="layer", values="act_mean"
    )
    assert means.iloc[0].between(0.45, 0.55).all(), "every layer starts near 0.5"
    assert means[top].iloc[-1] < 0.25
    assert (means[[0, 1]].iloc[-1] >= 0.45).all()
    assert means[top].iloc[-1] < means[top].iloc[0] - 0.2, "the top layer moved, not just started low"
    assert (
        outcome(outcomes, sigmoid, f"mean activation of the top hidden layer ({top}), final").value
        == means[top].iloc[-1]
    )
    assert result.runs[P.GLOROT_TANH].final_train_loss < 0.25 * LN10
    assert verdicts(result)[P.GLOROT_SIGMOID] in {"vanishing_gradients", "saturated"}
    assert verdicts(result)[P.GLOROT_TANH] == "healthy"


# -- 7. SELU + LeCun normal -----------------------------------------------------------------------------


def test_selu_self_normalizes_and_relu_collapses():
    result = trained("selu_lecun")
    outcomes = assert_claim("selu_lecun", result)
    last = result.config.depth - 1
    selu = rows(result, P.SELU, 0)
    assert abs(selu.at[last, "act_mean"]) < 0.1
    assert 0.8 <= selu.at[last, "act_std"] ** 2 <= 1.2
    # Not only the last layer: every hidden layer keeps mean ~0 and variance ~1. Across the 30 layers of
    # seeds 0-4 the layer means scatter with a std of 0.03-0.04 (largest |mean| 0.07-0.11) and the
    # variances with a std of 0.03-0.06 (0.87-1.14): bounds at about 5 of those stds.
    hidden = selu[selu.index <= last]
    assert hidden["act_mean"].abs().max() < 0.2
    assert hidden["act_std"].pow(2).between(0.7, 1.3).all()
    relu = rows(result, P.SELU_RELU, 0)
    assert relu.at[last, "act_std"] ** 2 < 1e-3
    variance = outcome(outcomes, result.runs[P.SELU_RELU].id, "activation variance").value
    assert variance == pytest.approx(relu.at[last, "act_std"] ** 2)
    assert verdicts(result) == ["healthy", "vanishing_gradients"]


def test_every_diagnosis_is_a_known_verdict():
    for slug in ("zero_constant", "too_small", "too_large", "glorot2010_sigmoid"):
        assert set(verdicts(trained(slug))) <= VERDICTS
