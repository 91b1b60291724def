"""Many MLPs as one stacked computation: weights ``(R, out, in)``, one batched matmul per layer.

Run ``r`` of the stack is the MLP ``x -> W_0 -> φ -> W_1 -> φ ... -> W_depth -> logits`` with its own
weights ``W_l[r]`` (shape ``(out, in)``, as ``torch.nn.Linear``), biases ``b_l[r]`` and activation.
The input layer multiplies the shared batch by all runs' first-layer weights in one matrix product
(``x @ W_0.view(R*out, in).T``); later layers use ``torch.baddbmm``. Runs sharing an activation (and
its parameters) form a contiguous :class:`ActivationGroup` of the run dimension, so each group's
activation is applied to a view of the stacked pre-activations.

Gradients: two small autograd functions (:class:`StackedLinear`, :class:`InputLinear`) write each
weight and bias gradient straight into preallocated stacked buffers (``weight_grads``,
``bias_grads``), in the weights' own layout. The optimizer (:class:`StackedOptimizer`) updates one
view per run and parameter tensor (:meth:`StackedMLP.run_views`), so its vectorized kernels treat
every run's tensor on its own and a run's update is bit for bit the same whichever other runs share
the stack (a kernel working on the concatenation rounds the elements at its tail differently).

The loss is the sum over runs of each run's mean cross-entropy, so the gradient with respect to run
``r``'s parameters is exactly that run's own gradient: nothing mixes runs.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from core.experiment import ExperimentConfig, RunConfig
from core.registry import Registry
from core.specs import ActivationSpec, InitContext, InitializerSpec, compute_fans
from core.theory import numeric_gain


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed from ``seed`` and ``keys`` (stable across processes and platforms)."""
    text = ":".join(str(k) for k in (seed, *keys))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") & (2**63 - 1)


def make_generator(seed: int, *keys: object) -> torch.Generator:
    gen = torch.Generator()
    gen.manual_seed(derive_seed(seed, *keys))
    return gen


