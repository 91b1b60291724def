"""initlab's core: plugin registry, data, models, training engine and metrics (no Streamlit here).

What a plugin author writes::

    from core import hookimpl, InitializerSpec, Param
"""

from core.errors import (
    ConfigError,
    DatasetError,
    InitlabError,
    ParamError,
    PluginCallError,
    RegistrationError,
    StrictPluginError,
    UnknownNameError,
)
from core.hookspecs import hookimpl, hookspec
from core.registry import Registry, get_registry, load_registry, reset_registry
from core.specs import (
    ActivationSpec,
    DatasetBundle,
    DatasetSpec,
    InitContext,
    InitializerSpec,
    Param,
    Provenance,
    compute_fans,
    resolve_params,
)

__version__ = "0.1.0"

__all__ = [
    "ActivationSpec",
    "ConfigError",
    "DatasetBundle",
    "DatasetError",
    "DatasetSpec",
    "InitContext",
    "InitializerSpec",
    "InitlabError",
    "Param",
    "ParamError",
    "PluginCallError",
    "Provenance",
    "RegistrationError",
    "Registry",
    "StrictPluginError",
    "UnknownNameError",
    "__version__",
    "compute_fans",
    "get_registry",
    "hookimpl",
    "hookspec",
    "load_registry",
    "reset_registry",
    "resolve_params",
]
