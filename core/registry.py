"""Plugin discovery and the registry of initializers, activations and datasets.

Built-ins (``plugins.DEFAULT_PLUGINS``) load first through the same hooks a third party uses,
then entry points of the group ``initlab.plugins`` (each loaded on its own, sorted by name),
then one-off ``.py`` files from ``INITLAB_PLUGINS_DIR``. Every failure becomes a
:class:`PluginFailure` on the registry and everything else keeps working.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
import torch

from core import hookspecs
from core.errors import PluginCallError, RegistrationError, StrictPluginError, UnknownNameError
from core.hookspecs import PROJECT_NAME
from core.specs import (
    ActivationSpec,
    DatasetSpec,
    InitContext,
    InitializerSpec,
    Provenance,
    Spec,
    check_name,
    resolve_params,
)

ENTRY_POINT_GROUP = "initlab.plugins"
ENV_ALLOW = "INITLAB_LOAD_PLUGINS"
ENV_STRICT = "INITLAB_STRICT_PLUGINS"
ENV_DIR = "INITLAB_PLUGINS_DIR"

_HOOKS: tuple[tuple[str, type], ...] = (
    ("register_initializers", InitializerSpec),
    ("register_activations", ActivationSpec),
    ("register_datasets", DatasetSpec),
)


@dataclass(frozen=True)
class PluginFailure:
    """One recorded plugin problem; the app shows it instead of crashing."""

    plugin: str
    distribution: str | None
    version: str | None
    message: str
    traceback: str
    stage: str  # import | register | hook | registration | duplicate | unknown-hook | call

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class _Source:
    """A plugin object about to be registered, with its provenance."""

    name: str
    load: Callable[[], object]
    distribution: str | None
    version: str | None


class Registry:
    """Everything registered, by kind, plus the failures met on the way."""

    def __init__(self, strict: bool = False) -> None:
        self.initializers: dict[str, InitializerSpec] = {}
        self.activations: dict[str, ActivationSpec] = {}
        self.datasets: dict[str, DatasetSpec] = {}
        self.errors: list[PluginFailure] = []
        self.strict = strict
        self.plugin_manager: pluggy.PluginManager | None = None
        self._lock = threading.Lock()

    # -- lookup -------------------------------------------------------------------------------
    def _table(self, kind: str) -> dict[str, Any]:
        return {"initializer": self.initializers, "activation": self.activations, "dataset": self.datasets}[kind]

    def initializer(self, name: str, field: str = "scheme") -> InitializerSpec:
        """The initializer called ``name``; UnknownNameError (with suggestions) otherwise."""
        return self._get("initializer", name, field)

    def activation(self, name: str, field: str = "activation") -> ActivationSpec:
        return self._get("activation", name, field)

    def dataset(self, name: str, field: str = "dataset") -> DatasetSpec:
        return self._get("dataset", name, field)

    def _get(self, kind: str, name: str, field: str) -> Any:
        table = self._table(kind)
        if name not in table:
            raise UnknownNameError(field, name, table, kind)
        return table[name]

    def items(self) -> list[dict[str, Any]]:
        """Every registered item with provenance, in registration order per kind."""
        rows = []
        for kind in ("initializer", "activation", "dataset"):
            for spec in self._table(kind).values():
                prov = spec.provenance or Provenance("?")
                rows.append(
                    {
                        "kind": kind,
                        "name": spec.name,
                        "plugin": prov.plugin,
                        "distribution": prov.distribution,
                        "version": prov.version,
                        "description": spec.description,
                    }
                )
        return rows

    def to_json(self) -> dict[str, Any]:
        """The ``initlab plugins --json`` document."""
        with self._lock:
            errors = [
                {k: e.to_dict()[k] for k in ("plugin", "distribution", "version", "message", "traceback", "stage")}
                for e in self.errors
            ]
        return {"items": self.items(), "errors": errors}

    # -- failures ------------------------------------------------------------------------------
    def record(self, failure: PluginFailure) -> None:
        with self._lock:
            self.errors.append(failure)

    def _record_call_failure(self, spec: Spec, message: str, tb: str = "") -> PluginCallError:
        prov = spec.provenance or Provenance("?")
        self.record(PluginFailure(prov.plugin, prov.distribution, prov.version, message, tb, "call"))
        return PluginCallError(prov.plugin, f"{spec.kind} {spec.name!r}", message)

    # -- guarded calls ---------------------------------------------------------------------------
    def call_initializer(self, spec: InitializerSpec, tensor: torch.Tensor, ctx: InitContext) -> None:
        """Run ``spec`` on ``tensor`` in place; a misbehaving plugin raises PluginCallError (and is recorded)."""
        shape = tuple(tensor.shape)
        try:
            with torch.no_grad():
                result = spec.fn(tensor, ctx)
        except Exception as exc:  # a plugin's bug must not take the app down
            raise self._record_call_failure(
                spec, f"raised {type(exc).__name__}: {exc}", traceback.format_exc()
            ) from exc
        if result is not None:
            if not isinstance(result, torch.Tensor) or tuple(result.shape) != shape:
                got = tuple(result.shape) if isinstance(result, torch.Tensor) else type(result).__name__
                raise self._record_call_failure(spec, f"returned shape {got}, expected {shape}")
            with torch.no_grad():
                tensor.copy_(result)
        if tuple(tensor.shape) != shape:
            raise self._record_call_failure(spec, f"changed the tensor's shape from {shape} to {tuple(tensor.shape)}")
        if not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            raise self._record_call_failure(spec, f"produced {bad} NaN/Inf values in a tensor of shape {shape}")

    def check_activation(self, spec: ActivationSpec, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Validate params and probe ``spec`` once for shape preservation and finiteness.

        Returns the resolved parameters; raises ParamError or PluginCallError (recorded).
        """
        resolved = resolve_params(spec.params, params, spec.name)
        probe = torch.linspace(-3.0, 3.0, 24, dtype=torch.float32).reshape(2, 3, 4)
        try:
            out = spec.fn(probe, **resolved)
        except Exception as exc:
            raise self._record_call_failure(
                spec, f"raised {type(exc).__name__}: {exc}", traceback.format_exc()
            ) from exc
        if not isinstance(out, torch.Tensor) or out.shape != probe.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise self._record_call_failure(spec, f"is not shape-preserving: input {tuple(probe.shape)}, output {got}")
        if not torch.isfinite(out).all():
            raise self._record_call_failure(spec, "returned NaN/Inf on inputs in [-3, 3]")
        return resolved