class StackedLinear(torch.autograd.Function):
    """``z[r] = h[r] @ W[r].T + b[r]`` for every run: ``h (R,B,in)``, ``W (R,out,in)``, ``b (R,1,out)``.

    Backward writes the weight and bias gradients into ``gw``/``gb`` and returns only ``dh``;
    ``anchor`` is a scalar that requires grad, so the graph is recorded although the weights are
    plain tensors."""

    @staticmethod
    def forward(
        ctx: Any,
        h: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
        gw: torch.Tensor,
        gb: torch.Tensor,
        anchor: torch.Tensor,
    ) -> torch.Tensor:
        ctx.save_for_backward(h, weight)
        ctx.sinks = (gw, gb)
        return torch.baddbmm(bias, h, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx: Any, dz: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        h, weight = ctx.saved_tensors
        gw, gb = ctx.sinks
        torch.bmm(dz.transpose(1, 2), h, out=gw)
        torch.sum(dz, dim=1, keepdim=True, out=gb)
        dh = torch.bmm(dz, weight) if ctx.needs_input_grad[0] else None
        return dh, None, None, None, None, None


class InputLinear(torch.autograd.Function):
    """The first layer, whose input ``x (B, in)`` is shared by all runs: one matrix product for all
    runs, ``(B, in) @ (in, R*out)``, returned as ``(R, B, out)``; gradients as StackedLinear."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
        gw: torch.Tensor,
        gb: torch.Tensor,
        anchor: torch.Tensor,
    ) -> torch.Tensor:
        runs, out, inp = weight.shape
        ctx.save_for_backward(x)
        ctx.sinks = (gw, gb)
        z = torch.addmm(bias.view(runs * out), x, weight.view(runs * out, inp).T)
        # Contiguous (R, B, out), so activation plugins get an ordinary tensor (a cheap copy).
        return z.view(x.shape[0], runs, out).transpose(0, 1).contiguous()

    @staticmethod
    def backward(ctx: Any, dz: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (x,) = ctx.saved_tensors
        gw, gb = ctx.sinks
        runs, out, inp = gw.shape
        flat = dz.transpose(0, 1).reshape(x.shape[0], runs * out)
        torch.mm(flat.T, x, out=gw.view(runs * out, inp))
        torch.sum(flat, dim=0, out=gb.view(runs * out))
        return None, None, None, None, None, None


class ActivationFailure(Exception):
    """An activation plugin raised (or changed the shape) during training; names its group."""

    def __init__(self, group: int, message: str) -> None:
        self.group = group
        super().__init__(message)


@dataclass
class ActivationGroup:
    """Runs ``start:stop`` of the stack share this activation with these parameters."""

    start: int
    stop: int
    spec: ActivationSpec
    params: dict[str, Any]
    failed: bool = False

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        if self.failed:
            return torch.zeros_like(z)
        return self.spec.fn(z, **self.params)


class StackedMLP:
    """The stacked parameters, their gradient buffers and the forward pass of ``R`` runs (internal
    run order: by activation group)."""

    def __init__(
        self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], groups: Sequence[ActivationGroup]
    ) -> None:
        self.weights = [w.detach().contiguous() for w in weights]  # layer l: (R, out_l, in_l)
        self.biases = [b.detach().contiguous() for b in biases]  # layer l: (R, 1, out_l)
        self.weight_grads = [torch.zeros_like(w) for w in self.weights]
        self.bias_grads = [torch.zeros_like(b) for b in self.biases]
        self.groups = list(groups)
        self.depth = len(self.weights) - 1
        self.num_runs = int(self.weights[0].shape[0])
        self._anchor = torch.zeros((), dtype=self.weights[0].dtype, requires_grad=True)

    def parameters(self) -> list[torch.Tensor]:
        """The stacked parameter tensors (weights, then biases)."""
        return [*self.weights, *self.biases]

    def gradients(self) -> list[torch.Tensor]:
        """The stacked gradient buffers, aligned with :meth:`parameters`."""
        return [*self.weight_grads, *self.bias_grads]

    def run_views(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """One view per (parameter tensor, run) into the stacked parameters, and the matching views
        into the stacked gradients: what the optimizer updates, run by run."""
        params = [p[r] for p in self.parameters() for r in range(self.num_runs)]
        grads = [g[r] for g in self.gradients() for r in range(self.num_runs)]
        return params, grads

    def activate(self, z: torch.Tensor) -> torch.Tensor:
        """Apply each group's activation to its slice of the run dimension."""
        outs = []
        for i, group in enumerate(self.groups):
            part = z if len(self.groups) == 1 else z[group.start : group.stop]
            try:
                out = group(part)
            except Exception as exc:
                raise ActivationFailure(i, f"raised {type(exc).__name__}: {exc}") from exc
            if not isinstance(out, torch.Tensor) or out.shape != part.shape:
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ActivationFailure(i, f"returned shape {got} for an input of shape {tuple(part.shape)}")
            outs.append(out)
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=0)

    def forward(
        self,
        x: torch.Tensor,
        record: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """Logits ``(R, B, classes)``; ``record(layer, pre, post)`` sees every layer (post = pre for
        the output layer). Under grad mode, backward fills ``weight_grads``/``bias_grads``."""
        z = InputLinear.apply(
            x, self.weights[0], self.biases[0], self.weight_grads[0], self.bias_grads[0], self._anchor
        )
        for layer in range(self.depth):
            h = self.activate(z)
            if record is not None:
                record(layer, z, h)
            nxt = layer + 1
            z = StackedLinear.apply(
                h, self.weights[nxt], self.biases[nxt], self.weight_grads[nxt], self.bias_grads[nxt], self._anchor
            )
        if record is not None:
            record(self.depth, z, z)
        return z


class StackedOptimizer:
    """SGD (with optional momentum) or Adam for a :class:`StackedMLP`.

    It calls the very fused kernels that ``torch.optim.SGD(fused=True)`` and
    ``torch.optim.Adam(fused=True)`` call (``torch._fused_sgd_``, ``torch._fused_adam_``), with the
    same hyper-parameters and the same first-step rule, on one view per run and parameter tensor.
    Going through ``torch.optim`` itself would redo its per-tensor Python bookkeeping at every step
    (about 4 microseconds per tensor, i.e. runs x 2 x (depth + 1) tensors: a fifth of a small step).
    State (momentum buffers, Adam moments) is stacked like the parameters.
    """

    def __init__(
        self,
        model: StackedMLP,
        kind: str,
        lr: float,
        momentum: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        if kind not in ("sgd", "adam"):
            raise ValueError(f"optimizer {kind!r}; allowed: sgd, adam")
        self.kind, self.lr, self.momentum, self.betas, self.eps = kind, lr, momentum, betas, eps
        self.params, self.grads = model.run_views()
        runs = model.num_runs

        def views(stacked: list[torch.Tensor]) -> list[torch.Tensor]:
            return [t[r] for t in stacked for r in range(runs)]

        self.state: list[list[torch.Tensor]] = []
        if kind == "adam":
            self.state = [views([torch.zeros_like(p) for p in model.parameters()]) for _ in range(2)]
            self.step_count = torch.zeros((), dtype=torch.float32)  # shared by every tensor
        elif momentum:
            self.state = [views([torch.zeros_like(p) for p in model.parameters()])]
        self.first_step = True

    def step(self) -> None:
        if self.kind == "adam":
            self.step_count.add_(1)
            torch._fused_adam_(
                self.params,
                self.grads,
                self.state[0],
                self.state[1],
                [],
                [self.step_count] * len(self.params),
                amsgrad=False,
                lr=self.lr,
                beta1=self.betas[0],
                beta2=self.betas[1],
                weight_decay=0.0,
                eps=self.eps,
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )
        else:
            torch._fused_sgd_(
                self.params,
                self.grads,
                self.state[0] if self.state else [],
                weight_decay=0.0,
                momentum=self.momentum,
                lr=self.lr,
                dampening=0.0,
                nesterov=False,
                maximize=False,
                is_first_step=self.first_step and bool(self.state),
                grad_scale=None,
                found_inf=None,
            )
        self.first_step = False


def per_run_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each run: ``logits (R, B, C)``, ``targets (B,)`` -> ``(R,)``."""
    logp = F.log_softmax(logits, dim=2)
    index = targets.view(1, -1, 1).expand(logits.shape[0], -1, 1)
    return -logp.gather(2, index).squeeze(2).mean(dim=1)


class ActivationModule(torch.nn.Module):
    """An activation plugin as a module (for the ``nn.Sequential`` given to data-dependent initializers)."""

    def __init__(self, fn: Callable[..., torch.Tensor], params: dict[str, Any]) -> None:
        super().__init__()
        self.fn = fn
        self.params = dict(params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, **self.params)


# -- initialization --------------------------------------------------------------------------------


@dataclass
class RunInit:
    """One run's freshly initialized parameters (layer ``l``: weight ``(out, in)``, bias ``(out,)``)."""

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    weight_vars: list[float | None]  # the initializer's declared variance per layer (None: undeclared)
    bias_means: list[float] = field(default_factory=list)
    bias_vars: list[float] = field(default_factory=list)


def layer_dims(config: ExperimentConfig, num_features: int, num_classes: int) -> list[int]:
    return [num_features] + [config.width] * config.depth + [num_classes]


def _init_bias(config: ExperimentConfig, bias: torch.Tensor, fan_in: int, gen: torch.Generator) -> tuple[float, float]:
    """Fill ``bias`` per ``config.bias_init``; return its (mean, variance) for the theory."""
    if config.bias_init == "constant":
        bias.fill_(config.bias_value)
        return float(config.bias_value), 0.0
    if config.bias_init == "pytorch_default":
        bound = 1.0 / math.sqrt(fan_in)
        bias.uniform_(-bound, bound, generator=gen)
        return 0.0, bound * bound / 3.0
    bias.zero_()
    return 0.0, 0.0


def initialize_run(
    registry: Registry,
    config: ExperimentConfig,
    run_index: int,
    init_spec: InitializerSpec,
    act_spec: ActivationSpec,
    act_params: dict[str, Any],
    dims: Sequence[int],
    calibration: torch.Tensor,
    dtype: torch.dtype,
) -> RunInit:
    """Initialize run ``run_index`` of ``config``; raises PluginCallError when its initializer fails.

    Randomness: layer ``l``'s weights use a generator seeded from ``(config.seed, "weight",
    run_index, l)`` and its bias one seeded from ``(config.seed, "bias", run_index, l)``, so a run's
    initialization depends only on the seed and its position in ``config.runs``, never on the other
    runs. All biases are set first; then the weights layer by layer, in order (data-dependent
    initializers get ``ctx.model``, a ``nn.Sequential`` whose Linear weights are the very tensors
    being filled, and ``ctx.batch``, the calibration batch).
    """
    run: RunConfig = config.runs[run_index]
    num_layers = len(dims) - 1
    weights = [torch.zeros(dims[i + 1], dims[i], dtype=dtype) for i in range(num_layers)]
    biases = [torch.zeros(dims[i + 1], dtype=dtype) for i in range(num_layers)]
    bias_stats = [
        _init_bias(config, b, dims[i], make_generator(config.seed, "bias", run_index, i)) for i, b in enumerate(biases)
    ]
    gain = act_spec.resolve_gain(act_params)
    if gain is None:
        gain = numeric_gain(lambda z: act_spec.fn(z, **act_params))
    model = None
    if init_spec.data_dependent:
        modules: list[torch.nn.Module] = []
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            lin = torch.nn.Linear(dims[i], dims[i + 1], device="meta")
            lin.weight = torch.nn.Parameter(w, requires_grad=False)
            lin.bias = torch.nn.Parameter(b, requires_grad=False)
            modules.append(lin)
            if i < num_layers - 1:
                modules.append(ActivationModule(act_spec.fn, act_params))
        model = torch.nn.Sequential(*modules)
    weight_vars: list[float | None] = []
    for layer, w in enumerate(weights):
        fan_in, fan_out = compute_fans(w.shape)
        ctx = InitContext(
            fan_in=fan_in,
            fan_out=fan_out,
            layer_index=layer,
            num_layers=num_layers,
            activation=run.activation,
            activation_gain=float(gain),
            generator=make_generator(config.seed, "weight", run_index, layer),
            params=dict(run.init_params),
            activation_params=dict(act_params),
            model=model,
            batch=calibration if init_spec.data_dependent else None,
        )
        registry.call_initializer(init_spec, w, ctx)
        weight_vars.append(_declared_variance(init_spec, ctx, w))
    return RunInit(
        weights,
        biases,
        weight_vars,
        bias_means=[m for m, _ in bias_stats],
        bias_vars=[v for _, v in bias_stats],
    )


def _declared_variance(spec: InitializerSpec, ctx: InitContext, weights: torch.Tensor) -> float | None:
    """The declared weight variance, or None when the theory cannot use it: undeclared, faulty, or
    weights whose mean is not zero (constant init, a shifted normal): the mean-field recursion assumes
    zero-mean weights, so a non-zero mean (beyond 6 standard errors of a zero-mean sample) voids it."""
    if spec.variance is None:
        return None
    try:
        value = float(spec.variance(ctx))
    except Exception:  # a plugin's faulty variance() only costs the theory overlay
        return None
    if not (math.isfinite(value) and value >= 0):
        return None
    mean = abs(float(weights.mean()))
    if mean > 6 * math.sqrt(value / weights.numel()) + 1e-12:
        return None
    return value


def stack_runs(inits: Sequence[RunInit], groups: Sequence[ActivationGroup]) -> StackedMLP:
    """Stack initialized runs (already in internal order)."""
    num_layers = len(inits[0].weights)
    weights = [torch.stack([r.weights[i] for r in inits]) for i in range(num_layers)]
    biases = [torch.stack([r.biases[i] for r in inits]).unsqueeze(1) for i in range(num_layers)]
    return StackedMLP(weights, biases, groups)
