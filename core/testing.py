"""The plugin-author conformance kit: call these from your own test suite.

::

    from core.testing import check_activation, check_initializer

    def test_my_initializer():
        check_initializer(MY_SPEC)                   # or a registered name: check_initializer("my_init")
        check_initializer(MY_SPEC, {"scale": 2.0})   # with non-default parameter values

    def test_my_activation():
        check_activation("my_act", {"alpha": 0.5})

Each function runs the same guarded call the host uses, then checks the contract documented in
:mod:`core.hookspecs`. A violation raises ``AssertionError`` whose message says what was wrong and
how to fix it; success returns a small report of what was measured (handy to print). The kit needs
no pytest and leaves the global random state as it found it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from core.errors import ParamError, RegistrationError, UnknownNameError
from core.specs import ActivationSpec, InitContext, InitializerSpec, resolve_params

__all__ = [
    "ActivationReport",
    "InitializerReport",
    "check_activation",
    "check_initializer",
    "variance_tolerance",
]

# torch.nn.init.calculate_gain's names; initlab calls torch's "linear" "identity".
TORCH_GAIN_NAMES: dict[str, str] = {
    "identity": "linear",
    "linear": "linear",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "selu": "selu",
}


# -- reports -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InitializerReport:
    """What :func:`check_initializer` measured on the dense float32 tensor.

    ``declared_variance``/``measured_variance``/``tolerance`` are ``None`` when the
    initializer declares no variance. ``checks`` names every check that passed.
    """

    name: str
    params: Mapping[str, Any]
    shape: tuple[int, ...]
    declared_variance: float | None
    measured_variance: float | None
    tolerance: float | None
    checks: tuple[str, ...]


@dataclass(frozen=True)
class ActivationReport:
    """What :func:`check_activation` measured; ``checks`` names every check that passed."""

    name: str
    params: Mapping[str, Any]
    gain: float | None
    torch_gain: float | None
    declared_max_derivative: float | None
    measured_max_derivative: float
    argmax_derivative: float
    checks: tuple[str, ...]


# -- shared helpers ------------------------------------------------------------------------------


def _fail(message: str) -> AssertionError:
    return AssertionError(message)


def _lookup(spec_or_name: object, kind: str) -> Any:
    """The spec itself, or the registered spec of that name (AssertionError if unknown)."""
    cls = InitializerSpec if kind == "initializer" else ActivationSpec
    if isinstance(spec_or_name, cls):
        return spec_or_name
    if not isinstance(spec_or_name, str):
        raise _fail(f"expected an {cls.__name__} or a registered {kind} name, got {type(spec_or_name).__name__}")
    from core.registry import get_registry

    registry = get_registry(allow_failures=True)
    try:
        return registry.initializer(spec_or_name) if kind == "initializer" else registry.activation(spec_or_name)
    except UnknownNameError as exc:
        failures = "".join(f"\n- plugin {e.plugin}: {e.message}" for e in registry.errors)
        hint = f"\nRecorded plugin failures (one may be yours):{failures}" if failures else ""
        raise _fail(f"{exc}{hint}") from None


def _check_registration(spec: InitializerSpec | ActivationSpec) -> None:
    from core.registry import _validate

    try:
        _validate(spec)
    except RegistrationError as exc:
        raise _fail(f"{spec.kind} {spec.name!r} would be rejected at registration: {exc}") from None


def _resolve(spec: InitializerSpec | ActivationSpec, params: Mapping[str, Any] | None) -> dict[str, Any]:
    try:
        return resolve_params(spec.params, params, spec.name)
    except ParamError as exc:
        raise _fail(f"{spec.kind} {spec.name!r}: invalid parameters for the check: {exc}") from None


def _global_rng_snapshot() -> tuple[Any, ...]:
    import numpy as np

    state = np.random.get_state()
    return torch.get_rng_state(), (state[1].tobytes(), *state[2:]), random.getstate()


@contextmanager
def _preserved_global_rng() -> Iterator[None]:
    """Restore torch's, numpy's and Python's global random state on exit."""
    import numpy as np

    saved = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    try:
        yield
    finally:
        torch.set_rng_state(saved[0])
        np.random.set_state(saved[1])
        random.setstate(saved[2])


