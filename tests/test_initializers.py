"""Built-in initializers against their formulas, against torch.nn.init, and against the conformance kit.

Tolerances for statistics (n iid samples of a distribution with variance s2 and kurtosis k):
the sample mean has standard error sqrt(s2 / n); the sample variance sqrt((k - 1) / n) * s2
(normal: k = 3, so s2 * sqrt(2 / n); uniform: k = 9/5, so s2 * sqrt(0.8 / n)). Every check allows
5 standard errors: with a fixed seed the outcome is fixed, and a correct scheme would fail a fresh
seed with probability below 1e-6, while a wrong fan or gain is off by tens of standard errors.
"""

from __future__ import annotations

import math

import pytest
import torch

from core import InitContext, PluginCallError, get_registry, resolve_params
from core.specs import compute_fans
from core.testing import check_initializer
from plugins.initializers import BUILTIN_INITIALIZERS

DENSE = (512, 1024)  # (out, in): fan_in 1024, fan_out 512, n = 524,288
FAN_IN, FAN_OUT = 1024, 512
CONV = (64, 32, 3, 3)  # fan_in 32*9 = 288, fan_out 64*9 = 576
NAMES = [spec.name for spec in BUILTIN_INITIALIZERS]
Z = 5.0


def context(tensor: torch.Tensor, name: str, params: dict | None = None, seed: int = 0, **kw) -> InitContext:
    spec = get_registry().initializer(name)
    kw.setdefault("layer_index", 0)
    kw.setdefault("num_layers", 3)
    return InitContext.for_tensor(
        tensor,
        activation=kw.pop("activation", "relu"),
        activation_gain=kw.pop("activation_gain", math.sqrt(2.0)),
        generator=torch.Generator().manual_seed(seed),
        params=resolve_params(spec.params, params, name),
        **kw,
    )


def init(name: str, shape=DENSE, params: dict | None = None, seed: int = 0, dtype=torch.float32, **kw):
    """Fill a tensor through the registry's guarded call; return (tensor, ctx)."""
    tensor = torch.full(shape, math.nan, dtype=dtype)
    ctx = context(tensor, name, params, seed, **kw)
    registry = get_registry()
    registry.call_initializer(registry.initializer(name), tensor, ctx)
    return tensor, ctx


def assert_moments(w: torch.Tensor, mean: float, var: float, kurtosis: float) -> None:
    x = w.double().flatten()
    n = x.numel()
    mean_tol = Z * math.sqrt(var / n) + 1e-12
    var_tol = Z * var * math.sqrt((kurtosis - 1.0) / n) + 1e-12
    assert abs(float(x.mean()) - mean) <= mean_tol, (float(x.mean()), mean, mean_tol)
    assert abs(float(x.var()) - var) <= var_tol, (float(x.var()), var, var_tol)


NORMAL, UNIFORM = 3.0, 1.8


def _u(lo: float, hi: float) -> tuple:
    return ("uniform", (lo + hi) / 2, (hi - lo) ** 2 / 12, (lo, hi))


def _n(mean: float, var: float) -> tuple:
    return ("normal", mean, var, None)


def _sym(var: float) -> tuple:
    bound = math.sqrt(3 * var)
    return _u(-bound, bound)


