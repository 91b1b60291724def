"""What a plugin registers: parameters, initializers, activations, datasets, and their contexts."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from core.errors import ParamError, RegistrationError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
ParamType = Literal["float", "int", "bool", "choice", "str", "path"]
PARAM_TYPES: tuple[str, ...] = ("float", "int", "bool", "choice", "str", "path")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def check_name(name: object, what: str) -> None:
    """Raise RegistrationError unless ``name`` is a slug: ``[a-z][a-z0-9_]*``, at most 64 chars."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise RegistrationError(
            f"{what} name {name!r} is not a valid slug: use lowercase letters, digits and '_', "
            "starting with a letter, at most 64 characters"
        )


@dataclass(frozen=True)
class Param:
    """A user-settable parameter of a plugin item; the dashboard builds a widget from it.

    ``min``/``max`` bound ``float`` and ``int`` values (inclusive); ``choices`` lists the
    allowed values of a ``choice`` parameter. ``log_scale`` hints that the widget should
    step multiplicatively (learning-rate-like values).
    """

    name: str
    type: ParamType
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""
    log_scale: bool = False

    def check_definition(self, owner: str) -> None:
        """Raise RegistrationError if this declaration is inconsistent."""
        check_name(self.name, f"{owner}: parameter")
        if self.type not in PARAM_TYPES:
            raise RegistrationError(
                f"{owner}: parameter {self.name!r} has type {self.type!r}; allowed: {', '.join(PARAM_TYPES)}"
            )
        if self.type == "choice" and not self.choices:
            raise RegistrationError(f"{owner}: choice parameter {self.name!r} declares no choices")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise RegistrationError(f"{owner}: parameter {self.name!r} has min {self.min} > max {self.max}")
        try:
            self.coerce(self.default, owner=owner)
        except ParamError as exc:
            raise RegistrationError(f"{owner}: default of parameter {self.name!r} is invalid: {exc}") from None

    def describe_allowed(self) -> str:
        """Human-readable description of the allowed values."""
        if self.type == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.type in ("float", "int"):
            lo = "-inf" if self.min is None else f"{self.min:g}"
            hi = "inf" if self.max is None else f"{self.max:g}"
            return f"{'a number' if self.type == 'float' else 'an integer'} in [{lo}, {hi}]"
        if self.type == "bool":
            return "true or false"
        return "a string" if self.type == "str" else "a folder or file path"

    def coerce(self, value: Any, *, owner: str) -> Any:
        """Return ``value`` converted to this parameter's type, or raise ParamError."""
        where = f"{owner}.{self.name}"
        bad = ParamError(where, f"got {value!r}; allowed: {self.describe_allowed()}")
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            raise bad
        if self.type in ("float", "int"):
            if isinstance(value, bool):
                raise bad
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise bad from None
            if not math.isfinite(number):
                raise bad
            if self.type == "int":
                if number != int(number):
                    raise bad
                number = int(number)
            if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
                raise bad
            return number
        if not isinstance(value, str):
            raise bad
        if self.type == "choice" and value not in self.choices:
            raise bad
        return value


def resolve_params(params: tuple[Param, ...], values: Mapping[str, Any] | None, owner: str) -> dict[str, Any]:
    """Validate user values against declared params, filling defaults; raise ParamError on any problem."""
    values = dict(values or {})
    known = {p.name for p in params}
    unknown = sorted(set(values) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) if known else "none"
        raise ParamError(f"{owner}.{unknown[0]}", f"unknown parameter; {owner} takes: {allowed}")
    return {p.name: p.coerce(values.get(p.name, p.default), owner=owner) for p in params}


@dataclass(frozen=True)
class Provenance:
    """Where a registered item came from."""

    plugin: str
    distribution: str | None = None
    version: str | None = None


def compute_fans(shape: tuple[int, ...] | torch.Size) -> tuple[int, int]:
    """(fan_in, fan_out) exactly as ``torch.nn.init`` computes them (conv: times receptive field)."""
    if len(shape) < 2:
        raise ValueError(f"fans need a tensor with at least 2 dimensions, got shape {tuple(shape)}")
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return int(shape[1]) * receptive, int(shape[0]) * receptive


