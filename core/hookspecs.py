"""The initlab plugin contract.

Every hook is a docstring-only function. A plugin module implements any of them with
``@hookimpl`` (``from core import hookimpl``) and is found through the ``initlab.plugins``
entry-point group, a one-off ``.py`` file in ``INITLAB_PLUGINS_DIR``, or (for the built-ins)
``plugins.DEFAULT_PLUGINS``. All three hooks are called once per plugin at start-up; every
implementation runs (no first-result-wins) and none returns anything: they call ``register``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "initlab"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_initializers(register: Callable[..., Any]) -> None:
    """Register weight initializers.

    Call ``register(InitializerSpec(...))`` (or ``register(name=..., fn=..., ...)`` with the
    same fields as keywords) once per initializer. The host validates the entry and records
    its provenance (plugin, distribution, version); an invalid entry becomes a recorded
    plugin error and is skipped, it never stops the app.

    The initializer function has the signature ``fn(tensor, ctx) -> None | Tensor``:

    - ``tensor`` is a float weight tensor to fill **in place**, shape ``(out, in)`` for a
      dense layer, or with more dimensions for conv-shaped weights (fans computed as
      ``torch.nn.init`` does: ``fan_in = in * receptive_field``).
    - ``ctx`` is a :class:`core.specs.InitContext`: ``fan_in``, ``fan_out``,
      ``layer_index`` (0-based), ``num_layers``, ``activation`` (name) and
      ``activation_gain``, ``generator`` (a ``torch.Generator``; **all** randomness must come
      from it so runs are reproducible) and ``params`` (the user's parameter values,
      validated against the declared :class:`core.specs.Param` list, defaults filled in).
    - Returning a tensor instead of filling in place is allowed; it must have the same shape.
      A result that changes the shape or contains NaN/Inf is rejected at call time and
      recorded as an error of the plugin.

    Fields of :class:`core.specs.InitializerSpec`: ``name`` (slug, ``[a-z][a-z0-9_]*``),
    ``display_name``, ``description`` (one paragraph), ``params`` (tuple of ``Param``:
    name, type, default, allowed range or choices; the dashboard builds widgets from them),
    ``recommended_activations``, ``citation``, optional ``variance(ctx) -> float`` (the
    weight variance it produces; used by the theory overlay and the conformance kit), and
    ``data_dependent``. A data-dependent initializer (LSUV) is called layer by layer, in
    order, and its context also carries ``model`` (a ``torch.nn.Sequential`` of the run,
    sharing storage with the tensors being initialized) and ``batch`` (a calibration batch
    of inputs); ``ctx.layer_input()`` returns this layer's input on that batch.
    """


@hookspec
def register_activations(register: Callable[..., Any]) -> None:
    """Register activation functions.

    Call ``register(ActivationSpec(...))`` once per activation. Fields: ``name`` (slug),
    ``display_name``, ``description``, ``fn(x, **params) -> Tensor`` (elementwise, shape
    preserving, differentiable by autograd), ``params`` (tuple of ``Param``), ``gain``
    (a float, or ``gain(params) -> float``, as ``torch.nn.init.calculate_gain`` defines
    it, where one exists; else ``None``), ``max_derivative`` (the supremum of ``|fn'|``
    where finite, e.g. 0.25 for sigmoid; used by the diagnosis text), ``saturated(post)``
    (bool mask of saturated outputs, e.g. ``|tanh| > 0.99``; ``None`` if it cannot
    saturate) and ``inactive(pre)`` (bool mask where the unit passes no gradient, e.g.
    ``pre <= 0`` for ReLU; a unit inactive for a whole batch is counted dead; ``None``
    for activations that cannot die).

    An activation whose output does not have its input's shape is rejected at call time
    and recorded as an error of the plugin.
    """


@hookspec
def register_datasets(register: Callable[..., Any]) -> None:
    """Register datasets.

    Call ``register(DatasetSpec(...))`` once per dataset. Fields: ``name`` (slug),
    ``display_name``, ``description``, ``params`` (tuple of ``Param``; a ``path`` param
    becomes a folder picker), and ``load(**params) -> DatasetBundle``. The bundle holds
    ``x_train``/``x_val`` (float32, ``(N, D)``, normalized), ``y_train``/``y_val``
    (int64 class indices), ``class_names`` and ``image_shape`` (so ``D ==
    prod(image_shape)`` and the dashboard can show samples). ``load`` raises
    :class:`core.errors.DatasetError` with a message saying what was wrong and what is
    allowed (a missing folder, a corrupt file).
    """
