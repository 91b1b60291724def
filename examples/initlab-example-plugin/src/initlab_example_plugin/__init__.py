"""An example initlab plugin: one initializer (sparse, Martens 2010) and one activation (hard tanh).

initlab finds this module through the entry point in ``pyproject.toml`` and calls the two
``@hookimpl`` functions below, each of which registers one entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from core import ActivationSpec, InitContext, InitializerSpec, Param, hookimpl

__version__ = "0.1.0"

MARTENS_2010 = (
    "Martens, J. (2010). Deep learning via Hessian-free optimization. ICML 2010, section 5 (sparse initialization)."
)


# -- sparse initialization -------------------------------------------------------------------------


def sparse_fill(tensor: torch.Tensor, ctx: InitContext) -> None:
    """Each output unit gets exactly ``nonzero`` incoming weights drawn from N(0, std²); the rest are 0.

    The inputs a unit connects to are chosen uniformly without replacement, independently per
    unit; for a conv weight the "inputs" are all ``in_channels × kernel`` entries (``ctx.fan_in``).
    All randomness comes from ``ctx.generator``.
    """
    k = min(int(ctx.params["nonzero"]), ctx.fan_in)
    rows = tensor.shape[0]
    gen = ctx.generator
    # argsort of iid uniforms is a uniformly random permutation per row; its first k entries are
    # a uniformly random k-subset of the row's fan_in positions.
    chosen = torch.rand(rows, ctx.fan_in, generator=gen).argsort(dim=1)[:, :k]
    values = torch.randn(rows, k, generator=gen, dtype=tensor.dtype) * ctx.params["std"]
    flat = torch.zeros(rows, ctx.fan_in, dtype=tensor.dtype)
    flat.scatter_(1, chosen, values)
    tensor.copy_(flat.reshape(tensor.shape).to(tensor.device))


def sparse_variance(ctx: InitContext) -> float:
    """Var(w) = P(w != 0) · std² = min(nonzero, fan_in) / fan_in · std² (zero mean, so no mean term)."""
    k = min(int(ctx.params["nonzero"]), ctx.fan_in)
    return k / ctx.fan_in * ctx.params["std"] ** 2


SPARSE = InitializerSpec(
    name="sparse",
    fn=sparse_fill,
    display_name="Sparse (Martens 2010)",
    description=(
        "Every unit receives exactly `nonzero` (15) non-zero incoming weights drawn from N(0, std²), all "
        "others are zero. Unlike fan-scaled schemes, the size of each unit's input does not shrink as "
        "layers get wider, and units start out different without being tied to every input. With std 1 "
        "the pre-activation variance is about 15 times the input's, so it suits saturating activations "
        "(tanh, sigmoid) and was used to train deep autoencoders without pre-training."
    ),
    params=(
        Param("nonzero", "int", 15, min=1, max=10_000, help="non-zero incoming weights per unit"),
        Param("std", "float", 1.0, min=1e-3, max=10.0, log_scale=True, help="std of the non-zero weights"),
    ),
    recommended_activations=("tanh", "sigmoid", "hard_tanh"),
    citation=MARTENS_2010,
    variance=sparse_variance,
)


# -- hard tanh -------------------------------------------------------------------------------------

LIMIT = 1.0  # torch.nn.Hardtanh's default clipping range [-1, 1]


def hard_tanh(x: torch.Tensor) -> torch.Tensor:
    """clamp(x, -1, 1). The derivative is 1 inside (-1, 1) and 0 from ±1 outwards (torch's hardtanh)."""
    return F.hardtanh(x, -LIMIT, LIMIT)


def clipped_second_moment(limit: float = LIMIT) -> float:
    """E[clamp(z, -a, a)²] for z ~ N(0, 1) and a = ``limit``.

    E[z²; |z| < a] + a²·P(|z| >= a) = (erf(a/√2) − 2a·φ(a)) + a²·erfc(a/√2), with φ the standard
    normal density (integrate z²φ(z) by parts: ∫ z²φ dz = −zφ + ∫ φ dz).
    """
    a = float(limit)
    phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    return math.erf(a / math.sqrt(2)) - 2 * a * phi + a * a * math.erfc(a / math.sqrt(2))


# torch.nn.init.calculate_gain has no entry for hard tanh. This is the convention that gives ReLU
# its sqrt(2) (E[relu(z)²] = 1/2): the g with g²·E[f(z)²] = 1, which keeps a unit-variance
# signal's second moment at 1. E = 0.516059, g = 1.392036.
HARD_TANH_GAIN = 1.0 / math.sqrt(clipped_second_moment())


def clipped(values: torch.Tensor) -> torch.Tensor:
    """Where |value| >= 1: the output is stuck at ±1 and no gradient flows (for pre- and post-activations)."""
    return values.abs() >= LIMIT


HARD_TANH = ActivationSpec(
    name="hard_tanh",
    fn=hard_tanh,
    display_name="Hard tanh",
    description=(
        "clamp(z, -1, 1): a piecewise-linear tanh. Inside (-1, 1) it passes signal and gradient unchanged "
        "(derivative 1); beyond, the output is stuck at ±1 and the gradient is exactly zero, so a unit whose "
        "inputs are all large for a whole batch is dead. It shows sharply what large initial weights do: "
        "units saturate and stop learning."
    ),
    gain=HARD_TANH_GAIN,
    max_derivative=1.0,
    saturated=clipped,
    inactive=clipped,
)


@hookimpl
def register_initializers(register: Callable[..., None]) -> None:
    register(SPARSE)


@hookimpl
def register_activations(register: Callable[..., None]) -> None:
    register(HARD_TANH)
