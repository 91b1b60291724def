"""Built-in weight initializers, registered through the same hook a third-party plugin uses.

Every scheme fills the tensor in place, takes all its randomness from ``ctx.generator`` and
reads the fans from the context (``ctx.fan_in``/``ctx.fan_out``, computed as ``torch.nn.init``
does, so conv-shaped weights work). Where ``torch.nn.init`` has the same scheme, the code below
draws in the same order, so the same generator seed gives bit-identical values (the tests check
this). ``variance(ctx)`` is the variance of the weights the scheme produces, used by the theory
overlay and checked against measurement by ``core.testing.check_initializer``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from core import InitContext, InitializerSpec, Param, hookimpl

# Keras VarianceScaling: the std of a standard normal truncated to [-2, 2] is 0.8796..., so the
# pre-truncation std is divided by it to make the post-truncation variance equal scale / n.
TRUNCATED_NORMAL_STD_CORRECTION = 0.87962566103423978
TRUNCATION_STDS = 2.0

RELU_FAMILY = ("relu", "leaky_relu", "gelu", "silu")
SYMMETRY = (
    "Every unit of a layer then computes the same output and receives the same gradient update, so the "
    "units stay identical forever: symmetry is never broken and a layer of any width behaves like one unit."
)

# -- small helpers -------------------------------------------------------------------------------


def _fan(ctx: InitContext, mode: str) -> float:
    """fan_in, fan_out or their mean (Keras' fan_avg)."""
    if mode == "fan_in":
        return float(ctx.fan_in)
    if mode == "fan_out":
        return float(ctx.fan_out)
    if mode == "fan_avg":
        return (ctx.fan_in + ctx.fan_out) / 2.0
    raise ValueError(f"mode must be 'fan_in', 'fan_out' or 'fan_avg', got {mode!r}")


def _leaky_gain(negative_slope: float) -> float:
    """torch.nn.init.calculate_gain('leaky_relu', a) = sqrt(2 / (1 + a^2)); a = 0 gives ReLU's sqrt(2)."""
    return math.sqrt(2.0 / (1.0 + negative_slope**2))


def _uniform_with_std(tensor: torch.Tensor, std: float, ctx: InitContext) -> None:
    """U(-sqrt(3)*std, sqrt(3)*std): zero mean and the given std."""
    bound = math.sqrt(3.0) * std
    tensor.uniform_(-bound, bound, generator=ctx.generator)


def _normal(tensor: torch.Tensor, mean: float, std: float, ctx: InitContext) -> None:
    tensor.normal_(mean, std, generator=ctx.generator)


# -- schemes -----------------------------------------------------------------------------------


def _zeros(tensor: torch.Tensor, ctx: InitContext) -> None:
    tensor.zero_()


def _constant(tensor: torch.Tensor, ctx: InitContext) -> None:
    tensor.fill_(ctx.params["value"])


def _std_normal(tensor: torch.Tensor, ctx: InitContext) -> None:
    _normal(tensor, 0.0, ctx.params["std"], ctx)


def _normal_mean_std(tensor: torch.Tensor, ctx: InitContext) -> None:
    _normal(tensor, ctx.params["mean"], ctx.params["std"], ctx)


def _uniform(tensor: torch.Tensor, ctx: InitContext) -> None:
    a, b = ctx.params["a"], ctx.params["b"]
    if a > b:
        raise ValueError(f"uniform needs a <= b, got a={a:g} and b={b:g}")
    tensor.uniform_(a, b, generator=ctx.generator)


def _xavier_std(ctx: InitContext) -> float:
    return ctx.params["gain"] * math.sqrt(2.0 / (ctx.fan_in + ctx.fan_out))


def _xavier_uniform(tensor: torch.Tensor, ctx: InitContext) -> None:
    _uniform_with_std(tensor, _xavier_std(ctx), ctx)


def _xavier_normal(tensor: torch.Tensor, ctx: InitContext) -> None:
    _normal(tensor, 0.0, _xavier_std(ctx), ctx)


def _he_std(ctx: InitContext) -> float:
    return _leaky_gain(ctx.params["negative_slope"]) / math.sqrt(_fan(ctx, ctx.params["mode"]))


def _he_uniform(tensor: torch.Tensor, ctx: InitContext) -> None:
    _uniform_with_std(tensor, _he_std(ctx), ctx)


def _he_normal(tensor: torch.Tensor, ctx: InitContext) -> None:
    _normal(tensor, 0.0, _he_std(ctx), ctx)


def _lecun_uniform(tensor: torch.Tensor, ctx: InitContext) -> None:
    _uniform_with_std(tensor, 1.0 / math.sqrt(ctx.fan_in), ctx)


def _lecun_normal(tensor: torch.Tensor, ctx: InitContext) -> None:
    _normal(tensor, 0.0, 1.0 / math.sqrt(ctx.fan_in), ctx)


def _orthogonal(tensor: torch.Tensor, ctx: InitContext) -> None:
    torch.nn.init.orthogonal_(tensor, gain=ctx.params["gain"], generator=ctx.generator)


def _variance_scaling_target(ctx: InitContext) -> float:
    """Keras: scale / max(1, n) with n the fan the mode names."""
    return ctx.params["scale"] / max(1.0, _fan(ctx, ctx.params["mode"]))


def _variance_scaling(tensor: torch.Tensor, ctx: InitContext) -> None:
    variance = _variance_scaling_target(ctx)
    distribution = ctx.params["distribution"]
    if distribution == "truncated_normal":
        std = math.sqrt(variance) / TRUNCATED_NORMAL_STD_CORRECTION
        limit = TRUNCATION_STDS * std
        torch.nn.init.trunc_normal_(tensor, 0.0, std, -limit, limit, generator=ctx.generator)
    elif distribution == "normal":
        _normal(tensor, 0.0, math.sqrt(variance), ctx)
    else:
        _uniform_with_std(tensor, math.sqrt(variance), ctx)


def _pytorch_default(tensor: torch.Tensor, ctx: InitContext) -> None:
    # nn.Linear / nn.ConvNd: kaiming_uniform_(w, a=sqrt(5)) == U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    bound = 1.0 / math.sqrt(ctx.fan_in)
    tensor.uniform_(-bound, bound, generator=ctx.generator)


def _lsuv(tensor: torch.Tensor, ctx: InitContext) -> None:
    """Orthogonal, then rescale until the layer's output on the calibration batch has unit variance."""
    if tensor.ndim != 2:
        raise ValueError(f"lsuv supports dense (out, in) weights only, got shape {tuple(tensor.shape)}")
    if ctx.model is None or ctx.batch is None:
        raise ValueError("lsuv is data-dependent: the host must pass the model and a calibration batch")
    torch.nn.init.orthogonal_(tensor, generator=ctx.generator)
    x = ctx.layer_input().to(tensor.dtype)
    for _ in range(ctx.params["max_passes"]):
        variance = float((x @ tensor.T).var())
        if not math.isfinite(variance) or variance <= 1e-30:
            break  # e.g. a dead input: no rescaling can help, keep the orthogonal weights
        if abs(variance - 1.0) < ctx.params["tolerance"]:
            break
        tensor.div_(math.sqrt(variance))


# -- variances ---------------------------------------------------------------------------------


def _zero_variance(ctx: InitContext) -> float:
    return 0.0


def _std_variance(ctx: InitContext) -> float:
    return ctx.params["std"] ** 2


def _uniform_variance(ctx: InitContext) -> float:
    return (ctx.params["b"] - ctx.params["a"]) ** 2 / 12.0


def _xavier_variance(ctx: InitContext) -> float:
    return _xavier_std(ctx) ** 2


def _he_variance(ctx: InitContext) -> float:
    return _he_std(ctx) ** 2


def _lecun_variance(ctx: InitContext) -> float:
    return 1.0 / ctx.fan_in


def _orthogonal_variance(ctx: InitContext) -> float:
    """gain^2 / max(rows, cols) of the flattened (out, in*k) matrix, whose rows or columns are orthonormal.

    Exact for dense weights; for conv weights it assumes out_channels <= in_channels (then
    max(fan_in, fan_out) = fan_in = cols). Otherwise the true value is gain^2 / max(out, fan_in),
    which the context cannot express.
    """
    return ctx.params["gain"] ** 2 / max(ctx.fan_in, ctx.fan_out)


def _pytorch_default_variance(ctx: InitContext) -> float:
    return 1.0 / (3.0 * ctx.fan_in)


# -- parameters --------------------------------------------------------------------------------


def _gain_param(help_text: str = "multiplies the std; e.g. 5/3 for tanh (torch.nn.init.calculate_gain)") -> Param:
    return Param("gain", "float", 1.0, min=0.0, max=10.0, help=help_text)


MODE = Param(
    "mode",
    "choice",
    "fan_in",
    choices=("fan_in", "fan_out"),
    help="fan_in keeps the forward signal, fan_out the backward",
)
NEGATIVE_SLOPE = Param(
    "negative_slope", "float", 0.0, min=0.0, max=1.0, help="slope of the leaky ReLU for z < 0 (0 = ReLU)"
)


def _spec(
    name: str,
    display: str,
    fn: Callable[[torch.Tensor, InitContext], None],
    description: str,
    **kw: object,
) -> InitializerSpec:
    return InitializerSpec(name=name, fn=fn, display_name=display, description=description, **kw)


GLOROT_2010 = "Glorot & Bengio, Understanding the difficulty of training deep feedforward neural networks, AISTATS 2010"
HE_2015 = "He, Zhang, Ren & Sun, Delving Deep into Rectifiers, ICCV 2015"
LECUN_1998 = "LeCun, Bottou, Orr & Müller, Efficient BackProp, Neural Networks: Tricks of the Trade, 1998"

BUILTIN_INITIALIZERS: tuple[InitializerSpec, ...] = (
    _spec(
        "zeros",
        "Zeros",
        _zeros,
        "Sets every weight to 0. " + SYMMETRY + " With all weights zero, hidden layers even receive no gradient "
        "at all (the gradient flowing back through a zero matrix is zero), so only the output layer can learn. "
        "It is here to show why weights must be random.",
        citation="Goodfellow, Bengio & Courville, Deep Learning, §8.4 (symmetry breaking), 2016",
        variance=_zero_variance,
    ),
    _spec(
        "constant",
        "Constant",
        _constant,
        "Sets every weight to the same value. " + SYMMETRY + " A large value also pushes every unit the same "
        "way, so sigmoid and tanh units saturate together.",
        params=(Param("value", "float", 0.1, min=-10.0, max=10.0, help="the value of every weight"),),
        citation="Goodfellow, Bengio & Courville, Deep Learning, §8.4 (symmetry breaking), 2016",
        variance=_zero_variance,
    ),
    _spec(
        "small_normal",
        "Small random normal (too small)",
        _std_normal,
        "Draws weights from N(0, std²) with a small std (0.01) that ignores the layer's width. Symmetry is "
        "broken, but each layer multiplies the signal's scale by about std·sqrt(fan_in) (0.08 for 64 inputs), "
        "so activations and gradients shrink geometrically with depth: vanishing gradients, and early layers "
        "barely learn. It is worse with sigmoid, whose derivative is at most 0.25, shrinking the backward "
        "signal further at every layer. Works only for shallow networks.",
        params=(Param("std", "float", 0.01, min=1e-6, max=10.0, log_scale=True, help="standard deviation"),),
        citation=GLOROT_2010,
        variance=_std_variance,
    ),
    _spec(
        "large_normal",
        "Large random normal (too large)",
        _std_normal,
        "Draws weights from N(0, std²) with std 1, far above 1/sqrt(fan_in). Each layer multiplies the "
        "signal's scale by about sqrt(fan_in) (8 for 64 inputs): with ReLU or no nonlinearity, activations and "
        "gradients explode and the loss diverges; with sigmoid or tanh, pre-activations are so large that units "
        "saturate, their derivatives are near zero and learning stalls.",
        params=(Param("std", "float", 1.0, min=1e-6, max=10.0, log_scale=True, help="standard deviation"),),
        citation=GLOROT_2010,
        variance=_std_variance,
    ),
    _spec(
        "uniform",
        "Uniform U(a, b)",
        _uniform,
        "Draws weights uniformly from [a, b] (variance (b − a)²/12), whatever the layer's width. A fixed range "
        "is right for only one width: too narrow and signals vanish with depth, too wide and they explode or "
        "saturate. A range not centred on 0 also gives every unit the same bias in its input sum. Requires a <= b.",
        params=(
            Param("a", "float", -0.05, min=-10.0, max=10.0, help="lower bound"),
            Param("b", "float", 0.05, min=-10.0, max=10.0, help="upper bound"),
        ),
        citation=GLOROT_2010,
        variance=_uniform_variance,
    ),
    _spec(
        "normal",
        "Normal N(mean, std²)",
        _normal_mean_std,
        "Draws weights from N(mean, std²), whatever the layer's width: the general form of the 'too small' and "
        "'too large' schemes. A std near 1/sqrt(fan_in) keeps signals steady; much smaller vanishes, much larger "
        "explodes or saturates. A non-zero mean adds a shared component that no layer width averages away.",
        params=(
            Param("mean", "float", 0.0, min=-10.0, max=10.0, help="mean of the weights"),
            Param("std", "float", 0.05, min=0.0, max=10.0, help="standard deviation"),
        ),
        citation=GLOROT_2010,
        variance=_std_variance,
    ),
    _spec(
        "xavier_uniform",
        "Xavier/Glorot uniform",
        _xavier_uniform,
        "Uniform with variance gain²·2/(fan_in + fan_out), a compromise that keeps both the forward signal "
        "and the backward gradient at roughly constant scale for activations that are linear near zero. It "
        "suits tanh and sigmoid (set gain to 5/3 for tanh). With ReLU, which zeroes half its inputs, the signal "
        "halves in variance at every layer and deep ReLU networks train slowly; use He there.",
        params=(_gain_param(),),
        recommended_activations=("tanh", "sigmoid", "identity"),
        citation=GLOROT_2010,
        variance=_xavier_variance,
    ),
    _spec(
        "xavier_normal",
        "Xavier/Glorot normal",
        _xavier_normal,
        "Normal with variance gain²·2/(fan_in + fan_out): the same scale as Xavier uniform, drawn from a "
        "Gaussian. It keeps forward and backward signals steady for tanh and sigmoid (gain 5/3 for tanh); with "
        "ReLU the variance halves at every layer, so deep ReLU networks need He instead.",
        params=(_gain_param(),),
        recommended_activations=("tanh", "sigmoid", "identity"),
        citation=GLOROT_2010,
        variance=_xavier_variance,
    ),
    _spec(
        "he_uniform",
        "He/Kaiming uniform",
        _he_uniform,
        "Uniform with variance gain²/fan, gain = sqrt(2/(1 + a²)) for negative slope a: twice Xavier's "
        "variance for ReLU, compensating for the half of the inputs ReLU sets to zero, so very deep ReLU "
        "networks keep a steady signal. Set negative_slope to the leaky ReLU's slope. With tanh or sigmoid "
        "it is too large and pushes units toward saturation. mode=fan_in preserves the forward pass, fan_out "
        "the backward pass (as torch.nn.init.kaiming_uniform_).",
        params=(MODE, NEGATIVE_SLOPE),
        recommended_activations=RELU_FAMILY,
        citation=HE_2015,
        variance=_he_variance,
    ),
    _spec(
        "he_normal",
        "He/Kaiming normal",
        _he_normal,
        "Normal with variance gain²/fan, gain = sqrt(2/(1 + a²)): the ReLU-aware scale (twice Xavier's "
        "for ReLU) that keeps the signal steady through many ReLU layers. Set negative_slope to the leaky "
        "ReLU's slope. Too large for tanh and sigmoid, which it drives toward saturation. mode=fan_in "
        "preserves the forward pass, fan_out the backward pass (as torch.nn.init.kaiming_normal_).",
        params=(MODE, NEGATIVE_SLOPE),
        recommended_activations=RELU_FAMILY,
        citation=HE_2015,
        variance=_he_variance,
    ),
    _spec(
        "lecun_uniform",
        "LeCun uniform",
        _lecun_uniform,
        "Uniform with variance 1/fan_in, so each unit's input sum has about the variance of one input: right "
        "for activations that are linear near zero (tanh, identity) and the scale SELU's self-normalization "
        "assumes. With ReLU the signal halves in variance at every layer, and with sigmoid (not zero-centred, "
        "slope 0.25) it shrinks quickly.",
        recommended_activations=("selu", "tanh", "identity"),
        citation=LECUN_1998,
        variance=_lecun_variance,
    ),
    _spec(
        "lecun_normal",
        "LeCun normal",
        _lecun_normal,
        "Normal N(0, 1/fan_in) (as torch.nn.init.kaiming_normal_ with nonlinearity='linear'; Keras draws it "
        "truncated, which variance_scaling offers). It is the initialization SELU's self-normalizing property "
        "needs, and suits tanh; ReLU networks lose half the variance per layer with it.",
        recommended_activations=("selu", "tanh", "identity"),
        citation=LECUN_1998,
        variance=_lecun_variance,
    ),
    _spec(
        "orthogonal",
        "Orthogonal",
        _orthogonal,
        "A random (semi-)orthogonal matrix times gain: every singular value equals gain, so a linear layer "
        "preserves the length of every input exactly rather than on average. Deep linear and tanh networks "
        "then learn as fast as shallow ones. With ReLU set gain to sqrt(2) to offset the halving; like any "
        "fixed-scale scheme it does not adapt to the activation on its own.",
        params=(_gain_param("multiplies the orthogonal matrix; sqrt(2) for ReLU, 5/3 for tanh"),),
        recommended_activations=("identity", "tanh"),
        citation=(
            "Saxe, McClelland & Ganguli, Exact solutions to the nonlinear dynamics of learning in deep linear "
            "neural networks, ICLR 2014"
        ),
        variance=_orthogonal_variance,
    ),
    _spec(
        "variance_scaling",
        "Variance scaling (Keras)",
        _variance_scaling,
        "The family behind Xavier, He and LeCun, exactly as Keras' VarianceScaling: variance scale/n, with n "
        "= fan_in, fan_out or their average, drawn from a normal truncated at 2 standard deviations (its std "
        "divided by 0.8796 so that the truncated variance is still scale/n), an untruncated normal (Keras' "
        "untruncated_normal), or a uniform. scale=2, fan_in is He (ReLU); scale=1, fan_avg is Xavier (tanh, "
        "sigmoid); scale=1, fan_in is LeCun (SELU). A scale that does not match the activation vanishes or "
        "explodes with depth like any mis-scaled scheme.",
        params=(
            Param("scale", "float", 1.0, min=1e-4, max=100.0, log_scale=True, help="target variance times n"),
            Param("mode", "choice", "fan_in", choices=("fan_in", "fan_out", "fan_avg"), help="which fan is n"),
            Param(
                "distribution",
                "choice",
                "truncated_normal",
                choices=("truncated_normal", "normal", "uniform"),
                help="truncated_normal is cut at 2 std; normal is Keras' untruncated_normal",
            ),
        ),
        citation="Keras VarianceScaling initializer; generalizes Glorot & Bengio 2010 and He et al. 2015",
        variance=_variance_scaling_target,
    ),
    _spec(
        "pytorch_default",
        "PyTorch default (nn.Linear)",
        _pytorch_default,
        "What torch.nn.Linear and Conv layers do when you do not choose: U(−1/sqrt(fan_in), 1/sqrt(fan_in)), "
        "i.e. kaiming_uniform_ with a = sqrt(5), variance 1/(3·fan_in). That is a third of LeCun's variance "
        "and a sixth of He's, so in deep plain networks (no normalization layers) the signal shrinks with "
        "depth, especially with ReLU; it is fine for shallow networks.",
        citation=GLOROT_2010 + " (the U(±1/sqrt(n)) heuristic); torch.nn.Linear.reset_parameters",
        variance=_pytorch_default_variance,
    ),
    _spec(
        "lsuv",
        "LSUV (layer-sequential unit variance)",
        _lsuv,
        "Data-dependent: starts from an orthogonal matrix, then, layer by layer on a calibration batch, divides "
        "the weights by the std of the layer's output (input @ W.T) until its variance is within the tolerance "
        "of 1 (at most max_passes passes). Because it measures the real signal, it adapts to any activation "
        "and depth without a formula, but it only sees the forward pass at initialization: it needs a batch "
        "representative of the data, and it cannot help a unit whose input is dead.",
        params=(
            Param("tolerance", "float", 0.1, min=0.001, max=0.5, help="stop when |Var(output) − 1| is below this"),
            Param("max_passes", "int", 10, min=1, max=100, help="most rescaling passes per layer"),
        ),
        recommended_activations=("relu", "leaky_relu", "tanh", "identity"),
        citation="Mishkin & Matas, All you need is a good init, ICLR 2016",
        data_dependent=True,
    ),
)


@hookimpl
def register_initializers(register: Callable[..., None]) -> None:
    for spec in BUILTIN_INITIALIZERS:
        register(spec)