# -- loading ---------------------------------------------------------------------------------------


def _initlab_version() -> str:
    try:
        return importlib.metadata.version("initlab")
    except importlib.metadata.PackageNotFoundError:
        from core import __version__

        return __version__


def _builtin_sources() -> list[_Source]:
    from plugins import DEFAULT_PLUGINS

    version = _initlab_version()
    return [
        _Source(name, lambda name=name: importlib.import_module(name), "initlab", version) for name in DEFAULT_PLUGINS
    ]


def _allowed(allow: set[str] | None, *names: str | None) -> bool:
    return allow is None or any(n in allow for n in names if n)


def _entry_point_sources(allow: set[str] | None) -> list[_Source]:
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    found = []
    for ep in eps:
        dist = ep.dist.name if ep.dist is not None else None
        version = ep.dist.version if ep.dist is not None else None
        if _allowed(allow, ep.name, dist):
            found.append((ep.name, dist or "", ep, version))
    found.sort(key=lambda t: (t[0], t[1]))
    seen: dict[str, int] = {}
    sources = []
    for name, dist, ep, version in found:
        # Two distributions may use the same entry-point name: keep both, under distinct plugin names.
        seen[name] = seen.get(name, 0) + 1
        plugin_name = name if seen[name] == 1 else f"{name} ({dist})"
        sources.append(_Source(plugin_name, ep.load, dist or None, version))
    return sources


def _load_file(path: Path) -> ModuleType:
    module_name = f"initlab_local_plugins.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _directory_sources(folder: str | None, allow: set[str] | None, registry: Registry) -> list[_Source]:
    if not folder:
        return []
    path = Path(folder).expanduser()
    if not path.is_dir():
        registry.record(
            PluginFailure(
                f"{ENV_DIR}={folder}",
                None,
                None,
                f"{ENV_DIR} points to {folder!r}, which is not a folder",
                "",
                "import",
            )
        )
        return []
    return [
        _Source(f"file:{p.stem}", lambda p=p: _load_file(p), str(p), None)
        for p in sorted(path.glob("*.py"))
        if _allowed(allow, p.stem, f"file:{p.stem}")
    ]


