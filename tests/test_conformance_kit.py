"""The conformance kit fails, with a message that names the fault, for deliberately broken plugins."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from core import ActivationSpec, InitializerSpec, Param
from core.testing import check_activation, check_initializer, variance_tolerance


def he_fill(tensor, ctx):
    tensor.normal_(0.0, math.sqrt(2.0 / ctx.fan_in), generator=ctx.generator)


def he_variance(ctx):
    return 2.0 / ctx.fan_in


def initializer(fn=he_fill, variance=he_variance, **kw) -> InitializerSpec:
    kw.setdefault("name", "test_init")
    return InitializerSpec(fn=fn, display_name="Test", description="A test initializer.", variance=variance, **kw)


def activation(fn=torch.tanh, **kw) -> ActivationSpec:
    kw.setdefault("name", "test_act")
    kw.setdefault("max_derivative", 1.0)
    return ActivationSpec(fn=fn, display_name="Test", description="A test activation.", **kw)


# -- a correct plugin passes (so the failures below are not the kit failing everything) ------------


def test_a_correct_initializer_passes_and_reports_what_it_measured():
    report = check_initializer(initializer())
    assert report.declared_variance == pytest.approx(2.0 / 784)
    assert abs(report.measured_variance - report.declared_variance) <= report.tolerance
    # Derived tolerance: 6 standard errors of the variance of 200,704 normal samples, ~1.9% relative.
    assert report.tolerance / report.declared_variance == pytest.approx(6 * math.sqrt(2 / 200_704), rel=0.05)


def test_a_correct_activation_passes():
    report = check_activation(activation(torch.tanh, max_derivative=1.0))
    assert report.measured_max_derivative == pytest.approx(1.0, abs=1e-9)


def test_the_kit_leaves_the_global_random_state_as_it_found_it():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    check_initializer(initializer(), shape=(64, 32), conv_shape=None)
    with pytest.raises(AssertionError):
        check_initializer(initializer(fn=lambda t, ctx: t.normal_(0.0, 0.1)), shape=(64, 32))
    assert torch.equal(torch.rand(3), expected)


# -- broken initializers ------------------------------------------------------------------------


def test_wrong_declared_variance_fails():
    with pytest.raises(AssertionError, match=r"declared variance 0\.00127551 but measured 0\.00255.*2\.0\d*x"):
        check_initializer(initializer(variance=lambda ctx: 1.0 / ctx.fan_in))


def test_a_subtly_wrong_fan_fails():
    # fan_avg instead of fan_in: 784 / 520 = 1.5x, about 27 standard errors on 256x784.
    with pytest.raises(AssertionError, match="declared variance"):
        check_initializer(initializer(variance=lambda ctx: 4.0 / (ctx.fan_in + ctx.fan_out)))


def test_a_fan_taken_from_the_shape_fails_on_conv_weights():
    def shape_fan(tensor, ctx):  # ignores the receptive field: 9x too large for 3x3 kernels
        tensor.normal_(0.0, math.sqrt(2.0 / tensor.shape[1]), generator=ctx.generator)

    with pytest.raises(AssertionError, match=r"shape \(16, 32, 3, 3\).*declared variance"):
        check_initializer(initializer(fn=shape_fan))


@pytest.mark.parametrize(
    ("fn", "which"),
    [
        (lambda t, ctx: t.normal_(0.0, 0.05), "torch"),
        (lambda t, ctx: t.copy_(torch.randn(t.shape, dtype=t.dtype) * 0.05), "torch"),
        (lambda t, ctx: t.copy_(torch.from_numpy(np.random.normal(0.0, 0.05, t.shape)).to(t.dtype)), "numpy"),
        (lambda t, ctx: t.fill_(random.gauss(0.0, 0.05)), "random"),
    ],
    ids=["tensor.normal_", "torch.randn", "numpy", "python random"],
)
def test_global_rng_use_fails(fn, which):
    with pytest.raises(AssertionError, match=f"global random number generator .*{which}.*ctx.generator"):
        check_initializer(initializer(fn=fn, variance=None))


def test_ignoring_the_generator_fails():
    def private_seed(tensor, ctx):
        tensor.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(0))

    with pytest.raises(AssertionError, match=r"identical values, so it ignores ctx\.generator"):
        check_initializer(initializer(fn=private_seed, variance=lambda ctx: 0.0025))


def test_randomness_declared_as_zero_variance_fails():
    with pytest.raises(AssertionError, match="declared deterministic"):
        check_initializer(initializer(variance=lambda ctx: 0.0))


def test_deterministic_by_design_passes_when_declared():
    def identity_like(tensor, ctx):
        tensor.zero_()
        torch.nn.init.eye_(tensor)

    check_initializer(initializer(fn=identity_like, variance=None), deterministic=True, conv_shape=None)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nan_or_inf_output_fails(bad):
    def poisoned(tensor, ctx):
        he_fill(tensor, ctx)
        tensor.view(-1)[17] = bad

    with pytest.raises(AssertionError, match="1 of 200704 values are NaN or Inf"):
        check_initializer(initializer(fn=poisoned))


def test_entries_left_unwritten_fail():
    def half(tensor, ctx):
        tensor[: tensor.shape[0] // 2].normal_(0.0, 0.05, generator=ctx.generator)

    with pytest.raises(AssertionError, match="never writes"):
        check_initializer(initializer(fn=half))


def _flatten_in_place(tensor: torch.Tensor) -> None:
    tensor.resize_(tensor.numel()).zero_()


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda t, ctx: torch.zeros(10, 10), r"returned shape \(10, 10\), expected \(256, 784\)"),
        (lambda t, ctx: torch.zeros(t.shape[::-1]), r"returned shape \(784, 256\)"),
        (lambda t, ctx: _flatten_in_place(t), "changed the tensor's shape"),
        (lambda t, ctx: torch.zeros(t.shape, dtype=torch.float16), "returned dtype torch.float16"),
        (lambda t, ctx: [0.0], "returned a list"),
    ],
    ids=["wrong shape", "transposed", "resized in place", "dtype", "not a tensor"],
)
def test_shape_or_dtype_changes_fail(fn, message):
    with pytest.raises(AssertionError, match=message):
        check_initializer(initializer(fn=fn, variance=None))


def test_an_exception_inside_the_initializer_fails_with_its_message():
    def broken(tensor, ctx):
        raise KeyError("scale")

    with pytest.raises(AssertionError, match="raised KeyError: 'scale'"):
        check_initializer(initializer(fn=broken))


def test_a_broken_data_dependent_initializer_fails_on_the_kits_model():
    def global_lsuv(tensor, ctx):
        x = ctx.layer_input()
        tensor.normal_(0.0, 1.0)  # global RNG
        tensor.div_((x @ tensor.T).std())

    spec = initializer(fn=global_lsuv, variance=None, data_dependent=True)
    with pytest.raises(AssertionError, match=r"on the kit's MLP.*global random number generator"):
        check_initializer(spec, shape=(32, 16))


def test_invalid_registration_and_params_fail():
    with pytest.raises(AssertionError, match="would be rejected at registration"):
        check_initializer(initializer(name="Bad-Name"))
    with pytest.raises(AssertionError, match="invalid parameters"):
        check_initializer(initializer(params=(Param("k", "float", 1.0, min=0.0, max=2.0),)), {"k": 5.0})


def test_unknown_names_fail_with_suggestions():
    with pytest.raises(AssertionError, match="Did you mean 'he_normal'"):
        check_initializer("he_normall")
    with pytest.raises(AssertionError, match="unknown activation"):
        check_activation("tanhh")


def test_variance_tolerance_matches_the_normal_standard_error():
    sample = torch.randn(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3.0
    # 6 * sigma^2 * sqrt(2/n) for a normal sample, plus the 1e-5 relative rounding floor.
    assert variance_tolerance(sample) == pytest.approx(6 * 9.0 * math.sqrt(2 / 200_000) + 9e-5, rel=0.03)


# -- broken activations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "what"),
    [
        (lambda x: torch.softmax(x, dim=-1), "permuting"),
        (lambda x: x - x.mean(), "slice"),
        (lambda x: torch.cumsum(x, dim=-1), "permuting"),
        (lambda x: torch.tanh(x) * x.numel() / 185, "slice"),
        (lambda x: torch.tanh(x + x.flatten()[0]), "permuting"),
    ],
    ids=["softmax", "centering", "cumsum", "size-dependent", "reads another position"],
)
def test_non_elementwise_activation_fails(fn, what):
    with pytest.raises(AssertionError, match=f"is not elementwise: .*{what}"):
        check_activation(activation(fn, max_derivative=None))


@pytest.mark.parametrize(
    ("fn", "declared", "measured"),
    [
        (torch.sigmoid, 1.0, "0.25"),
        (torch.relu, 0.5, "1"),
        (torch.tanh, 0.999, "1"),
        (torch.nn.functional.gelu, 1.2, "1.1289"),
    ],
)
def test_wrong_max_derivative_fails(fn, declared, measured):
    with pytest.raises(AssertionError, match=f"declares max_derivative {declared:g} but sup \\|f'\\| .* is {measured}"):
        check_activation(activation(fn, max_derivative=declared))


def test_wrong_gain_fails():
    with pytest.raises(AssertionError, match=r"declares gain 1 but torch\.nn\.init\.calculate_gain gives 1\.41421"):
        check_activation(activation(torch.relu, name="relu", gain=1.0))
    with pytest.raises(AssertionError, match=r"calculate_gain defines 1\.66667 for this name; declare it"):
        check_activation(activation(torch.tanh, name="tanh", gain=None))
    with pytest.raises(AssertionError, match=r"gain -1\.0 must be positive"):
        check_activation(activation(torch.tanh, gain=lambda params: -1.0))


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda x: x.sum(-1), "not shape-preserving"),
        (lambda x: torch.tanh(x).float(), "changed the dtype"),
        (lambda x: x.tanh_(), "modified its input in place"),
        (lambda x: torch.log(x), "returns NaN/Inf"),
        (torch.exp, r"returns NaN/Inf for torch.float32 input x = 88\.7"),
        (lambda x: torch.from_numpy(np.tanh(x.detach().numpy())), "not connected to autograd"),
    ],
    ids=["reduces", "dtype", "in place", "log", "exp overflows", "numpy"],
)
def test_broken_activation_calls_fail(fn, message):
    with pytest.raises(AssertionError, match=message):
        check_activation(activation(fn, max_derivative=None))


class _WrongBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.tanh(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (1 - torch.tanh(x))  # should be 1 - tanh(x)^2


def test_a_wrong_custom_backward_fails():
    with pytest.raises(AssertionError, match="disagrees with finite differences"):
        check_activation(activation(_WrongBackward.apply, max_derivative=None))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"saturated": lambda post: (post.abs() > 0.99).float()}, r"saturated\(\) must return a bool tensor"),
        ({"saturated": lambda post: (post.abs() > 0.99)[..., :1]}, r"saturated\(\) must return a bool tensor"),
        ({"saturated": lambda post: post.abs() < 0.99}, "marks pre-activation .* as saturated"),
        ({"saturated": lambda post: post.abs() >= 0}, "marks every point"),
    ],
)
def test_wrong_saturation_masks_fail(kw, message):
    with pytest.raises(AssertionError, match=message):
        check_activation(activation(torch.tanh, **kw))


def test_a_wrong_inactive_mask_fails():
    with pytest.raises(AssertionError, match="an inactive unit passes no gradient"):
        check_activation(activation(torch.relu, inactive=lambda pre: pre > 0))