@dataclass(frozen=True)
class InitContext:
    """Everything an initializer may use besides the tensor it fills."""

    fan_in: int
    fan_out: int
    layer_index: int
    num_layers: int
    activation: str
    activation_gain: float
    generator: torch.Generator
    params: Mapping[str, Any] = field(default_factory=dict)
    activation_params: Mapping[str, Any] = field(default_factory=dict)
    model: torch.nn.Sequential | None = None
    batch: torch.Tensor | None = None

    @classmethod
    def for_tensor(cls, tensor: torch.Tensor, **kwargs: Any) -> InitContext:
        """Build a context whose fans are computed from ``tensor``'s shape."""
        fan_in, fan_out = compute_fans(tensor.shape)
        return cls(fan_in=fan_in, fan_out=fan_out, **kwargs)

    def layer_input(self) -> torch.Tensor:
        """The input of layer ``layer_index`` on the calibration batch (data-dependent only)."""
        if self.model is None or self.batch is None:
            raise RuntimeError("layer_input() is only available to data-dependent initializers")
        x = self.batch
        linear_seen = 0
        with torch.no_grad():
            for module in self.model:
                if isinstance(module, torch.nn.Linear):
                    if linear_seen == self.layer_index:
                        return x
                    linear_seen += 1
                x = module(x)
        raise IndexError(f"layer_index {self.layer_index} is beyond the model's {linear_seen} layers")


InitializerFn = Callable[[torch.Tensor, InitContext], "torch.Tensor | None"]


@dataclass(frozen=True)
class InitializerSpec:
    """A registered weight initializer (see ``core.hookspecs.register_initializers``)."""

    name: str
    fn: InitializerFn
    display_name: str
    description: str
    params: tuple[Param, ...] = ()
    recommended_activations: tuple[str, ...] = ()
    citation: str = ""
    variance: Callable[[InitContext], float] | None = None
    data_dependent: bool = False
    provenance: Provenance | None = None

    kind = "initializer"


@dataclass(frozen=True)
class ActivationSpec:
    """A registered elementwise activation (see ``core.hookspecs.register_activations``)."""

    name: str
    fn: Callable[..., torch.Tensor]
    display_name: str
    description: str
    params: tuple[Param, ...] = ()
    gain: float | Callable[[Mapping[str, Any]], float] | None = None
    max_derivative: float | None = None
    saturated: Callable[[torch.Tensor], torch.Tensor] | None = None
    inactive: Callable[[torch.Tensor], torch.Tensor] | None = None
    provenance: Provenance | None = None

    kind = "activation"

    def resolve_gain(self, params: Mapping[str, Any] | None = None) -> float | None:
        """The gain for these parameter values, or None when the activation declares none."""
        if self.gain is None or isinstance(self.gain, int | float):
            return None if self.gain is None else float(self.gain)
        return float(self.gain(resolve_params(self.params, params, self.name)))


@dataclass(frozen=True)
class DatasetBundle:
    """Normalized train/validation tensors plus what the UI needs to draw samples."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    class_names: tuple[str, ...]
    image_shape: tuple[int, ...]

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def check(self, owner: str) -> None:
        """Raise ValueError naming the first inconsistency (shapes, dtypes, labels, finiteness)."""
        d = math.prod(self.image_shape)
        for split, x, y in (("train", self.x_train, self.y_train), ("val", self.x_val, self.y_val)):
            if x.dtype != torch.float32 or x.ndim != 2 or x.shape[1] != d:
                raise ValueError(
                    f"{owner}: x_{split} must be float32 of shape (N, {d}); got {x.dtype} {tuple(x.shape)}"
                )
            if y.dtype != torch.int64 or y.shape != (x.shape[0],):
                raise ValueError(f"{owner}: y_{split} must be int64 of shape ({x.shape[0]},)")
            if x.shape[0] == 0:
                raise ValueError(f"{owner}: the {split} split is empty")
            if not torch.isfinite(x).all():
                raise ValueError(f"{owner}: x_{split} contains NaN or Inf")
            if y.min() < 0 or y.max() >= len(self.class_names):
                raise ValueError(f"{owner}: y_{split} has labels outside 0..{len(self.class_names) - 1}")


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset (see ``core.hookspecs.register_datasets``)."""

    name: str
    load: Callable[..., DatasetBundle]
    display_name: str
    description: str
    params: tuple[Param, ...] = ()
    provenance: Provenance | None = None

    kind = "dataset"


Spec = InitializerSpec | ActivationSpec | DatasetSpec
