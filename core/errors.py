"""Exceptions with messages meant for people: what was wrong, and what is allowed."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InitlabError(Exception):
    """Base class of every error initlab raises on purpose."""


class ConfigError(InitlabError, ValueError):
    """A configuration value is wrong; the message names the field and what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class ParamError(ConfigError):
    """A plugin parameter value is wrong (type, range or choice)."""


class UnknownNameError(ConfigError, KeyError):
    """A name (scheme, activation, dataset) is not registered; suggests close names."""

    def __init__(self, field: str, name: str, known: Iterable[str], kind: str) -> None:
        known = sorted(known)
        self.name = name
        self.suggestions = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(s) for s in self.suggestions)}?" if self.suggestions else ""
        super().__init__(field, f"unknown {kind} {name!r}.{hint} Known: {', '.join(known)}.")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class RegistrationError(InitlabError):
    """A plugin tried to register an invalid entry."""


class PluginCallError(InitlabError):
    """A plugin's function misbehaved when called (NaN/Inf, wrong shape, exception)."""

    def __init__(self, plugin: str, item: str, message: str) -> None:
        self.plugin = plugin
        self.item = item
        super().__init__(f"{item} (plugin {plugin}): {message}")


class DatasetError(InitlabError):
    """A dataset could not be loaded: missing, truncated or corrupt input."""


class StrictPluginError(InitlabError):
    """Raised at load time under INITLAB_STRICT_PLUGINS=1 when any plugin failed."""