XAVIER_VAR = 2.0 / (FAN_IN + FAN_OUT)
# (name, params, distribution, expected mean, expected variance, uniform bounds) — formulas from the papers.
FORMULAS = [
    ("small_normal", {}, *_n(0.0, 0.01**2)),
    ("large_normal", {}, *_n(0.0, 1.0)),
    ("normal", {"mean": 0.5, "std": 0.2}, *_n(0.5, 0.04)),
    ("uniform", {"a": -0.3, "b": 0.1}, *_u(-0.3, 0.1)),
    ("uniform", {}, *_u(-0.05, 0.05)),
    ("xavier_uniform", {"gain": 5 / 3}, *_sym((5 / 3) ** 2 * XAVIER_VAR)),
    ("xavier_normal", {}, *_n(0.0, XAVIER_VAR)),
    ("he_uniform", {}, *_sym(2.0 / FAN_IN)),
    ("he_uniform", {"mode": "fan_out", "negative_slope": 0.2}, *_sym(2.0 / (1 + 0.04) / FAN_OUT)),
    ("he_normal", {}, *_n(0.0, 2.0 / FAN_IN)),
    ("he_normal", {"mode": "fan_out", "negative_slope": 0.5}, *_n(0.0, 2.0 / 1.25 / FAN_OUT)),
    ("lecun_uniform", {}, *_sym(1.0 / FAN_IN)),
    ("lecun_normal", {}, *_n(0.0, 1.0 / FAN_IN)),
    ("pytorch_default", {}, *_u(-1 / math.sqrt(FAN_IN), 1 / math.sqrt(FAN_IN))),
    ("variance_scaling", {"scale": 2.0, "mode": "fan_avg", "distribution": "normal"}, *_n(0.0, 2.0 / 768)),
    ("variance_scaling", {"scale": 0.5, "mode": "fan_out", "distribution": "uniform"}, *_sym(0.5 / FAN_OUT)),
]


@pytest.mark.parametrize(("name", "params", "dist", "mean", "var", "bounds"), FORMULAS)
def test_matches_its_formula(name, params, dist, mean, var, bounds):
    w, ctx = init(name, params=params)
    spec = get_registry().initializer(name)
    assert spec.variance(ctx) == pytest.approx(var, rel=1e-12)
    assert_moments(w, mean, var, NORMAL if dist == "normal" else UNIFORM)
    if bounds is not None:
        lo, hi = bounds
        slack = 1e-6 * max(abs(lo), abs(hi))  # float32 rounding of the bounds
        assert float(w.min()) >= lo - slack and float(w.max()) <= hi + slack
        # P(no sample within eps*(hi-lo) of an end) = (1 - eps)^n = e^-52 for eps = 1e-4: the ends are reached.
        width = hi - lo
        assert float(w.min()) < lo + 1e-4 * width and float(w.max()) > hi - 1e-4 * width


@pytest.mark.parametrize(("name", "params", "value"), [("zeros", {}, 0.0), ("constant", {"value": -0.7}, -0.7)])
def test_zero_variance_schemes_fill_one_value(name, params, value):
    w, ctx = init(name, params=params)
    assert torch.equal(w, torch.full(DENSE, value))
    assert get_registry().initializer(name).variance(ctx) == 0.0


def test_truncated_normal_correction_constant_is_the_std_of_a_normal_truncated_at_two():
    # Var of N(0, 1) truncated to [-c, c] is 1 - 2c*phi(c) / (2*Phi(c) - 1); c = 2.
    phi = math.exp(-2.0) / math.sqrt(2 * math.pi)
    mass = math.erf(2.0 / math.sqrt(2.0))
    assert math.sqrt(1.0 - 4.0 * phi / mass) == pytest.approx(0.87962566103423978, rel=1e-14)


@pytest.mark.parametrize("mode, n", [("fan_in", FAN_IN), ("fan_out", FAN_OUT), ("fan_avg", 768)])
def test_variance_scaling_truncated_normal_has_variance_scale_over_n_and_no_value_beyond_two_stds(mode, n):
    scale = 1.5
    w, ctx = init("variance_scaling", params={"scale": scale, "mode": mode, "distribution": "truncated_normal"})
    target = scale / n
    assert get_registry().initializer("variance_scaling").variance(ctx) == pytest.approx(target, rel=1e-12)
    # Truncation lowers the kurtosis below the normal's 3, so the normal's standard error is an upper bound.
    assert_moments(w, 0.0, target, NORMAL)
    std = math.sqrt(target) / 0.87962566103423978  # Keras: the std before truncation
    assert float(w.abs().max()) <= 2.0 * std * (1 + 1e-6)
    # P(|x| in [1.99, 2] std) for the truncated normal is ~1.1e-3, so ~590 of 524,288 values lie there.
    assert float(w.abs().max()) > 1.99 * std