def _make_register(
    registry: Registry, staged: list[Spec], spec_cls: type, provenance: Provenance
) -> Callable[..., None]:
    hook = {InitializerSpec: "register_initializers", ActivationSpec: "register_activations"}.get(
        spec_cls, "register_datasets"
    )

    def register(spec: Spec | None = None, /, **fields: Any) -> None:
        try:
            if spec is None:
                try:
                    spec = spec_cls(**fields)
                except TypeError as exc:
                    raise RegistrationError(f"{hook}: {exc}") from None
            elif fields:
                raise RegistrationError(f"{hook}: pass either a {spec_cls.__name__} or keyword fields, not both")
            if not isinstance(spec, spec_cls):
                raise RegistrationError(f"{hook} expects a {spec_cls.__name__}, got {type(spec).__name__}")
            _validate(spec)
        except RegistrationError as exc:
            registry.record(
                PluginFailure(
                    provenance.plugin,
                    provenance.distribution,
                    provenance.version,
                    str(exc),
                    traceback.format_exc(),
                    "registration",
                )
            )
            return
        staged.append(dataclasses.replace(spec, provenance=provenance))

    return register


def _validate(spec: Spec) -> None:
    """Raise RegistrationError for a bad name, missing metadata or inconsistent params."""
    check_name(spec.name, spec.kind)
    owner = f"{spec.kind} {spec.name!r}"
    for attr in ("display_name", "description"):
        value = getattr(spec, attr)
        if not isinstance(value, str) or not value.strip():
            raise RegistrationError(f"{owner}: missing {attr} (a non-empty string is required)")
    fn = spec.load if isinstance(spec, DatasetSpec) else spec.fn
    if not callable(fn):
        raise RegistrationError(f"{owner}: {'load' if isinstance(spec, DatasetSpec) else 'fn'} is not callable")
    names = [p.name for p in spec.params]
    if len(set(names)) != len(names):
        raise RegistrationError(f"{owner}: parameter names repeat: {names}")
    for p in spec.params:
        p.check_definition(owner)
    if isinstance(spec, InitializerSpec) and spec.variance is not None and not callable(spec.variance):
        raise RegistrationError(f"{owner}: variance must be a callable of the context")
    if isinstance(spec, ActivationSpec):
        if spec.gain is not None and not (callable(spec.gain) or isinstance(spec.gain, int | float)):
            raise RegistrationError(f"{owner}: gain must be a number, a callable of the params, or None")
        if spec.max_derivative is not None and not (
            isinstance(spec.max_derivative, int | float) and spec.max_derivative > 0
        ):
            raise RegistrationError(f"{owner}: max_derivative must be a positive number or None")


def _fix_unknown_hooks(pm: pluggy.PluginManager, registry: Registry, provenance: dict[str, Provenance]) -> None:
    """Record each misspelled hook (what ``check_pending`` finds) and drop it, keeping the rest."""
    try:
        pm.check_pending()
        return
    except pluggy.PluginValidationError:
        pass
    for hook_name, caller in list(vars(pm.hook).items()):
        if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            prov = provenance.get(impl.plugin_name, Provenance(impl.plugin_name))
            known = ", ".join(name for name, _ in _HOOKS)
            registry.record(
                PluginFailure(
                    prov.plugin,
                    prov.distribution,
                    prov.version,
                    f"unknown hook {hook_name!r} (misspelled?); initlab's hooks are: {known}",
                    "",
                    "unknown-hook",
                )
            )
        delattr(pm.hook, hook_name)
    pm.check_pending()


