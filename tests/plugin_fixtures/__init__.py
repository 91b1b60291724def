"""Throwaway plugins for the registry tests: fake installed distributions and plugin objects.

``make_distribution`` writes a ``*.dist-info`` folder (METADATA + entry_points.txt) and the
plugin's modules into a folder; put that folder on ``sys.path`` (``monkeypatch.syspath_prepend``)
or ``PYTHONPATH`` and ``importlib.metadata`` finds the entry points exactly as it finds an
installed package's.
"""

from __future__ import annotations

import itertools
import textwrap
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from core import InitContext, Registry, hookimpl, resolve_params

_counter = itertools.count()

GOOD_PLUGIN = """
import torch
from core import ActivationSpec, InitializerSpec, Param, hookimpl


def _fill(tensor, ctx):
    scale = ctx.params["scale"] / ctx.fan_in ** 0.5
    tensor.copy_(torch.randn(tensor.shape, generator=ctx.generator) * scale)


@hookimpl
def register_initializers(register):
    register(
        InitializerSpec(
            name={init_name!r},
            fn=_fill,
            display_name="Scaled normal",
            description="N(0, scale^2 / fan_in), a test plugin.",
            params=(Param("scale", "float", 1.0, min=0.0, max=10.0),),
            variance=lambda ctx: ctx.params["scale"] ** 2 / ctx.fan_in,
        )
    )
"""

BROKEN_IMPORT_PLUGIN = """
import initlab_no_such_dependency  # noqa: F401
"""


def unique(prefix: str) -> str:
    """A module name no other test uses (imported modules stay in sys.modules)."""
    return f"{prefix}_{next(_counter)}_{id(_counter) % 10_000}"


def make_distribution(
    root: Path,
    name: str,
    version: str = "1.0.0",
    entry_points: Mapping[str, str] | None = None,
    modules: Mapping[str, str] | None = None,
    entry_points_text: str | None = None,
) -> Path:
    """Write distribution ``name`` into ``root``: metadata, ``[initlab.plugins]`` entry points, modules.

    ``entry_points`` maps entry-point name -> ``module`` or ``module:attr``; ``entry_points_text``
    replaces the whole entry_points.txt (to write a malformed one). Returns ``root``.
    """
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    if entry_points_text is None:
        lines = [f"{ep} = {target}" for ep, target in (entry_points or {}).items()]
        entry_points_text = "[initlab.plugins]\n" + "\n".join(lines) + "\n"
    (info / "entry_points.txt").write_text(entry_points_text)
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))
    return root


def good_plugin_source(init_name: str) -> str:
    """Source of a plugin module registering one working initializer called ``init_name``."""
    return GOOD_PLUGIN.format(init_name=init_name)


def plugin(**hooks: Callable[..., object]) -> types.ModuleType:
    """A plugin module whose functions are ``hooks``, each marked with ``@hookimpl``."""
    module = types.ModuleType(unique("throwaway_plugin"))
    for name, fn in hooks.items():
        setattr(module, name, hookimpl(fn))
    return module


def init_context(
    tensor: torch.Tensor,
    registry: Registry,
    scheme: str,
    params: Mapping[str, Any] | None = None,
    activation: str = "relu",
    seed: int = 0,
) -> InitContext:
    """A context for ``scheme`` on ``tensor``: fans from its shape, resolved params, a seeded generator."""
    spec = registry.initializer(scheme)
    act = registry.activation(activation)
    return InitContext.for_tensor(
        tensor,
        layer_index=0,
        num_layers=2,
        activation=activation,
        activation_gain=act.resolve_gain() or 1.0,
        generator=torch.Generator().manual_seed(seed),
        params=resolve_params(spec.params, params, spec.name),
    )


def assert_builtins_work(registry: Registry) -> None:
    """The built-ins are registered, error-free, and usable after some plugin failed."""
    builtin_errors = [e for e in registry.errors if e.plugin.startswith("plugins.")]
    assert builtin_errors == [], builtin_errors
    for name in ("zeros", "xavier_uniform", "he_normal"):
        assert registry.initializer(name).provenance.plugin == "plugins.initializers"
    assert registry.activation("relu").provenance.plugin == "plugins.activations"
    assert registry.dataset("digits").provenance.plugin == "plugins.datasets"

    weight = torch.empty(64, 32)
    registry.call_initializer(
        registry.initializer("xavier_uniform"), weight, init_context(weight, registry, "xavier_uniform")
    )
    # xavier_uniform (gain 1) draws from U(-a, a), a = sqrt(6 / (fan_in + fan_out)) = sqrt(6 / 96) = 0.25,
    # whose std is a / sqrt(3) = 0.144: an unfilled or zeroed tensor fails the second check.
    assert weight.abs().max() <= 0.25 + 1e-6
    assert weight.std() > 0.1
    assert registry.check_activation(registry.activation("relu")) == {}
