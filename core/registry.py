"""Plugin discovery and the registry of initializers, activations and datasets.

Built-ins (``plugins.DEFAULT_PLUGINS``) load first through the same hooks a third party uses,
then third-party plugins sorted by plugin name: entry points of the group ``initlab.plugins``
(each distribution read and each entry point loaded on its own) and one-off ``.py`` files from
``INITLAB_PLUGINS_DIR``. Every failure becomes a :class:`PluginFailure` on the registry and
everything else keeps working; ``INITLAB_STRICT_PLUGINS=1`` makes :func:`get_registry` raise instead.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import re
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
    Param,
    Provenance,
    Spec,
    check_name,
    resolve_params,
)

ENTRY_POINT_GROUP = "initlab.plugins"
ENV_ALLOW = "INITLAB_LOAD_PLUGINS"
ENV_STRICT = "INITLAB_STRICT_PLUGINS"
ENV_DIR = "INITLAB_PLUGINS_DIR"
FILE_PLUGIN_PREFIX = "file:"

_HOOKS: tuple[tuple[str, type], ...] = (
    ("register_initializers", InitializerSpec),
    ("register_activations", ActivationSpec),
    ("register_datasets", DatasetSpec),
)
HOOK_NAMES: tuple[str, ...] = tuple(name for name, _ in _HOOKS)
STAGES: tuple[str, ...] = ("config", "import", "register", "hook", "registration", "duplicate", "unknown-hook", "call")


@dataclass(frozen=True)
class PluginFailure:
    """One recorded plugin problem; the app shows it instead of crashing.

    ``stage`` says when it happened: ``config`` (an ``INITLAB_*`` setting), ``import``,
    ``register`` (pluggy rejected the plugin object), ``hook`` (a hook raised or misbehaved),
    ``registration`` (an invalid entry), ``duplicate``, ``unknown-hook`` or ``call`` (at run time).
    """

    plugin: str
    distribution: str | None
    version: str | None
    message: str
    traceback: str
    stage: str

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
        """Every registered item with provenance: initializers, activations, datasets, each in load order."""
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
        """The ``initlab plugins --json`` document: ``{"items": [...], "errors": [...]}``."""
        with self._lock:
            errors = [e.to_dict() for e in self.errors]
        return {"items": self.items(), "errors": errors}

    # -- failures ------------------------------------------------------------------------------
    def record(self, failure: PluginFailure) -> None:
        """Add ``failure`` unless the same plugin already reported the same problem (repeated calls)."""
        with self._lock:
            if any(
                (e.plugin, e.stage, e.message) == (failure.plugin, failure.stage, failure.message) for e in self.errors
            ):
                return
            self.errors.append(failure)

    def _record_call_failure(self, spec: Spec, message: str, tb: str = "") -> PluginCallError:
        prov = spec.provenance or Provenance("?")
        tb = tb or _where_defined(spec.load if isinstance(spec, DatasetSpec) else spec.fn)
        self.record(
            PluginFailure(
                prov.plugin, prov.distribution, prov.version, f"{spec.kind} {spec.name!r} {message}", tb, "call"
            )
        )
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
            if result is not tensor:
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


def _where_defined(fn: object) -> str:
    """``File "...", line N, in name`` for a plugin function (the traceback field of call failures)."""
    code = getattr(inspect.unwrap(fn), "__code__", None) if callable(fn) else None
    if code is None:
        return ""
    return f'  File "{code.co_filename}", line {code.co_firstlineno}, in {code.co_name}\n'


# -- discovery -------------------------------------------------------------------------------------


def normalize_dist_name(name: str) -> str:
    """PEP 503 normalization: ``Initlab_Example.Plugin`` -> ``initlab-example-plugin``."""
    return re.sub(r"[-_.]+", "-", name).lower()


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


@dataclass(frozen=True)
class _Candidate:
    """A third-party plugin found on disk, before the allow-list is applied."""

    source: _Source
    keys: frozenset[str]  # names that select it in INITLAB_LOAD_PLUGINS


def _entry_point_candidates(registry: Registry) -> list[_Candidate]:
    """Every ``initlab.plugins`` entry point, reading each distribution on its own.

    ``importlib.metadata.entry_points()`` would abort on one malformed ``entry_points.txt``
    anywhere in the environment; reading distribution by distribution confines that to the
    broken one. A distribution shadowed by an earlier one of the same name on ``sys.path`` is
    skipped, as Python's import system would.
    """
    seen: set[str] = set()
    found: list[tuple[str, str, str | None, importlib.metadata.EntryPoint]] = []
    for dist in importlib.metadata.distributions():
        try:
            dist_name = dist.metadata["Name"] or ""
            key = getattr(dist, "_normalized_name", None) or normalize_dist_name(dist_name)
        except Exception:
            continue  # unreadable metadata of some unrelated package
        if key in seen:
            continue
        seen.add(key)
        try:
            eps = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        except Exception as exc:
            text = dist.read_text("entry_points.txt") or ""
            if f"[{ENTRY_POINT_GROUP}]" in text:
                label = dist_name or key
                registry.record(
                    PluginFailure(
                        label,
                        dist_name or None,
                        dist.metadata["Version"],
                        f"distribution {label!r} has a malformed entry_points.txt ({type(exc).__name__}: {exc}); "
                        f"each line of the [{ENTRY_POINT_GROUP}] section must read 'name = module' or "
                        "'name = module:attribute'",
                        traceback.format_exc(),
                        "import",
                    )
                )
            continue
        for ep in eps:
            found.append((ep.name, dist_name, dist.metadata["Version"], ep))
    found.sort(key=lambda t: (t[0], normalize_dist_name(t[1])))

    names = [name for name, *_ in found]
    candidates = []
    for name, dist_name, version, ep in found:
        # Two distributions may use the same entry-point name: both load, under distinct plugin names.
        plugin_name = f"{name} ({dist_name})" if names.count(name) > 1 else name
        keys = {name, plugin_name, dist_name} - {""}
        candidates.append(_Candidate(_Source(plugin_name, ep.load, dist_name or None, version), frozenset(keys)))
    return candidates


def _load_file(path: Path) -> ModuleType:
    module_name = "initlab_local_plugins." + re.sub(r"\W", "_", path.stem)
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


def _directory_candidates(folder: str | None, registry: Registry) -> list[_Candidate]:
    """One candidate per ``*.py`` file in ``folder`` (files starting with ``_`` are skipped)."""
    if not folder:
        return []
    path = Path(folder).expanduser()
    if not path.is_dir():
        registry.record(
            PluginFailure(
                ENV_DIR,
                None,
                None,
                f"{ENV_DIR} points to {folder!r}, which is not a folder; set it to a folder of .py plugin files "
                "or unset it",
                "",
                "config",
            )
        )
        return []
    return [
        _Candidate(
            _Source(f"{FILE_PLUGIN_PREFIX}{p.stem}", lambda p=p: _load_file(p), None, None),
            frozenset({p.stem, f"{FILE_PLUGIN_PREFIX}{p.stem}", p.name}),
        )
        for p in sorted(path.glob("*.py"))
        if not p.name.startswith("_")
    ]


def _parse_allow_list(raw: str | None) -> set[str] | None:
    """None = load every plugin; an empty set = built-ins only."""
    if raw is None:
        return None
    return {s.strip() for s in raw.split(",") if s.strip()}


def _apply_allow_list(candidates: list[_Candidate], allow: set[str] | None, registry: Registry) -> list[_Source]:
    if allow is None:
        return [c.source for c in candidates]
    # Case and runs of "-", "_", "." do not matter: "initlab_example_plugin" selects "initlab-example-plugin".
    wanted = {normalize_dist_name(a) for a in allow}
    chosen = [c.source for c in candidates if {normalize_dist_name(k) for k in c.keys} & wanted]
    matched = {normalize_dist_name(k) for c in candidates for k in c.keys}
    unmatched = sorted(a for a in allow if normalize_dist_name(a) not in matched)
    if unmatched:
        available = sorted({c.source.name for c in candidates})
        registry.record(
            PluginFailure(
                ENV_ALLOW,
                None,
                None,
                f"{ENV_ALLOW} names {', '.join(repr(a) for a in unmatched)}, which match no installed plugin "
                f"(an entry-point name, a distribution name or a file in {ENV_DIR}); "
                f"available: {', '.join(available) if available else 'none'}",
                "",
                "config",
            )
        )
    return chosen


# -- registration ----------------------------------------------------------------------------------


def _an(word: str) -> str:
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


def _caller_stack() -> str:
    """The innermost frames of the plugin code that called ``register`` (where to look)."""
    frame = sys._getframe(2)  # _caller_stack <- register <- the plugin
    return "".join(traceback.format_stack(frame, limit=3))


@dataclass(frozen=True)
class _Staged:
    spec: Spec
    where: str


def _make_register(
    registry: Registry, staged: list[_Staged], spec_cls: type, hook: str, provenance: Provenance
) -> Callable[..., None]:
    def register(spec: Spec | None = None, /, **fields: Any) -> None:
        where = _caller_stack()
        try:
            if spec is None:
                try:
                    spec = spec_cls(**fields)
                except TypeError as exc:
                    entry = f" entry {fields['name']!r}" if "name" in fields else ""
                    raise RegistrationError(f"{hook}{entry}: {exc}") from None
            elif fields:
                raise RegistrationError(f"{hook}: pass either {_an(spec_cls.__name__)} or keyword fields, not both")
            if not isinstance(spec, spec_cls):
                raise RegistrationError(
                    f"{hook} expects {_an(spec_cls.__name__)}, got {type(spec).__name__}"
                    + (" (register it from the matching hook)" if isinstance(spec, Spec) else "")
                )
            _validate(spec)
        except Exception as exc:  # any bad entry is that entry's failure, never the whole hook's
            if isinstance(exc, RegistrationError):
                message, tb = str(exc), where
            else:
                message, tb = f"{hook}: {type(exc).__name__}: {exc}", where + traceback.format_exc()
            registry.record(
                PluginFailure(
                    provenance.plugin,
                    provenance.distribution,
                    provenance.version,
                    message,
                    tb,
                    "registration",
                )
            )
            return
        staged.append(_Staged(dataclasses.replace(spec, provenance=provenance), where))

    return register


def _validate(spec: Spec) -> None:
    """Raise RegistrationError for a bad name, missing metadata or inconsistent params."""
    check_name(spec.name, spec.kind)
    owner = f"{spec.kind} {spec.name!r}"
    for attr in ("display_name", "description"):
        value = getattr(spec, attr)
        if not isinstance(value, str) or not value.strip():
            raise RegistrationError(f"{owner}: missing {attr} (a non-empty string is required)")
    fn_attr = "load" if isinstance(spec, DatasetSpec) else "fn"
    if not callable(getattr(spec, fn_attr)):
        raise RegistrationError(f"{owner}: {fn_attr} is not callable")
    if not isinstance(spec.params, tuple | list) or not all(isinstance(p, Param) for p in spec.params):
        raise RegistrationError(f"{owner}: params must be a tuple of core.specs.Param, got {spec.params!r}")
    names = [p.name for p in spec.params]
    if len(set(names)) != len(names):
        raise RegistrationError(f"{owner}: parameter names repeat: {names}")
    for p in spec.params:
        p.check_definition(owner)
    if isinstance(spec, InitializerSpec):
        if spec.variance is not None and not callable(spec.variance):
            raise RegistrationError(f"{owner}: variance must be a callable of the context, or None")
        recommended = spec.recommended_activations
        if not isinstance(recommended, tuple | list) or not all(isinstance(a, str) for a in recommended):
            raise RegistrationError(f"{owner}: recommended_activations must be a tuple of activation names")
        if not isinstance(spec.citation, str):
            raise RegistrationError(f"{owner}: citation must be a string")
    if isinstance(spec, ActivationSpec):
        if spec.gain is not None and not (callable(spec.gain) or _is_number(spec.gain)):
            raise RegistrationError(f"{owner}: gain must be a number, a callable of the params, or None")
        if spec.max_derivative is not None and not (_is_number(spec.max_derivative) and spec.max_derivative > 0):
            raise RegistrationError(f"{owner}: max_derivative must be a positive number or None")
        for attr in ("saturated", "inactive"):
            if getattr(spec, attr) is not None and not callable(getattr(spec, attr)):
                raise RegistrationError(f"{owner}: {attr} must be a callable returning a bool mask, or None")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _register_plugin(pm: pluggy.PluginManager, obj: object, source: _Source) -> str | None:
    """Register ``obj`` with pluggy; return a failure message instead of raising."""
    if obj is None:
        return "resolved to None (the entry point must name a module or an object with @hookimpl functions)"
    if pm.has_plugin(source.name):
        return f"a plugin named {source.name!r} is already loaded; rename the entry point"
    same = [n for n, p in pm.list_name_plugin() if p is obj]
    if same:
        return f"is the same object as plugin {same[0]!r}, already loaded (two entry points name one module)"
    try:
        pm.register(obj, name=source.name)
    except pluggy.PluginValidationError as exc:
        detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        return f"has a hook with the wrong signature (initlab's hooks take one argument, register): {detail}"
    except Exception as exc:
        return f"could not be registered: {type(exc).__name__}: {exc}"
    if not pm.get_hookcallers(obj):
        lookalikes = [n for n in dir(obj) if n in HOOK_NAMES or n.startswith("register_")]
        hint = (
            f"; {', '.join(lookalikes)} {'is' if len(lookalikes) == 1 else 'are'} not decorated with @hookimpl "
            "(from core import hookimpl)"
            if lookalikes
            else f"; implement one of {', '.join(HOOK_NAMES)} with @hookimpl"
        )
        pm.unregister(name=source.name)
        return "implements no initlab hook" + hint
    return None


def _drop_unknown_hooks(pm: pluggy.PluginManager, registry: Registry, provenance: dict[str, Provenance]) -> None:
    """Record each misspelled hook (what ``check_pending`` finds) and drop it, keeping the plugin's other hooks."""
    try:
        pm.check_pending()
        return
    except pluggy.PluginValidationError:
        pass
    for hook_name, caller in list(vars(pm.hook).items()):
        if hook_name.startswith("_") or not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        impls = [impl for impl in caller.get_hookimpls() if not impl.optionalhook]
        if not impls:
            continue
        close = difflib.get_close_matches(hook_name, HOOK_NAMES, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"initlab's hooks are: {', '.join(HOOK_NAMES)}"
        for impl in impls:
            prov = provenance.get(impl.plugin_name, Provenance(impl.plugin_name))
            registry.record(
                PluginFailure(
                    prov.plugin,
                    prov.distribution,
                    prov.version,
                    f"unknown hook {hook_name!r}, so it is never called; {hint}",
                    _where_defined(impl.function),
                    "unknown-hook",
                )
            )
        delattr(pm.hook, hook_name)
    pm.check_pending()


def _call_hooks(pm: pluggy.PluginManager, registry: Registry, name: str, prov: Provenance) -> None:
    """Call each of plugin ``name``'s hooks alone; a hook that raises registers nothing."""
    others = [p for n, p in pm.list_name_plugin() if n != name and p is not None]
    for hook_name, spec_cls in _HOOKS:
        caller = pm.subset_hook_caller(hook_name, remove_plugins=others)
        if not caller.get_hookimpls():
            continue
        staged: list[_Staged] = []
        try:
            results = caller(register=_make_register(registry, staged, spec_cls, hook_name, prov))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit from a plugin is its failure too
            registry.record(_failure(prov, f"{hook_name} raised {type(exc).__name__}: {exc}", "hook"))
            continue
        if results:
            registry.record(
                _failure(
                    prov,
                    f"{hook_name} returned {type(results[0]).__name__} instead of None; hooks register entries by "
                    "calling register(...), what they return is ignored",
                    "hook",
                    tb="",
                )
            )
        _commit(registry, staged)


def _failure(prov: Provenance, message: str, stage: str, tb: str | None = None) -> PluginFailure:
    return PluginFailure(
        prov.plugin, prov.distribution, prov.version, message, traceback.format_exc() if tb is None else tb, stage
    )


def _commit(registry: Registry, staged: list[_Staged]) -> None:
    for entry in staged:
        spec = entry.spec
        table = registry._table(spec.kind)
        prov = spec.provenance or Provenance("?")
        if spec.name in table:
            first = table[spec.name].provenance or Provenance("?")
            if first.plugin == prov.plugin:
                message = (
                    f"{spec.kind} {spec.name!r} is registered twice by plugin {prov.plugin!r}; the second is ignored"
                )
            else:
                message = (
                    f"{spec.kind} {spec.name!r} is already registered by plugin {first.plugin!r} "
                    f"({first.distribution or 'no distribution'}); plugin {prov.plugin!r} "
                    f"({prov.distribution or 'no distribution'}) registers the same name, so its copy is ignored"
                )
            registry.record(
                PluginFailure(prov.plugin, prov.distribution, prov.version, message, entry.where, "duplicate")
            )
            continue
        table[spec.name] = spec


def strict_enabled(env: Mapping[str, str]) -> bool:
    """``INITLAB_STRICT_PLUGINS``: on unless unset, empty, 0, false, no or off."""
    return env.get(ENV_STRICT, "").strip().lower() not in ("", "0", "false", "no", "off")


def load_registry(env: Mapping[str, str] | None = None, extra_plugins: Iterable[tuple[str, object]] = ()) -> Registry:
    """Discover and load every plugin; never raises for a plugin's fault.

    Order: built-ins (``plugins.DEFAULT_PLUGINS``), then every other plugin sorted by plugin
    name. ``extra_plugins`` are ``(name, object)`` pairs loaded like third-party plugins but
    regardless of ``INITLAB_LOAD_PLUGINS`` (tests use them to register throwaway plugins).
    """
    env = os.environ if env is None else env
    registry = Registry(strict=strict_enabled(env))
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    registry.plugin_manager = pm

    candidates = _entry_point_candidates(registry) + _directory_candidates(env.get(ENV_DIR), registry)
    third_party = _apply_allow_list(candidates, _parse_allow_list(env.get(ENV_ALLOW)), registry)
    third_party += [_Source(name, lambda obj=obj: obj, None, None) for name, obj in extra_plugins]
    third_party.sort(key=lambda s: s.name)  # stable: same-named entry points keep their distribution order

    provenance: dict[str, Provenance] = {}
    for source in _builtin_sources() + third_party:
        prov = Provenance(source.name, source.distribution, source.version)
        try:
            obj = source.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a plugin that calls sys.exit() on import is still just a failure
            registry.record(_failure(prov, f"could not be imported: {type(exc).__name__}: {exc}", "import"))
            continue
        problem = _register_plugin(pm, obj, source)
        if problem:
            registry.record(_failure(prov, f"plugin {source.name!r} {problem}", "register", tb=""))
            continue
        provenance[source.name] = prov

    _drop_unknown_hooks(pm, registry, provenance)
    for name, prov in provenance.items():
        _call_hooks(pm, registry, name, prov)
    return registry


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
    """One line per failure: plugin (distribution version): message."""
    lines = []
    for e in errors:
        origin = " ".join(part for part in (e.distribution, e.version) if part) or "no distribution"
        lines.append(f"- {e.plugin} ({origin}): {e.message}")
    return f"{len(lines)} plugin failure(s) (INITLAB_STRICT_PLUGINS=1 makes them fatal):\n" + "\n".join(lines)