def load_registry(env: Mapping[str, str] | None = None, extra_plugins: Iterable[tuple[str, object]] = ()) -> Registry:
    """Discover and load every plugin; never raises for a plugin's fault.

    ``extra_plugins`` are ``(name, object)`` pairs registered after the built-ins (tests use it
    to register throwaway plugins).
    """
    env = os.environ if env is None else env
    allow_raw = env.get(ENV_ALLOW)
    allow = None if allow_raw is None else {s.strip() for s in allow_raw.split(",") if s.strip()}
    registry = Registry(strict=env.get(ENV_STRICT, "") not in ("", "0", "false", "False"))
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    registry.plugin_manager = pm

    sources = _builtin_sources()
    sources += [_Source(name, lambda obj=obj: obj, None, None) for name, obj in extra_plugins]
    sources += _entry_point_sources(allow)
    sources += _directory_sources(env.get(ENV_DIR), allow, registry)

    provenance: dict[str, Provenance] = {}
    registered: list[str] = []
    for source in sources:
        prov = Provenance(source.name, source.distribution, source.version)
        try:
            obj = source.load()
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            registry.record(_failure(prov, f"could not be imported: {type(exc).__name__}: {exc}", "import"))
            continue
        try:
            pm.register(obj, name=source.name)
        except Exception as exc:
            registry.record(_failure(prov, f"could not be registered: {type(exc).__name__}: {exc}", "register"))
            continue
        provenance[source.name] = prov
        registered.append(source.name)

    _fix_unknown_hooks(pm, registry, provenance)

    for name in registered:
        plugin = pm.get_plugin(name)
        others = [p for n, p in pm.list_name_plugin() if n != name]
        for hook_name, spec_cls in _HOOKS:
            staged: list[Spec] = []
            caller = pm.subset_hook_caller(hook_name, remove_plugins=others)
            if not caller.get_hookimpls():
                continue
            try:
                caller(register=_make_register(registry, staged, spec_cls, provenance[name]))
            except Exception as exc:
                registry.record(_failure(provenance[name], f"{hook_name} raised {type(exc).__name__}: {exc}", "hook"))
                continue  # a hook that failed midway registers nothing
            _commit(registry, staged)
        del plugin
    return registry


def _failure(prov: Provenance, message: str, stage: str) -> PluginFailure:
    return PluginFailure(prov.plugin, prov.distribution, prov.version, message, traceback.format_exc(), stage)


def _commit(registry: Registry, staged: list[Spec]) -> None:
    for spec in staged:
        table = registry._table(spec.kind)
        prov = spec.provenance or Provenance("?")
        if spec.name in table:
            first = table[spec.name].provenance or Provenance("?")
            registry.record(
                PluginFailure(
                    prov.plugin,
                    prov.distribution,
                    prov.version,
                    f"{spec.kind} {spec.name!r} is already registered by plugin {first.plugin!r} "
                    f"({first.distribution or 'no distribution'}); plugin {prov.plugin!r} "
                    f"({prov.distribution or 'no distribution'}) registers the same name, so its copy is ignored",
                    "",
                    "duplicate",
                )
            )
            continue
        table[spec.name] = spec


# -- the process-wide registry --------------------------------------------------------------------

_cache_lock = threading.Lock()
_cache: dict[tuple[str | None, ...], Registry] = {}


def _env_key(env: Mapping[str, str]) -> tuple[str | None, ...]:
    return (env.get(ENV_ALLOW), env.get(ENV_STRICT), env.get(ENV_DIR))


def get_registry(env: Mapping[str, str] | None = None, *, allow_failures: bool = False) -> Registry:
    """The cached registry for the current ``INITLAB_*`` settings.

    In strict mode (``INITLAB_STRICT_PLUGINS=1``) any plugin failure raises StrictPluginError,
    unless ``allow_failures`` (the ``plugins`` command uses it to list them first).
    """
    env = os.environ if env is None else env
    key = _env_key(env)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = load_registry(env)
        registry = _cache[key]
    if registry.strict and registry.errors and not allow_failures:
        raise StrictPluginError(format_failures(registry.errors))
    return registry


def reset_registry() -> None:
    """Forget cached registries (tests, or after installing a plugin)."""
    with _cache_lock:
        _cache.clear()


def format_failures(errors: Iterable[PluginFailure]) -> str:
    lines = [
        f"- {e.plugin} ({e.distribution or 'no distribution'} {e.version or ''}".rstrip() + f"): {e.message}"
        for e in errors
    ]
    return f"{len(lines)} plugin failure(s) (INITLAB_STRICT_PLUGINS=1 makes them fatal):\n" + "\n".join(lines)
