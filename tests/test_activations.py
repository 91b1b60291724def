"""Built-in activations: the conformance kit, torch's gains, derivatives and the saturation/dead masks."""

from __future__ import annotations

import math

import pytest
import torch

from core import get_registry
from core.testing import check_activation
from plugins.activations import BUILTIN_ACTIVATIONS

NAMES = [spec.name for spec in BUILTIN_ACTIVATIONS]


@pytest.mark.parametrize("name", NAMES)
def test_every_builtin_passes_the_conformance_kit(name):
    report = check_activation(name)
    assert {"elementwise", "finite", "differentiable", "gain"} <= set(report.checks)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("leaky_relu", {"negative_slope": 0.2}),
        ("leaky_relu", {"negative_slope": 1.0}),
        ("elu", {"alpha": 0.5}),
        ("softplus", {"beta": 5.0}),
        ("softplus", {"beta": 0.1}),
    ],
)
def test_builtins_pass_the_kit_with_non_default_params(name, params):
    check_activation(name, params)


def test_elu_alpha_is_capped_so_max_derivative_stays_one():
    # sup|ELU'| = max(1, alpha): alpha is limited to (0, 1] so the declared max_derivative 1.0 holds.
    check_activation("elu", {"alpha": 1.0})
    with pytest.raises(AssertionError, match=r"elu.alpha: got 2.0; allowed: a number in \[0.01, 1\]"):
        check_activation("elu", {"alpha": 2.0})


@pytest.mark.parametrize(
    ("name", "params", "torch_name", "torch_param"),
    [
        ("identity", {}, "linear", None),
        ("sigmoid", {}, "sigmoid", None),
        ("tanh", {}, "tanh", None),
        ("relu", {}, "relu", None),
        ("leaky_relu", {}, "leaky_relu", 0.01),
        ("leaky_relu", {"negative_slope": 0.2}, "leaky_relu", 0.2),
        ("selu", {}, "selu", None),
    ],
)
def test_gains_equal_torch_calculate_gain(name, params, torch_name, torch_param):
    gain = get_registry().activation(name).resolve_gain(params)
    assert gain == pytest.approx(torch.nn.init.calculate_gain(torch_name, torch_param), rel=1e-12)


def test_sigmoid_max_derivative_is_a_quarter_at_zero():
    spec = get_registry().activation("sigmoid")
    assert spec.max_derivative == 0.25
    # sigma' = sigma (1 - sigma) peaks where sigma = 1/2, i.e. at z = 0: 1/2 * 1/2.
    x = torch.linspace(-10, 10, 200_001, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(spec.fn(x).sum(), x)
    assert float(grad.max()) == pytest.approx(0.25, abs=1e-12)
    assert abs(float(x.detach()[grad.argmax()])) < 1e-3


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        # GELU: f' = Phi(z) + z phi(z) peaks where f'' = phi(z)(2 - z^2) = 0, i.e. z = sqrt(2).
        ("gelu", 0.5 * (1 + math.erf(1.0)) + math.sqrt(2) * math.exp(-1.0) / math.sqrt(2 * math.pi)),
        # SELU: lambda * alpha * e^z for z < 0, whose supremum is the limit at 0-.
        ("selu", 1.0507009873554805 * 1.6732632423543772),
    ],
)
def test_max_derivative_matches_its_closed_form(name, peak):
    assert get_registry().activation(name).max_derivative == pytest.approx(peak, rel=1e-4)


def test_saturation_masks_on_known_inputs():
    registry = get_registry()
    tanh, sigmoid = registry.activation("tanh"), registry.activation("sigmoid")
    z = torch.tensor([0.0, 2.0, -2.0, 3.0, -3.0])  # tanh(2) = 0.964 (not saturated), tanh(3) = 0.995 (saturated)
    assert tanh.saturated(torch.tanh(z)).tolist() == [False, False, False, True, True]
    z = torch.tensor([0.0, 4.0, -4.0, 5.0, -5.0])  # sigmoid(4) = 0.982, sigmoid(5) = 0.9933 > 0.99
    assert sigmoid.saturated(torch.sigmoid(z)).tolist() == [False, False, False, True, True]
    assert tanh.saturated(torch.zeros(2, 3, 4)).shape == (2, 3, 4)


def test_relu_inactive_mask_on_known_inputs():
    relu = get_registry().activation("relu")
    mask = relu.inactive(torch.tensor([[-1.0, 0.0], [1e-6, 3.0]]))
    assert mask.dtype == torch.bool
    assert mask.tolist() == [[True, True], [False, False]]
