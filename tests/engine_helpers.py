"""Shared pieces of the engine tests: small datasets, throwaway plugins and an independent reference.

The reference trains ONE run the way a user would (``torch.nn.Sequential`` + ``torch.optim`` with its
default, non-fused implementation, ``F.cross_entropy``), from the initial weights the engine
documents (``core.stacked_mlp.initialize_run`` with the run's index) and on the batches the engine
documents (a fresh ``randperm`` per epoch from the ``(seed, "batches")`` generator, last partial
batch dropped). It shares no code with the stacked forward/backward or the optimizer set-up.
"""

from __future__ import annotations

import math
import types
from typing import Any

import torch
import torch.nn.functional as F

from core import DatasetBundle, InitializerSpec, hookimpl, load_registry
from core.experiment import ExperimentConfig
from core.registry import Registry
from core.specs import ActivationSpec
from core.stacked_mlp import ActivationModule, initialize_run, layer_dims, make_generator
from core.training import PROBE_SAMPLES


def blobs(n_train: int = 512, n_val: int = 128, dims: int = 16, classes: int = 4, seed: int = 0) -> DatasetBundle:
    """Gaussian blobs: a small, learnable, standardized dataset."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dims, generator=gen) * 1.5

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, classes, (n,), generator=gen)
        return centres[y] + torch.randn(n, dims, generator=gen), y

    x_train, y_train = draw(n_train)
    x_val, y_val = draw(n_val)
    mean, std = x_train.mean(), x_train.std()
    return DatasetBundle(
        (x_train - mean) / std,
        y_train,
        (x_val - mean) / std,
        y_val,
        tuple(f"c{i}" for i in range(classes)),
        (dims,),
    )


def _normal_std(std: float):
    def fill(tensor: torch.Tensor, ctx: Any) -> None:
        tensor.normal_(0.0, std, generator=ctx.generator)

    return fill


def _raise(tensor: torch.Tensor, ctx: Any) -> None:
    raise RuntimeError("deliberate failure for the test")


def _nan_activation(x: torch.Tensor) -> torch.Tensor:
    return x * math.nan if x.numel() > 24 else x  # passes the registry's 24-value probe, then NaN


def _breaks_later(x: torch.Tensor) -> torch.Tensor:
    if x.numel() > 24:  # passes the registry's probe, fails on the first real batch
        raise ValueError("cannot handle real batches")
    return torch.tanh(x)


@hookimpl
def _register_initializers(register: Any) -> None:
    register(
        InitializerSpec(
            name="huge_normal",
            fn=_normal_std(50.0),
            display_name="Huge normal",
            description="N(0, 50^2): diverges at once.",
            variance=lambda ctx: 2500.0,
        )
    )
    register(
        InitializerSpec(
            name="std10_normal",
            fn=_normal_std(10.0),
            display_name="Std-10 normal",
            description="N(0, 10^2): saturates tanh.",
            variance=lambda ctx: 100.0,
        )
    )
    register(InitializerSpec(name="broken_init", fn=_raise, display_name="Broken", description="Raises on every call."))


@hookimpl
def _register_activations(register: Any) -> None:
    register(ActivationSpec(name="nan_act", fn=_nan_activation, display_name="NaN", description="Returns NaN."))
    register(
        ActivationSpec(name="breaks_later", fn=_breaks_later, display_name="Breaks", description="Raises on batches.")
    )


def test_registry() -> Registry:
    """The built-in plugins plus the test initializers/activations above, as plugin ``engine_test_plugin``."""
    plugin = types.ModuleType("engine_test_plugin")
    plugin.register_initializers = _register_initializers
    plugin.register_activations = _register_activations
    return load_registry(env={}, extra_plugins=[("engine_test_plugin", plugin)])


test_registry.__test__ = False  # not a pytest test


def batch_schedule(num_train: int, config: ExperimentConfig, steps: int) -> list[torch.Tensor]:
    """The documented batch order (independent re-implementation)."""
    gen = make_generator(config.seed, "batches")
    per_epoch = max(1, num_train // config.batch_size)
    size = min(config.batch_size, num_train)
    order: list[torch.Tensor] = []
    while len(order) < steps:
        perm = torch.randperm(num_train, generator=gen)
        order += [perm[i * size : (i + 1) * size] for i in range(per_epoch)]
    return order[:steps]


def probe_indices(num_train: int, seed: int) -> torch.Tensor:
    return torch.randperm(num_train, generator=make_generator(seed, "subset"))[:PROBE_SAMPLES]


def reference_model(
    registry: Registry, config: ExperimentConfig, index: int, bundle: DatasetBundle, dtype: torch.dtype
) -> torch.nn.Sequential:
    """Run ``index`` of the (validated) config as an ``nn.Sequential`` with the engine's initial weights."""
    run = config.runs[index]
    init = registry.initializer(run.initializer)
    act: ActivationSpec = registry.activation(run.activation)
    dims = layer_dims(config, bundle.num_features, bundle.num_classes)
    calibration = bundle.x_train[probe_indices(bundle.x_train.shape[0], config.seed)].to(dtype)
    start = initialize_run(registry, config, index, init, act, dict(run.activation_params), dims, calibration, dtype)
    modules: list[torch.nn.Module] = []
    for layer, (w, b) in enumerate(zip(start.weights, start.biases, strict=True)):
        linear = torch.nn.Linear(w.shape[1], w.shape[0], dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(w)
            linear.bias.copy_(b)
        modules.append(linear)
        if layer < len(start.weights) - 1:
            modules.append(ActivationModule(act.fn, dict(run.activation_params)))
    return torch.nn.Sequential(*modules)


def reference_losses(
    registry: Registry, config: ExperimentConfig, index: int, bundle: DatasetBundle, steps: int
) -> list[float]:
    """Per-step training losses of run ``index`` trained alone."""
    dtype = torch.float64 if config.dtype == "float64" else torch.float32
    model = reference_model(registry, config, index, bundle, dtype)
    if config.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    x_all = bundle.x_train.to(dtype)
    losses = []
    for idx in batch_schedule(x_all.shape[0], config, steps):
        loss = F.cross_entropy(model(x_all[idx]), bundle.y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
