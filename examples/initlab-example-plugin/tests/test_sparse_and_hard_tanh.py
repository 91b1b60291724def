"""The example plugin's own tests: initlab's conformance kit, plus checks against theory.

Run with ``pytest`` from this folder after ``pip install -e .`` into initlab's environment.
"""

from __future__ import annotations

import importlib.metadata
import math

import pytest
import torch
from initlab_example_plugin import HARD_TANH, HARD_TANH_GAIN, SPARSE, clipped_second_moment

from core import InitContext, load_registry
from core.testing import check_activation, check_initializer

DISTRIBUTION = "initlab-example-plugin"


def _context(tensor: torch.Tensor, nonzero: int = 15, std: float = 1.0, seed: int = 0) -> InitContext:
    return InitContext.for_tensor(
        tensor,
        layer_index=0,
        num_layers=2,
        activation="tanh",
        activation_gain=5.0 / 3.0,
        generator=torch.Generator().manual_seed(seed),
        params={"nonzero": nonzero, "std": std},
    )


# -- the conformance kit ---------------------------------------------------------------------------


@pytest.mark.parametrize("params", [None, {"nonzero": 100, "std": 0.25}, {"nonzero": 5000}])
def test_sparse_passes_the_kit(params):
    report = check_initializer(SPARSE, params, activation="tanh")
    assert "declared variance" in report.checks and "conv-shaped" in report.checks
    # On the kit's 256x784 tensor: min(k, 784)/784 * std^2 (k = 5000 > fan_in: a dense N(0, 1)).
    k, std = {None: (15, 1.0), 100: (100, 0.25), 5000: (784, 1.0)}[(params or {}).get("nonzero")]
    assert report.declared_variance == pytest.approx(k / 784 * std**2)


def test_hard_tanh_passes_the_kit():
    report = check_activation(HARD_TANH)
    assert {"max_derivative", "gain", "saturated mask", "inactive mask"} <= set(report.checks)
    assert report.measured_max_derivative == pytest.approx(1.0)


# -- against theory ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(64, 300), (16, 8, 3, 3)])
def test_sparse_gives_every_unit_exactly_k_inputs(shape):
    weight = torch.empty(shape)
    ctx = _context(weight, nonzero=15)
    SPARSE.fn(weight, ctx)
    per_unit = (weight.reshape(shape[0], -1) != 0).sum(dim=1)
    assert per_unit.tolist() == [15] * shape[0]
    # The non-zero values are N(0, 1): their sample variance over n = 15 * rows values has relative
    # standard error sqrt(2 / (n - 1)) (64 rows: 4.6%; 16 rows: 9.2%); allow 5 standard errors.
    nonzero = weight[weight != 0]
    n = nonzero.numel()
    assert nonzero.var().item() == pytest.approx(1.0, rel=5 * math.sqrt(2 / (n - 1)))


def test_sparse_picks_inputs_uniformly():
    # Over 2000 units with k = 15 of fan_in = 30, each input is chosen with probability 1/2:
    # counts are Binomial(2000, 0.5), mean 1000, std sqrt(500) = 22.4; allow 5 std (112).
    weight = torch.empty(2000, 30)
    SPARSE.fn(weight, _context(weight, nonzero=15, seed=3))
    counts = (weight != 0).sum(dim=0).double()
    assert (counts - 1000).abs().max().item() < 5 * math.sqrt(500)


def test_hard_tanh_gain_keeps_the_second_moment():
    # Quadrature-free check of the closed form: gain^2 * mean(f(z)^2) over n = 2e6 normal samples.
    # f(z)^2 lies in [0, 1], so its variance is at most 1/4 and the mean's std error at most
    # 0.5 / sqrt(n) = 3.5e-4, i.e. 0.07% of E = 0.516; allow 5 of them.
    z = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    second_moment = HARD_TANH.fn(z).pow(2).mean().item()
    assert second_moment == pytest.approx(clipped_second_moment(), abs=5 * 0.5 / math.sqrt(z.numel()))
    assert HARD_TANH_GAIN**2 * second_moment == pytest.approx(1.0, rel=5 * 0.5 / math.sqrt(z.numel()) / 0.516)
    # The same convention gives ReLU torch's sqrt(2): E[relu(z)^2] = 1/2.
    relu_moment = torch.relu(z).pow(2).mean().item()
    assert 1 / math.sqrt(relu_moment) == pytest.approx(torch.nn.init.calculate_gain("relu"), rel=2e-3)


def test_clipped_second_moment_limits():
    # Large limit: nothing is clipped, E[z^2] = 1. Small limit a: almost everything is clipped, E ~ a^2.
    assert clipped_second_moment(12.0) == pytest.approx(1.0, rel=1e-12)
    assert clipped_second_moment(1e-3) == pytest.approx(1e-6, rel=1e-3)


# -- discovered by initlab through the entry point -------------------------------------------------


def test_initlab_finds_the_plugin_through_its_entry_point():
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"{DISTRIBUTION} is not installed: run `pip install -e .` in this folder first")
    registry = load_registry()
    ours = [e for e in registry.errors if e.distribution == DISTRIBUTION]
    assert ours == [], ours
    for item in (registry.initializer("sparse"), registry.activation("hard_tanh")):
        assert (item.provenance.plugin, item.provenance.distribution, item.provenance.version) == (
            "example",
            DISTRIBUTION,
            version,
        )
    check_initializer("sparse", activation="tanh")  # by name, through initlab's registry
    check_activation("hard_tanh")