def _seed_globals(seed: int) -> None:
    import numpy as np

    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def variance_tolerance(sample: torch.Tensor, z: float = 6.0) -> float:
    """How far a sample's variance may sit from the declared one: ``z`` estimated standard errors.

    For ``n`` iid values the sample variance has standard error ``sqrt((m4 − m2²) / n)``, with
    ``m2``/``m4`` the central second/fourth moments; the kit estimates them from the sample
    itself, so the bound adapts to the distribution's tails (normal: ``σ²·sqrt(2/n)``; uniform:
    ``σ²·sqrt(0.8/n)``). On the default 256×784 tensor (n = 200,704) one standard error of a
    normal scheme is 0.32% of σ², so ``z = 6`` accepts a ±1.9% deviation (±1.2% for uniform):
    a correct scheme fails with probability ~1e-9, while the mistakes that matter (fan_in
    versus fan_avg, a forgotten gain of sqrt(2), the receptive field left out of a conv fan)
    are off by 25% or far more. Schemes that are not iid, such as orthogonal matrices, fix the
    sum of squares exactly, so their measured variance sits much closer than this bound. A
    relative floor of 1e-5 covers float32 rounding, and an absolute 1e-12 lets a zero
    variance be met exactly.
    """
    x = sample.detach().to(torch.float64).flatten()
    d = x - x.mean()
    m2 = float((d * d).mean())
    m4 = float((d**4).mean())
    se = math.sqrt(max(m4 - m2 * m2, 0.0) / x.numel())
    return z * se + 1e-5 * m2 + 1e-12


# -- initializers --------------------------------------------------------------------------------