def _torch_equivalents():
    from torch.nn import init as I

    s = math.sqrt
    return [
        ("zeros", {}, lambda t, g: I.zeros_(t)),
        ("constant", {"value": 0.3}, lambda t, g: I.constant_(t, 0.3)),
        ("small_normal", {}, lambda t, g: I.normal_(t, 0.0, 0.01, generator=g)),
        ("large_normal", {}, lambda t, g: I.normal_(t, 0.0, 1.0, generator=g)),
        ("normal", {"mean": 0.5, "std": 0.2}, lambda t, g: I.normal_(t, 0.5, 0.2, generator=g)),
        ("uniform", {"a": -0.3, "b": 0.1}, lambda t, g: I.uniform_(t, -0.3, 0.1, generator=g)),
        ("xavier_uniform", {"gain": 5 / 3}, lambda t, g: I.xavier_uniform_(t, gain=5 / 3, generator=g)),
        ("xavier_normal", {"gain": 2.0}, lambda t, g: I.xavier_normal_(t, gain=2.0, generator=g)),
        ("he_uniform", {}, lambda t, g: I.kaiming_uniform_(t, nonlinearity="relu", generator=g)),
        (
            "he_uniform",
            {"mode": "fan_out", "negative_slope": 0.2},
            lambda t, g: I.kaiming_uniform_(t, a=0.2, mode="fan_out", generator=g),
        ),
        ("he_normal", {}, lambda t, g: I.kaiming_normal_(t, nonlinearity="relu", generator=g)),
        (
            "he_normal",
            {"mode": "fan_out", "negative_slope": 0.3},
            lambda t, g: I.kaiming_normal_(t, a=0.3, mode="fan_out", nonlinearity="leaky_relu", generator=g),
        ),
        ("lecun_uniform", {}, lambda t, g: I.kaiming_uniform_(t, nonlinearity="linear", generator=g)),
        ("lecun_normal", {}, lambda t, g: I.kaiming_normal_(t, nonlinearity="linear", generator=g)),
        ("orthogonal", {"gain": 1.5}, lambda t, g: I.orthogonal_(t, gain=1.5, generator=g)),
        ("pytorch_default", {}, lambda t, g: I.kaiming_uniform_(t, a=s(5), generator=g)),
        # Variance scaling reproduces He and Xavier exactly for the matching scale and mode.
        (
            "variance_scaling",
            {"scale": 2.0, "mode": "fan_in", "distribution": "normal"},
            lambda t, g: I.kaiming_normal_(t, nonlinearity="relu", generator=g),
        ),
        (
            "variance_scaling",
            {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform"},
            lambda t, g: I.xavier_uniform_(t, generator=g),
        ),
        (
            "variance_scaling",
            {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal"},
            lambda t, g: _keras_truncated(t, g, 1.0 / I._calculate_fan_in_and_fan_out(t)[0]),
        ),
    ]


def _keras_truncated(t: torch.Tensor, g: torch.Generator, variance: float) -> torch.Tensor:
    std = math.sqrt(variance) / 0.87962566103423978
    return torch.nn.init.trunc_normal_(t, 0.0, std, -2 * std, 2 * std, generator=g)


@pytest.mark.parametrize("shape", [(256, 784), (784, 256), CONV, (16, 32, 5, 5)], ids=str)
@pytest.mark.parametrize(
    ("name", "params", "reference"), _torch_equivalents(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_identical_to_torch_nn_init_with_the_same_generator_seed(shape, name, params, reference):
    # Each scheme draws in the same order as its torch.nn.init equivalent, so values are bit-identical,
    # not only equal in distribution. torch computes its own fans from the shape; the initializers use
    # ctx.fan_in/fan_out, so identical conv results also prove the host's fans are torch's.
    ours, _ = init(name, shape=shape, params=params, seed=7)
    theirs = torch.empty(shape)
    reference(theirs, torch.Generator().manual_seed(7))
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("shape", [(5, 3), (64, 32, 3, 3), (8, 4, 2, 3, 5), (1, 1, 1)])
def test_fans_are_torchs(shape):
    assert compute_fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


@pytest.mark.parametrize("module", ["linear", "conv"])
def test_pytorch_default_is_what_nn_linear_and_conv_do(module):
    with torch.random.fork_rng():
        torch.manual_seed(3)  # the global generator seeded 3 draws the same stream as Generator().manual_seed(3)
        layer = torch.nn.Linear(784, 256) if module == "linear" else torch.nn.Conv2d(32, 64, 3)
    ours, _ = init("pytorch_default", shape=tuple(layer.weight.shape), seed=3)
    assert torch.equal(ours, layer.weight.detach())


@pytest.mark.parametrize(
    ("name", "params", "var"),
    [
        ("he_normal", {}, 2.0 / 288),
        ("he_uniform", {"mode": "fan_out"}, 2.0 / 576),
        ("xavier_normal", {}, 2.0 / (288 + 576)),
        ("lecun_uniform", {}, 1.0 / 288),
        ("pytorch_default", {}, 1.0 / (3 * 288)),
        ("variance_scaling", {"mode": "fan_avg"}, 1.0 / 432),
    ],
)
def test_conv_weights_use_fans_times_the_receptive_field(name, params, var):
    w, ctx = init(name, shape=CONV, params=params)
    assert (ctx.fan_in, ctx.fan_out) == (32 * 9, 64 * 9)
    assert get_registry().initializer(name).variance(ctx) == pytest.approx(var, rel=1e-12)
    kurtosis = UNIFORM if "uniform" in name or name == "pytorch_default" else NORMAL
    assert_moments(w, 0.0, var, kurtosis)


@pytest.mark.parametrize("shape", [(256, 784), (784, 256), (200, 200)])
def test_orthogonal_rows_or_columns_are_orthonormal_times_gain(shape):
    gain = 1.5
    w, ctx = init("orthogonal", shape=shape, params={"gain": gain}, dtype=torch.float64)
    rows, cols = shape
    gram = w @ w.T if rows <= cols else w.T @ w
    assert torch.allclose(gram, gain**2 * torch.eye(min(rows, cols), dtype=torch.float64), atol=1e-10)
    # Not iid, but the sum of squares is exact: gain^2 * min(rows, cols) over rows*cols entries.
    declared = get_registry().initializer("orthogonal").variance(ctx)
    assert declared == pytest.approx(gain**2 / max(rows, cols), rel=1e-12)
    assert float((w**2).mean()) == pytest.approx(declared, rel=1e-10)


def test_orthogonal_conv_weights_are_orthonormal_after_flattening():
    w, _ = init("orthogonal", shape=(16, 32, 3, 3), dtype=torch.float64)
    flat = w.reshape(16, -1)
    assert torch.allclose(flat @ flat.T, torch.eye(16, dtype=torch.float64), atol=1e-10)


# -- LSUV ---------------------------------------------------------------------------------------


def _mlp(activation: torch.nn.Module) -> torch.nn.Sequential:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(64, 128), activation, torch.nn.Linear(128, 128), activation, torch.nn.Linear(128, 10)
        )
    with torch.no_grad():
        for m in model:
            if isinstance(m, torch.nn.Linear):
                m.bias.zero_()
    return model


def _lsuv(model: torch.nn.Sequential, batch: torch.Tensor, params: dict | None = None, seed: int = 0) -> None:
    registry = get_registry()
    spec = registry.initializer("lsuv")
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    for index, layer in enumerate(linears):  # the host's order: layer by layer
        ctx = context(layer.weight, "lsuv", params, seed, layer_index=index, num_layers=3, model=model, batch=batch)
        registry.call_initializer(spec, layer.weight, ctx)


def _layer_output_variances(model: torch.nn.Sequential, batch: torch.Tensor) -> list[float]:
    out, x = [], batch
    with torch.no_grad():
        for m in model:
            if isinstance(m, torch.nn.Linear):
                out.append(float((x @ m.weight.T).var()))
            x = m(x)
    return out


@pytest.mark.parametrize("activation", [torch.nn.ReLU(), torch.nn.Tanh()], ids=["relu", "tanh"])
@pytest.mark.parametrize("tolerance", [0.1, 0.01])
def test_lsuv_gives_unit_output_variance_per_layer_on_the_calibration_batch(activation, tolerance):
    # A batch with mean 1 and std 3, so the orthogonal start is far from unit output variance.
    batch = torch.randn(512, 64, generator=torch.Generator().manual_seed(1)) * 3.0 + 1.0
    model = _mlp(activation)
    _lsuv(model, batch, {"tolerance": tolerance})
    variances = _layer_output_variances(model, batch)
    assert all(abs(v - 1.0) < tolerance for v in variances), variances
    # Each layer is the orthogonal matrix of the same generator seed, rescaled by one scalar.
    for index, layer in enumerate(m for m in model if isinstance(m, torch.nn.Linear)):
        ortho, _ = init("orthogonal", shape=tuple(layer.weight.shape), seed=0)
        weight = layer.weight.detach()
        scale = float((weight * ortho).sum() / (ortho * ortho).sum())
        assert torch.allclose(weight, scale * ortho, rtol=1e-5, atol=1e-7), index
        assert scale != pytest.approx(1.0, abs=0.05)


def test_lsuv_is_deterministic_under_a_seed():
    batch = torch.randn(256, 64, generator=torch.Generator().manual_seed(1))
    a, b = _mlp(torch.nn.ReLU()), _mlp(torch.nn.ReLU())
    _lsuv(a, batch)
    _lsuv(b, batch)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def test_lsuv_explains_what_it_needs():
    registry = get_registry()
    spec = registry.initializer("lsuv")
    assert spec.data_dependent and spec.variance is None
    conv = torch.empty(8, 4, 3, 3)
    with pytest.raises(PluginCallError, match="dense"):
        registry.call_initializer(spec, conv, context(conv, "lsuv"))
    dense = torch.empty(8, 4)
    with pytest.raises(PluginCallError, match="model and a calibration batch"):
        registry.call_initializer(spec, dense, context(dense, "lsuv"))


# -- contract and metadata ----------------------------------------------------------------------


def test_uniform_rejects_an_empty_range_with_a_clear_message():
    with pytest.raises(PluginCallError, match=r"a <= b, got a=0.5 and b=-0.5"):
        init("uniform", params={"a": 0.5, "b": -0.5})


def test_all_builtins_register_without_errors_with_complete_metadata():
    registry = get_registry()
    assert not [e for e in registry.errors if e.plugin == "plugins.initializers"]
    assert [n for n in registry.initializers if n in NAMES] == NAMES
    for spec in BUILTIN_INITIALIZERS:
        assert spec.display_name and spec.citation and len(spec.description) > 150, spec.name
        assert any(str(year) in spec.citation for year in range(1990, 2030)), spec.name
        assert spec.data_dependent == (spec.name == "lsuv")
        assert (spec.variance is None) == spec.data_dependent, spec.name
        for activation in spec.recommended_activations:
            registry.activation(activation)  # raises UnknownNameError if not registered


@pytest.mark.parametrize(
    ("name", "claims"),
    [
        ("zeros", ["symmetry"]),
        ("constant", ["symmetry"]),
        ("small_normal", ["vanishing", "sigmoid"]),
        ("large_normal", ["explode", "saturate"]),
        ("xavier_uniform", ["tanh", "sigmoid"]),
        ("he_normal", ["ReLU"]),
    ],
)
def test_descriptions_state_the_seed_claims(name, claims):
    description = get_registry().initializer(name).description
    for claim in claims:
        assert claim in description


@pytest.mark.parametrize("name", NAMES)
def test_every_builtin_passes_the_conformance_kit(name):
    report = check_initializer(name)
    if name != "lsuv":
        assert "declared variance" in report.checks and "conv-shaped" in report.checks


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("variance_scaling", {"scale": 2.0, "mode": "fan_out", "distribution": "uniform"}),
        ("he_normal", {"mode": "fan_out", "negative_slope": 0.2}),
        ("orthogonal", {"gain": 2.0}),
        ("normal", {"mean": -0.3, "std": 0.5}),
        ("lsuv", {"tolerance": 0.01, "max_passes": 3}),
    ],
)
def test_builtins_pass_the_kit_with_non_default_params(name, params):
    check_initializer(name, params, activation="tanh")
