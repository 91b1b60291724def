"""The mean-field variance prediction (core.theory) against closed forms and Monte Carlo."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from core.theory import activation_second_moment, gaussian_expectation, numeric_gain, predicted_pre_variances


@pytest.mark.parametrize("var", [1e-4, 0.3, 1.0, 7.0, 1e4])
def test_closed_forms(var):
    # ReLU: E[relu(z)^2] = var / 2 (half of a symmetric distribution's second moment).
    assert activation_second_moment(F.relu, 0.0, var) == pytest.approx(var / 2, rel=1e-6)
    # Identity with a mean: E[z^2] = var + mean^2.
    assert activation_second_moment(lambda z: z, 0.5, var) == pytest.approx(var + 0.25, rel=1e-9)
    # Odd function: E[tanh(z)] = 0 for a centred z.
    assert gaussian_expectation(torch.tanh, 0.0, var) == pytest.approx(0.0, abs=1e-12)


def test_tanh_against_monte_carlo():
    """Monte Carlo with n = 10^6 fixed-seed draws: tanh(z)^2 lies in [0, 1], so its std is at most 1/2
    and the standard error of the mean at most 5e-4; we allow 5 of them."""
    z = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mc = float(torch.tanh(z).pow(2).mean())
    assert activation_second_moment(torch.tanh, 0.0, 1.0) == pytest.approx(mc, abs=5 * 5e-4)


def test_numeric_gain():
    assert numeric_gain(F.relu) == pytest.approx(math.sqrt(2), rel=1e-6)
    assert numeric_gain(lambda z: z) == pytest.approx(1.0, rel=1e-9)
    assert numeric_gain(lambda z: z * 0.0) == 1.0  # undefined -> documented fallback


def test_recursion_and_undeclared_variance():
    fan_ins = [10, 20, 20, 5]
    # He on ReLU: constant variance; layer 0 = fan_in * Var(W) * E[x^2].
    out = predicted_pre_variances(fan_ins, [2 / f for f in fan_ins], F.relu, 1.5, [0.0] * 4, [0.0] * 4)
    assert out[0] == pytest.approx(10 * 0.2 * 1.5)
    assert out == pytest.approx([3.0] * 4, rel=1e-6)
    # A bias variance adds at each layer.
    out = predicted_pre_variances([4, 4], [0.25, 0.25], lambda z: z, 1.0, [0.0, 0.0], [0.1, 0.1])
    assert out == pytest.approx([1.1, 1.2])
    # No declared variance at layer 1: NaN from there on.
    out = predicted_pre_variances(fan_ins, [0.1, None, 0.1, 0.1], F.relu, 1.0, [0.0] * 4, [0.0] * 4)
    assert not math.isnan(out[0]) and all(math.isnan(v) for v in out[1:])


def test_failing_activation_gives_nan():
    def boom(z: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("no")

    assert math.isnan(activation_second_moment(boom, 0.0, 1.0))


def test_theory_is_withheld_for_non_zero_mean_weights_and_symmetric_units_measure_exactly_zero():
    """The recursion assumes zero-mean weights: constant init (mean 0.1, declared variance 0) must get
    NaN, not a confident 0 next to a measured variance far from it. Its units are bitwise identical, so
    the unit spread is exactly 0. Xavier (zero-mean) keeps its prediction at every layer."""
    from core.experiment import ExperimentConfig, RunConfig
    from core.training import train

    config = ExperimentConfig(
        runs=(RunConfig("constant", "tanh", {"value": 0.1}), RunConfig("xavier_normal", "tanh")),
        depth=3,
        width=16,
        steps=5,
        snapshots=1,
    )
    layers = train(config).layers
    step0 = layers[layers.step == 0]
    constant, xavier = (step0[step0.run == run] for run in config.run_ids())
    assert constant.predicted_var.isna().all()
    assert (constant.pre_var[constant.layer < 3] > 0).all()
    assert xavier.predicted_var.notna().all() and (xavier.predicted_var > 0).all()
    hidden_constant = layers[(layers.run == config.run_ids()[0]) & (layers.layer < 3)]
    assert (hidden_constant.unit_spread == 0).all()
