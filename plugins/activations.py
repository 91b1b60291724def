"""Built-in activations: identity, sigmoid, tanh, the ReLU family and smooth variants."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from core import ActivationSpec, Param, hookimpl

SATURATION_TANH = 0.99  # |tanh(z)| > 0.99  <=>  |z| > 2.65: derivative below 0.02
SATURATION_SIGMOID = 0.01  # sigmoid(z) < 0.01 or > 0.99  <=>  |z| > 4.6: derivative below 0.0099


def _tanh_saturated(post: torch.Tensor) -> torch.Tensor:
    return post.abs() > SATURATION_TANH


def _sigmoid_saturated(post: torch.Tensor) -> torch.Tensor:
    return (post < SATURATION_SIGMOID) | (post > 1 - SATURATION_SIGMOID)


def _nonpositive(pre: torch.Tensor) -> torch.Tensor:
    return pre <= 0


def _leaky_gain(params: dict) -> float:
    return math.sqrt(2.0 / (1 + params["negative_slope"] ** 2))


def _spec(name: str, display: str, fn: Callable[..., torch.Tensor], description: str, **kw: object) -> ActivationSpec:
    return ActivationSpec(name=name, fn=fn, display_name=display, description=description, **kw)


BUILTIN_ACTIVATIONS: tuple[ActivationSpec, ...] = (
    _spec(
        "identity",
        "Identity",
        lambda x: x,
        "No nonlinearity: the network is a product of matrices. Useful to isolate how the weight "
        "scale alone grows or shrinks the signal with depth.",
        gain=1.0,
        max_derivative=1.0,
    ),
    _spec(
        "sigmoid",
        "Sigmoid",
        torch.sigmoid,
        "Logistic function 1/(1+e^-z), output in (0, 1), not zero-centred. Its derivative is at most "
        "0.25, so each layer multiplies the backward signal by at most a quarter: gradients vanish "
        "fast in deep nets unless the weights compensate. Saturates for |z| > 4.6.",
        gain=1.0,
        max_derivative=0.25,
        saturated=_sigmoid_saturated,
    ),
    _spec(
        "tanh",
        "Tanh",
        torch.tanh,
        "Hyperbolic tangent, zero-centred, derivative at most 1 (at 0). Near zero it is almost "
        "linear, which is why Xavier/Glorot initialization suits it; large weights push units into "
        "saturation (|tanh| > 0.99) where gradients die.",
        gain=5.0 / 3.0,
        max_derivative=1.0,
        saturated=_tanh_saturated,
    ),
    _spec(
        "relu",
        "ReLU",
        F.relu,
        "max(0, z). Halves the signal's second moment, which He initialization compensates with "
        "variance 2/fan_in. A unit whose pre-activation is negative for every input is dead: it "
        "passes no gradient.",
        gain=math.sqrt(2.0),
        max_derivative=1.0,
        inactive=_nonpositive,
    ),
    _spec(
        "leaky_relu",
        "Leaky ReLU",
        lambda x, negative_slope=0.01: F.leaky_relu(x, negative_slope),
        "max(z, a*z) with a small negative slope a, so negative inputs still pass some gradient. "
        "He initialization with the same slope keeps the variance steady.",
        params=(Param("negative_slope", "float", 0.01, min=0.0, max=1.0, help="slope for z < 0"),),
        gain=_leaky_gain,
        max_derivative=1.0,
    ),
    _spec(
        "elu",
        "ELU",
        lambda x, alpha=1.0: F.elu(x, alpha),
        "Exponential linear unit: z for z > 0, alpha*(e^z - 1) otherwise. Smooth, negative outputs "
        "push the mean toward zero. Saturates (gently) only for very negative inputs.",
        params=(
            Param(
                "alpha",
                "float",
                1.0,
                min=0.01,
                max=1.0,
                help="negative saturation level; at most 1 so the derivative stays <= 1",
            ),
        ),
        gain=None,
        max_derivative=1.0,
    ),
    _spec(
        "selu",
        "SELU",
        F.selu,
        "Scaled ELU with fixed constants (lambda ~ 1.0507, alpha ~ 1.6733) chosen so that, with "
        "LeCun-normal weights, activations converge to mean 0 and variance 1 layer after layer: "
        "a self-normalizing network (Klambauer et al., 2017).",
        gain=0.75,
        max_derivative=1.0507009873554805 * 1.6732632423543772,
    ),
    _spec(
        "gelu",
        "GELU",
        F.gelu,
        "z * Phi(z), a smooth ReLU used by transformers. Slightly negative for small negative "
        "inputs; initialized like ReLU in practice.",
        gain=None,
        max_derivative=1.1289,
    ),
    _spec(
        "silu",
        "SiLU / Swish",
        F.silu,
        "z * sigmoid(z), smooth and non-monotonic; behaves like ReLU for large |z|.",
        gain=None,
        max_derivative=1.0998,
    ),
    _spec(
        "softplus",
        "Softplus",
        lambda x, beta=1.0: F.softplus(x, beta),
        "log(1 + e^(beta*z)) / beta, a smooth ReLU whose derivative is a sigmoid (at most 1). Its "
        "output is always positive, so it shifts the mean of every layer.",
        params=(Param("beta", "float", 1.0, min=0.1, max=100.0),),
        gain=None,
        max_derivative=1.0,
    ),
)


@hookimpl
def register_activations(register: Callable[..., None]) -> None:
    for spec in BUILTIN_ACTIVATIONS:
        register(spec)