class _InitializerRunner:
    """Builds contexts the way the host does and calls the initializer with the host's guards."""

    def __init__(self, spec: InitializerSpec, params: dict[str, Any], activation: str, activation_gain: float) -> None:
        self.spec = spec
        self.params = params
        self.activation = activation
        self.activation_gain = activation_gain

    def where(self, shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> str:
        dtype_name = str(dtype).removeprefix("torch.")
        on = "the kit's MLP whose first weight has" if self.spec.data_dependent else "a tensor of"
        return f"initializer {self.spec.name!r} on {on} shape {shape}, {dtype_name} (seed {seed})"

    def context(self, tensor: torch.Tensor, seed: int, **kw: Any) -> InitContext:
        kw.setdefault("layer_index", 0)
        kw.setdefault("num_layers", 3)
        return InitContext.for_tensor(
            tensor,
            activation=self.activation,
            activation_gain=self.activation_gain,
            generator=torch.Generator().manual_seed(seed),
            params=dict(self.params),
            **kw,
        )

    def call(self, tensor: torch.Tensor, ctx: InitContext, where: str) -> None:
        """The host's guarded call (``Registry.call_initializer``), with the kit's messages."""
        shape, dtype = tuple(tensor.shape), tensor.dtype
        try:
            with torch.no_grad():
                result = self.spec.fn(tensor, ctx)
        except Exception as exc:
            raise _fail(f"{where}: raised {type(exc).__name__}: {exc}") from exc
        if result is not None:
            if not isinstance(result, torch.Tensor):
                raise _fail(
                    f"{where}: returned a {type(result).__name__}; fill the tensor in place and return None "
                    "(or return a tensor of the same shape and dtype)"
                )
            if tuple(result.shape) != shape:
                raise _fail(f"{where}: returned shape {tuple(result.shape)}, expected {shape}")
            if result.dtype != dtype:
                raise _fail(f"{where}: returned dtype {result.dtype}, expected {dtype} (the tensor's own dtype)")
            if result is not tensor:
                with torch.no_grad():
                    tensor.copy_(result)
        if tuple(tensor.shape) != shape:
            raise _fail(f"{where}: changed the tensor's shape from {shape} to {tuple(tensor.shape)}")
        bad = int((~torch.isfinite(tensor)).sum())
        if bad:
            raise _fail(
                f"{where}: {bad} of {tensor.numel()} values are NaN or Inf (the kit pre-fills the tensor with "
                "NaN, so entries the initializer never writes show up here too)"
            )

    def fill(self, shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> list[tuple[torch.Tensor, InitContext]]:
        """Initialize a fresh NaN-filled tensor (or, if data-dependent, a small MLP layer by layer)."""
        if self.spec.data_dependent:
            return self._fill_model(shape, dtype, seed)
        tensor = torch.full(shape, math.nan, dtype=dtype)
        ctx = self.context(tensor, seed)
        self.call(tensor, ctx, self.where(shape, dtype, seed))
        return [(tensor, ctx)]

    def _fill_model(
        self, shape: tuple[int, ...], dtype: torch.dtype, seed: int
    ) -> list[tuple[torch.Tensor, InitContext]]:
        """An MLP in -> out -> out -> 10 whose first weight has ``shape``, on a unit-normal batch of 256."""
        if len(shape) != 2:
            raise _fail(f"data-dependent initializers are checked on dense layers; got shape {shape}")
        model = _kit_model(shape, self.activation, dtype)
        batch = torch.randn(256, shape[1], generator=torch.Generator().manual_seed(10_007), dtype=dtype)
        linears = [m for m in model if isinstance(m, torch.nn.Linear)]
        filled = []
        for index, layer in enumerate(linears):
            ctx = self.context(layer.weight, seed, layer_index=index, num_layers=len(linears), model=model, batch=batch)
            where = f"{self.where(shape, dtype, seed)}, layer {index} (weight {tuple(layer.weight.shape)})"
            self.call(layer.weight, ctx, where)
            filled.append((layer.weight.detach(), ctx))
        return filled


def _kit_model(shape: tuple[int, ...], activation: str, dtype: torch.dtype) -> torch.nn.Sequential:
    """NaN weights, zero biases; built without touching the global RNG state."""
    from core.registry import get_registry

    try:
        act_spec = get_registry(allow_failures=True).activation(activation)
    except UnknownNameError as exc:
        raise _fail(f"the kit's model needs a registered activation: {exc}") from None
    act_params = resolve_params(act_spec.params, None, act_spec.name)
    out_features, in_features = shape
    with _preserved_global_rng():
        model = torch.nn.Sequential(
            torch.nn.Linear(in_features, out_features),
            _Elementwise(act_spec.fn, act_params),
            torch.nn.Linear(out_features, out_features),
            _Elementwise(act_spec.fn, act_params),
            torch.nn.Linear(out_features, 10),
        ).to(dtype)
    with torch.no_grad():
        for module in model:
            if isinstance(module, torch.nn.Linear):
                module.weight.fill_(math.nan)
                module.bias.zero_()
    return model


class _Elementwise(torch.nn.Module):
    def __init__(self, fn: Callable[..., torch.Tensor], params: Mapping[str, Any]) -> None:
        super().__init__()
        self.fn = fn
        self.params = dict(params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, **self.params)


def _declared_variance(spec: InitializerSpec, ctx: InitContext) -> float | None:
    if spec.variance is None:
        return None
    try:
        value = float(spec.variance(ctx))
    except Exception as exc:
        raise _fail(f"initializer {spec.name!r}: variance(ctx) raised {type(exc).__name__}: {exc}") from exc
    if not math.isfinite(value) or value < 0:
        raise _fail(f"initializer {spec.name!r}: variance(ctx) returned {value}; it must be finite and >= 0")
    return value


def _check_variance(spec: InitializerSpec, tensor: torch.Tensor, ctx: InitContext, where: str, z: float) -> tuple:
    declared = _declared_variance(spec, ctx)
    if declared is None:
        return None, None, None
    measured = float(tensor.detach().to(torch.float64).var())
    tolerance = variance_tolerance(tensor, z)
    if abs(measured - declared) > tolerance:
        ratio = f", {measured / declared:.4g}x the declared value" if declared > 0 else ""
        raise _fail(
            f"{where}: declared variance {declared:.6g} but measured {measured:.6g}{ratio}, outside the tolerance "
            f"±{tolerance:.3g} ({z:g} standard errors of a sample variance; fan_in={ctx.fan_in}, "
            f"fan_out={ctx.fan_out}). Check variance(ctx) against what fn draws, and that both use ctx.fan_in/"
            "ctx.fan_out rather than the tensor's shape."
        )
    return declared, measured, tolerance


def _all_equal(a: list, b: list) -> bool:
    return all(torch.equal(x, y) for (x, _), (y, _) in zip(a, b, strict=True))


def check_initializer(
    spec_or_name: InitializerSpec | str,
    params: Mapping[str, Any] | None = None,
    *,
    shape: tuple[int, int] = (256, 784),
    conv_shape: tuple[int, ...] | None = (16, 32, 3, 3),
    seed: int = 0,
    dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64),
    activation: str = "relu",
    activation_gain: float | None = None,
    deterministic: bool | None = None,
    z: float = 6.0,
) -> InitializerReport:
    """Check an initializer against the plugin contract; raise AssertionError on the first violation.

    ``spec_or_name`` is an :class:`~core.specs.InitializerSpec` or the name of a registered one
    (looked up with ``core.get_registry()``); ``params`` are the parameter values to check
    (defaults filled in; invalid values fail). In order, it checks that:

    1. the spec passes the host's registration checks (slug name, metadata, parameter ranges);
    2. for each dtype in ``dtypes`` (float32 and float64), on a NaN-filled ``shape`` tensor
       (``(out, in)``, 256×784 by default): the call does not raise, keeps the shape and dtype,
       and writes a finite value into every entry;
    3. it does not use a global random number generator: torch's, numpy's and Python's global
       states are left untouched, and reseeding them does not change the output (draw from
       ``ctx.generator``);
    4. the same generator seed gives identical values, and a different seed different values,
       unless the scheme is deterministic (declared variance 0, or ``deterministic=True``, which
       then requires identical values across seeds);
    5. the declared ``variance(ctx)``, if any, matches the measured variance within
       :func:`variance_tolerance` (``z`` standard errors; see there for the derivation);
    6. the same holds on a conv-shaped tensor ``conv_shape`` (fans as ``torch.nn.init``
       computes them, given in ``ctx``); its default has out_channels <= in_channels so that
       schemes with structure across rows, like orthogonal, have the variance their fans
       predict. ``conv_shape=None`` skips this.

    A data-dependent initializer is checked layer by layer on the kit's MLP
    (``in -> out -> out -> 10`` with ``activation`` between layers, zero biases) and a unit-normal
    calibration batch of 256 rows; step 6 does not apply to it. The context carries
    ``activation`` and ``activation_gain`` (default: ``torch.nn.init.calculate_gain`` of that
    name where torch defines it, else 1), ``layer_index`` 0 and ``num_layers`` 3.
    """
    shape = tuple(shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (out, in) with positive sizes, got {shape}")
    if conv_shape is not None and (len(conv_shape) < 3 or min(conv_shape) < 1):
        raise ValueError(f"conv_shape must have at least 3 positive dimensions (or be None), got {conv_shape}")
    if not dtypes or any(not d.is_floating_point for d in dtypes):
        raise ValueError(f"dtypes must be a non-empty tuple of floating dtypes, got {dtypes}")
    spec = _lookup(spec_or_name, "initializer")
    _check_registration(spec)
    resolved = _resolve(spec, params)
    if activation_gain is None:
        activation_gain = _torch_gain(activation, {}) or 1.0
    runner = _InitializerRunner(spec, resolved, activation, float(activation_gain))
    checks: list[str] = ["registration"]

    with _preserved_global_rng():
        for dtype in dtypes:
            runner.fill(shape, dtype, seed)
        checks += ["shape", "dtype", "finite"]

        _seed_globals(1234)
        before = _global_rng_snapshot()
        first = runner.fill(shape, dtypes[0], seed)
        if not _same_snapshot(before, _global_rng_snapshot()):
            raise _fail(
                f"{runner.where(shape, dtypes[0], seed)}: used a global random number generator ({_which(before)}); "
                "draw all randomness from ctx.generator, e.g. tensor.normal_(0, std, generator=ctx.generator)"
            )
        _seed_globals(4321)
        if not _all_equal(first, runner.fill(shape, dtypes[0], seed)):
            raise _fail(
                f"{runner.where(shape, dtypes[0], seed)}: output changes when the global seed changes; "
                "draw all randomness from ctx.generator"
            )
        checks.append("no global RNG")

        if not _all_equal(first, runner.fill(shape, dtypes[0], seed)):
            raise _fail(f"{runner.where(shape, dtypes[0], seed)}: two calls with the same generator seed differ")
        declared = _declared_variance(spec, first[0][1])
        if deterministic is None:
            deterministic = declared == 0.0
        other = runner.fill(shape, dtypes[0], seed + 1)
        if deterministic and not _all_equal(first, other):
            raise _fail(
                f"initializer {spec.name!r} is declared deterministic (variance 0 or deterministic=True) but "
                f"generator seeds {seed} and {seed + 1} give different values"
            )
        if not deterministic and _all_equal(first, other):
            raise _fail(
                f"initializer {spec.name!r}: generator seeds {seed} and {seed + 1} give identical values, so it "
                "ignores ctx.generator; if the scheme is deterministic by design, declare variance 0 or pass "
                "deterministic=True"
            )
        checks.append("deterministic under a seed")

        report_variance: tuple = (None, None, None)
        for dtype in dtypes:
            for tensor, ctx in runner.fill(shape, dtype, seed):
                where = runner.where(shape, dtype, seed)
                if spec.data_dependent:
                    where += f", layer {ctx.layer_index} (weight {tuple(tensor.shape)})"
                result = _check_variance(spec, tensor, ctx, where, z)
                if dtype == dtypes[0] and ctx.layer_index == 0:
                    report_variance = result
        if spec.variance is not None:
            checks.append("declared variance")

        if conv_shape is not None and not spec.data_dependent:
            conv_shape = tuple(conv_shape)
            (tensor, ctx), *_ = runner.fill(conv_shape, dtypes[0], seed)
            (again, _), *_ = runner.fill(conv_shape, dtypes[0], seed)
            if not torch.equal(tensor, again):
                raise _fail(f"{runner.where(conv_shape, dtypes[0], seed)}: two calls with the same seed differ")
            _check_variance(spec, tensor, ctx, runner.where(conv_shape, dtypes[0], seed), z)
            checks.append("conv-shaped")

    return InitializerReport(spec.name, resolved, shape, *report_variance, tuple(checks))


def _same_snapshot(a: tuple, b: tuple) -> bool:
    return torch.equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]


def _which(before: tuple) -> str:
    after = _global_rng_snapshot()
    names = [n for n, x, y in zip(("torch", "numpy", "random"), before, after, strict=True) if not _eq(x, y)]
    return "consumed the global state of " + ", ".join(names) if names else "global state changed"


def _eq(x: Any, y: Any) -> bool:
    return torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y


# -- activations ---------------------------------------------------------------------------------


def _torch_gain(name: str, params: Mapping[str, Any]) -> float | None:
    """torch.nn.init.calculate_gain for initlab's activation name, or None where torch has none."""
    torch_name = TORCH_GAIN_NAMES.get(name)
    if torch_name is None:
        return None
    param = params.get("negative_slope") if torch_name == "leaky_relu" else None
    return float(torch.nn.init.calculate_gain(torch_name, param))


class _ActivationRunner:
    def __init__(self, spec: ActivationSpec, params: dict[str, Any]) -> None:
        self.spec = spec
        self.params = params
        self.label = f"activation {spec.name!r}" + (f" with {params}" if params else "")

    def __call__(self, x: torch.Tensor, what: str = "") -> torch.Tensor:
        where = f"{self.label}{' ' + what if what else ''}"
        original = x.detach().clone()
        try:
            out = self.spec.fn(x, **self.params)
        except Exception as exc:
            raise _fail(
                f"{where}: raised {type(exc).__name__}: {exc} on a {x.dtype} input of shape {tuple(x.shape)}"
            ) from exc
        if not isinstance(out, torch.Tensor):
            raise _fail(f"{where}: returned a {type(out).__name__}, expected a tensor")
        if out.shape != x.shape:
            raise _fail(f"{where}: is not shape-preserving: input {tuple(x.shape)}, output {tuple(out.shape)}")
        if out.dtype != x.dtype:
            raise _fail(f"{where}: changed the dtype from {x.dtype} to {out.dtype}")
        if not torch.equal(x.detach(), original):
            raise _fail(f"{where}: modified its input in place; return a new tensor (in-place ops break autograd)")
        return out


def _compare(actual: torch.Tensor, expected: torch.Tensor, label: str, what: str) -> None:
    """float64 values computed at different positions must agree up to rounding."""
    if not torch.allclose(actual, expected, rtol=1e-9, atol=1e-12, equal_nan=True):
        diff = (actual - expected).abs()
        diff = torch.where(torch.isnan(diff), torch.full_like(diff, math.inf), diff)
        raise _fail(
            f"{label} is not elementwise: {what} (largest difference {float(diff.max()):.3g} at flat position "
            f"{int(diff.flatten().argmax())}); each output must depend only on the input at the same position"
        )


def _check_elementwise(f: _ActivationRunner, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 37, generator=gen, dtype=torch.float64) * 4.0
    y = f(x).detach()
    flat_x, flat_y = x.flatten(), y.flatten()
    perm = torch.randperm(flat_x.numel(), generator=gen)
    _compare(f(flat_x[perm]).detach(), flat_y[perm], f.label, "permuting the inputs does not permute the outputs")
    _compare(f(x.reshape(37, 5)).detach(), y.reshape(37, 5), f.label, "the output depends on the input's shape")
    _compare(f(x[:2, :7].contiguous()).detach(), y[:2, :7], f.label, "a slice of the input gives other values")
    for k in (0, flat_x.numel() // 2, flat_x.numel() - 1):
        bumped = flat_x.clone()
        bumped[k] += 1.0
        out = f(bumped).detach()
        keep = torch.arange(flat_x.numel()) != k
        _compare(out[keep], flat_y[keep], f.label, f"changing input {k} changes other outputs")


def _derivative(f: _ActivationRunner, x: torch.Tensor, what: str) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    y = f(x, what)
    if not y.requires_grad:
        raise _fail(f"{f.label}: its output is not connected to autograd; build it from torch operations")
    (grad,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    if grad is None:
        raise _fail(f"{f.label}: autograd gives no gradient with respect to the input")
    return grad


def _check_differentiable(f: _ActivationRunner) -> None:
    # Points offset from the grid so none sits on a kink (0 for the ReLU family) within the step h.
    x = torch.linspace(-5.0, 5.0, 1001, dtype=torch.float64) + 0.00037
    grad = _derivative(f, x, "(autograd on [-5, 5])")
    if not torch.isfinite(grad).all():
        raise _fail(f"{f.label}: its derivative is NaN/Inf at x = {float(x[~torch.isfinite(grad)][0]):g}")
    h = 1e-6
    with torch.no_grad():
        numeric = (f(x + h).detach() - f(x - h).detach()) / (2 * h)
    # Central differences have error ~h^2 |f'''| + eps|f|/h ~ 1e-10; allow 1e-4. A kink between x-h and x+h
    # (where the plugin's function has one other than at 0) spoils a point, hence the 1% allowance.
    wrong = (numeric - grad).abs() > 1e-4 * (1.0 + grad.abs())
    if int(wrong.sum()) > 0.01 * x.numel():
        at = float(x[wrong][0])
        raise _fail(
            f"{f.label}: autograd's derivative disagrees with finite differences at {int(wrong.sum())} of "
            f"{x.numel()} points in [-5, 5] (first at x = {at:g}: autograd {float(grad[wrong][0]):.6g}, numeric "
            f"{float(numeric[wrong][0]):.6g}); check a custom backward"
        )


def _check_finite(f: _ActivationRunner, lo: float, hi: float) -> None:
    for dtype in (torch.float32, torch.float64):
        x = torch.linspace(lo, hi, 20_001, dtype=dtype)
        out = f(x, f"(finiteness on [{lo:g}, {hi:g}])").detach()
        if not torch.isfinite(out).all():
            raise _fail(
                f"{f.label}: returns NaN/Inf for {dtype} input x = {float(x[~torch.isfinite(out)][0]):g}; "
                f"it must be finite on [{lo:g}, {hi:g}]"
            )
    x = torch.linspace(lo, hi, 20_001, dtype=torch.float64)
    grad = _derivative(f, x, "")
    if not torch.isfinite(grad).all():
        raise _fail(f"{f.label}: its derivative is NaN/Inf at x = {float(x[~torch.isfinite(grad)][0]):g}")


def _max_derivative_grid() -> torch.Tensor:
    """Step 1e-4 on [-20, 20] (where kinks and bumps of common activations lie), 0.01 out to ±1000."""
    return torch.cat(
        [
            torch.linspace(-20.0, 20.0, 400_001, dtype=torch.float64),
            torch.linspace(-1000.0, 1000.0, 200_001, dtype=torch.float64),
        ]
    )


def _check_masks(
    f: _ActivationRunner, spec: ActivationSpec, sup: float, saturation_ratio: float, checks: list[str]
) -> None:
    grid = torch.linspace(-20.0, 20.0, 4001, dtype=torch.float64)
    deriv = _derivative(f, grid, "").abs()
    post = f(grid).detach()
    for name, mask_fn, arg, bound in (
        ("saturated", spec.saturated, post, saturation_ratio * sup),
        ("inactive", spec.inactive, grid, 1e-6 * max(1.0, sup)),
    ):
        if mask_fn is None:
            continue
        for dtype in (torch.float32, torch.float64):
            probe = torch.linspace(-3.0, 3.0, 24, dtype=dtype).reshape(2, 3, 4)
            probe = f(probe) if name == "saturated" else probe
            try:
                mask = mask_fn(probe.detach())
            except Exception as exc:
                raise _fail(f"{f.label}: {name}() raised {type(exc).__name__}: {exc}") from exc
            if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != probe.shape:
                got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, torch.Tensor) else type(mask).__name__
                raise _fail(
                    f"{f.label}: {name}() must return a bool tensor of its input's shape "
                    f"{tuple(probe.shape)}, got {got}"
                )
        mask = mask_fn(arg)
        if bool(mask.all()):
            raise _fail(f"{f.label}: {name}() marks every point of [-20, 20] as {name}")
        too_steep = mask & (deriv > bound)
        if too_steep.any():
            x = float(grid[too_steep][0])
            raise _fail(
                f"{f.label}: {name}() marks pre-activation {x:g} as {name}, but |f'({x:g})| = "
                f"{float(deriv[too_steep][0]):.4g} exceeds {bound:.3g} ("
                + (
                    f"a saturated unit passes at most {saturation_ratio:g} x the peak derivative)"
                    if name == "saturated"
                    else "an inactive unit passes no gradient)"
                )
            )
        checks.append(f"{name} mask")


def check_activation(
    spec_or_name: ActivationSpec | str,
    params: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    finite_range: tuple[float, float] = (-100.0, 100.0),
    max_derivative_rtol: float = 1e-3,
    saturation_ratio: float = 0.1,
) -> ActivationReport:
    """Check an activation against the plugin contract; raise AssertionError on the first violation.

    ``spec_or_name`` is an :class:`~core.specs.ActivationSpec` or a registered name; ``params``
    the parameter values to check (defaults filled in). It checks that:

    1. the spec passes the host's registration checks;
    2. ``fn`` keeps shape and dtype (float32, float64; 1-D to 4-D) and does not modify its input;
    3. it is elementwise: permuting, reshaping or slicing the input does the same to the output,
       and changing one input changes no other output (float64, to rounding: rtol 1e-9);
    4. its output and derivative are finite on ``finite_range`` (default [-100, 100]);
    5. it is differentiable by autograd, and autograd's derivative matches central finite
       differences on [-5, 5] (at 99% of 1001 points, so an unforeseen kink does not fail it);
    6. the declared ``max_derivative`` equals sup |f'| measured by autograd on a grid (step 1e-4 on
       [-20, 20], 0.01 out to ±1000) within ``max_derivative_rtol`` (1e-3: a smooth maximum is
       missed by ~h²·|f'''| ≈ 1e-9 and a one-sided limit at a kink, as SELU's at 0⁻, by ~h = 1e-4,
       so this tolerance leaves room only for rounding the declared constant to 4 digits);
    7. the gain (``resolve_gain(params)``) is positive and finite, and equals
       ``torch.nn.init.calculate_gain`` for names torch defines (identity = torch's "linear",
       sigmoid, tanh, relu, leaky_relu with its negative_slope, selu; relative 1e-9);
    8. ``saturated(post)`` and ``inactive(pre)``, where given, return bool tensors of their
       input's shape, do not mark everything, and mean what they say: where a unit is marked
       inactive |f'| <= 1e-6 (it passes no gradient), and where it is marked saturated
       |f'| <= ``saturation_ratio`` (0.1) x the peak derivative.
    """
    spec = _lookup(spec_or_name, "activation")
    _check_registration(spec)
    resolved = _resolve(spec, params)
    f = _ActivationRunner(spec, resolved)
    checks = ["registration"]

    gen = torch.Generator().manual_seed(seed)
    for dtype in (torch.float32, torch.float64):
        for shape in ((7,), (3, 4), (2, 3, 4, 5)):
            f(torch.randn(shape, generator=gen, dtype=dtype) * 3.0)
    checks += ["shape", "dtype", "no in-place"]

    _check_elementwise(f, seed)
    checks.append("elementwise")
    _check_finite(f, *finite_range)
    checks.append("finite")
    _check_differentiable(f)
    checks.append("differentiable")

    grid = _max_derivative_grid()
    deriv = _derivative(f, grid, "").abs()
    if not torch.isfinite(deriv).all():
        raise _fail(f"{f.label}: its derivative is NaN/Inf at x = {float(grid[~torch.isfinite(deriv)][0]):g}")
    at = int(deriv.argmax())
    sup, argmax = float(deriv[at]), float(grid[at])
    declared = spec.max_derivative
    if declared is not None:
        if abs(sup - declared) > max_derivative_rtol * declared:
            raise _fail(
                f"{f.label}: declares max_derivative {declared:.6g} but sup |f'| measured by autograd is {sup:.6g} "
                f"(at x = {argmax:.4g}); the relative difference {abs(sup - declared) / declared:.3g} exceeds "
                f"{max_derivative_rtol:g}"
            )
        checks.append("max_derivative")

    try:
        gain = spec.resolve_gain(resolved)
    except Exception as exc:
        raise _fail(f"{f.label}: gain(params) raised {type(exc).__name__}: {exc}") from exc
    if gain is not None and not (math.isfinite(gain) and gain > 0):
        raise _fail(f"{f.label}: gain {gain} must be positive and finite")
    torch_gain = _torch_gain(spec.name, resolved)
    if torch_gain is not None:
        if gain is None:
            raise _fail(f"{f.label}: torch.nn.init.calculate_gain defines {torch_gain:.6g} for this name; declare it")
        if not math.isclose(gain, torch_gain, rel_tol=1e-9):
            raise _fail(f"{f.label}: declares gain {gain:.6g} but torch.nn.init.calculate_gain gives {torch_gain:.6g}")
    checks.append("gain")

    _check_masks(f, spec, declared if declared is not None else sup, saturation_ratio, checks)
    return ActivationReport(spec.name, resolved, gain, torch_gain, declared, sup, argmax, tuple(checks))
