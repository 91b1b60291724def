"""Each way a plugin can fail becomes a recorded error naming the plugin, and the built-ins keep working.

Throwaway plugins are registered by object (``load_registry(extra_plugins=...)``); discovery
failures (broken entry points, allow-list) are in test_registry.py.
"""

from __future__ import annotations

import math
import sys

import pytest
import torch
from plugin_fixtures import assert_builtins_work, init_context, plugin

from core import ActivationSpec, DatasetSpec, InitializerSpec, Param, PluginCallError, StrictPluginError
from core.registry import PluginFailure, Registry, get_registry, load_registry, strict_enabled


def _init(name: str, **overrides: object) -> InitializerSpec:
    fields: dict[str, object] = {
        "name": name,
        "fn": lambda tensor, ctx: tensor.zero_(),
        "display_name": name.title(),
        "description": "A throwaway initializer.",
    }
    fields.update(overrides)
    return InitializerSpec(**fields)


def _act(name: str, fn: object = torch.relu, **overrides: object) -> ActivationSpec:
    fields: dict[str, object] = {
        "name": name,
        "fn": fn,
        "display_name": name.title(),
        "description": "A throwaway activation.",
    }
    fields.update(overrides)
    return ActivationSpec(**fields)


def _errors_of(registry: Registry, plugin_name: str) -> list[PluginFailure]:
    return [e for e in registry.errors if e.plugin == plugin_name]


def _only_error(registry: Registry, plugin_name: str, stage: str) -> PluginFailure:
    errors = _errors_of(registry, plugin_name)
    assert [e.stage for e in errors] == [stage], errors
    return errors[0]


# -- exceptions inside hooks -------------------------------------------------------------------


def test_hook_that_raises_is_recorded_and_registers_nothing_of_that_hook():
    def register_initializers(register):
        register(_init("registered_before_the_crash"))
        raise RuntimeError("boom in the plugin")

    def register_activations(register):
        register(_act("still_fine"))

    registry = load_registry(
        extra_plugins=[
            ("crashy", plugin(register_initializers=register_initializers, register_activations=register_activations))
        ]
    )
    error = _only_error(registry, "crashy", "hook")
    assert "register_initializers raised RuntimeError: boom in the plugin" in error.message
    assert "boom in the plugin" in error.traceback and "register_initializers" in error.traceback
    # A hook that fails midway registers nothing (no half-registered plugin) ...
    assert "registered_before_the_crash" not in registry.initializers
    # ... but the plugin's other hooks do run.
    assert registry.activation("still_fine").provenance.plugin == "crashy"
    assert_builtins_work(registry)


def test_hook_that_calls_sys_exit_is_only_a_failure():
    def register_datasets(register):
        sys.exit(3)

    registry = load_registry(extra_plugins=[("exits", plugin(register_datasets=register_datasets))])
    assert "register_datasets raised SystemExit" in _only_error(registry, "exits", "hook").message
    assert_builtins_work(registry)


def test_hook_that_returns_entries_instead_of_registering_them():
    def register_initializers(register):
        return [_init("returned_not_registered")]

    registry = load_registry(extra_plugins=[("returner", plugin(register_initializers=register_initializers))])
    error = _only_error(registry, "returner", "hook")
    assert "returned list instead of None" in error.message and "register(...)" in error.message
    assert "returned_not_registered" not in registry.initializers
    assert_builtins_work(registry)


# -- invalid registrations ---------------------------------------------------------------------

INVALID_INITIALIZERS = {
    "bad name": (_init("Bad-Name"), "not a valid slug"),
    "empty display name": (_init("no_display", display_name=""), "missing display_name"),
    "blank description": (_init("no_description", description="   "), "missing description"),
    "fn not callable": (_init("not_callable", fn="he_normal"), "fn is not callable"),
    "default above max": (
        _init("bad_default", params=(Param("std", "float", 5.0, min=0.0, max=1.0),)),
        "default of parameter 'std' is invalid",
    ),
    "default not a choice": (
        _init("bad_choice", params=(Param("mode", "choice", "fan_sum", choices=("fan_in", "fan_out")),)),
        "default of parameter 'mode' is invalid",
    ),
    "min above max": (_init("bad_range", params=(Param("x", "float", 0.0, min=1.0, max=0.0),)), "min 1.0 > max 0.0"),
    "unknown param type": (_init("bad_type", params=(Param("x", "complex", 0.0),)), "type 'complex'"),
    "repeated param": (
        _init("repeated", params=(Param("x", "float", 0.0), Param("x", "float", 1.0))),
        "parameter names repeat",
    ),
    "params not Param": (_init("dict_params", params=({"name": "x"},)), "params must be a tuple of core.specs.Param"),
    "variance not callable": (_init("bad_variance", variance=0.5), "variance must be a callable"),
    "recommended as a string": (
        _init("bad_recommended", recommended_activations="relu"),
        "recommended_activations must be a tuple",
    ),
    "activation from the initializer hook": (_act("wrong_hook"), "expects an InitializerSpec, got ActivationSpec"),
    "not a spec at all": ({"name": "a_dict"}, "expects an InitializerSpec, got dict"),
}


@pytest.mark.parametrize("case", sorted(INVALID_INITIALIZERS))
def test_invalid_initializer_is_recorded_and_its_valid_sibling_registers(case):
    bad, expected = INVALID_INITIALIZERS[case]

    def register_initializers(register):
        register(bad)
        register(_init("valid_sibling"))

    registry = load_registry(extra_plugins=[("sloppy", plugin(register_initializers=register_initializers))])
    error = _only_error(registry, "sloppy", "registration")
    assert expected in error.message
    # The traceback field points at the plugin's register(...) call.
    assert "register_initializers" in error.traceback and __file__ in error.traceback
    assert registry.initializer("valid_sibling").provenance.plugin == "sloppy"
    assert_builtins_work(registry)


def test_keyword_registration_missing_metadata_names_the_entry_and_the_field():
    def register_initializers(register):
        register(name="half_done", fn=lambda t, c: t.zero_(), description="no display name given")

    registry = load_registry(extra_plugins=[("forgetful", plugin(register_initializers=register_initializers))])
    message = _only_error(registry, "forgetful", "registration").message
    assert "register_initializers entry 'half_done'" in message and "display_name" in message
    assert "half_done" not in registry.initializers


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (_act("neg_slope", params=(Param("slope", "float", -1.0, min=0.0, max=1.0),)), "default of parameter 'slope'"),
        (_act("zero_max_derivative", max_derivative=0.0), "max_derivative must be a positive number"),
        (_act("string_gain", gain="sqrt(2)"), "gain must be a number"),
        (_act("bad_mask", saturated=0.99), "saturated must be a callable"),
    ],
    ids=["default-outside-range", "max-derivative", "gain", "saturated"],
)
def test_invalid_activation_is_recorded(bad, expected):
    registry = load_registry(extra_plugins=[("bad_acts", plugin(register_activations=lambda register: register(bad)))])
    assert expected in _only_error(registry, "bad_acts", "registration").message
    assert bad.name not in registry.activations
    assert_builtins_work(registry)


def test_invalid_dataset_is_recorded():
    bad = DatasetSpec(name="no_loader", load=None, display_name="No loader", description="Forgot load.")
    registry = load_registry(extra_plugins=[("bad_data", plugin(register_datasets=lambda register: register(bad)))])
    assert "load is not callable" in _only_error(registry, "bad_data", "registration").message
    assert "no_loader" not in registry.datasets
    assert_builtins_work(registry)


# -- duplicates --------------------------------------------------------------------------------


def test_duplicate_of_a_builtin_names_both_plugins_and_the_builtin_wins():
    def register_initializers(register):
        register(_init("xavier_uniform", description="A hijacking copy."))

    def register_activations(register):
        register(_act("relu", fn=torch.tanh))

    registry = load_registry(
        extra_plugins=[
            ("copycat", plugin(register_initializers=register_initializers, register_activations=register_activations))
        ]
    )
    errors = _errors_of(registry, "copycat")
    assert [e.stage for e in errors] == ["duplicate", "duplicate"]
    init_error, act_error = errors
    assert "initializer 'xavier_uniform' is already registered by plugin 'plugins.initializers'" in init_error.message
    assert "plugin 'copycat'" in init_error.message
    assert "activation 'relu' is already registered by plugin 'plugins.activations'" in act_error.message
    assert registry.activation("relu").fn is not torch.tanh
    assert_builtins_work(registry)


def test_duplicate_across_third_party_plugins_first_by_name_wins():
    a = plugin(register_initializers=lambda register: register(_init("shared_name", description="from a")))
    b = plugin(register_initializers=lambda register: register(_init("shared_name", description="from b")))
    # Given in reverse order: third-party plugins load sorted by name, so dup_a wins either way.
    registry = load_registry(extra_plugins=[("dup_b", b), ("dup_a", a)])
    assert registry.initializer("shared_name").description == "from a"
    error = _only_error(registry, "dup_b", "duplicate")
    assert "plugin 'dup_a'" in error.message and "plugin 'dup_b'" in error.message
    assert "register_initializers" in error.traceback  # where dup_b registered it
    assert _errors_of(registry, "dup_a") == []


def test_same_name_twice_in_one_plugin():
    def register_activations(register):
        register(_act("twice", fn=torch.tanh))
        register(_act("twice", fn=torch.sigmoid))

    registry = load_registry(extra_plugins=[("stutter", plugin(register_activations=register_activations))])
    assert "registered twice by plugin 'stutter'" in _only_error(registry, "stutter", "duplicate").message
    assert registry.activation("twice").fn is torch.tanh


# -- hooks pluggy cannot use ---------------------------------------------------------------------


def test_misspelled_hook_is_found_by_check_pending_and_the_rest_of_the_plugin_works():
    def register_initialisers(register):  # British spelling: not initlab's hook
        register(_init("never_registered"))

    def register_activations(register):
        register(_act("spelled_right"))

    registry = load_registry(
        extra_plugins=[
            ("typo", plugin(register_initialisers=register_initialisers, register_activations=register_activations))
        ]
    )
    error = _only_error(registry, "typo", "unknown-hook")
    assert "unknown hook 'register_initialisers'" in error.message
    assert "did you mean 'register_initializers'?" in error.message
    assert __file__ in error.traceback  # where the misspelled function is defined
    assert "never_registered" not in registry.initializers
    assert registry.activation("spelled_right").provenance.plugin == "typo"
    registry.plugin_manager.check_pending()  # the offending hook was dropped: nothing pending now
    assert_builtins_work(registry)


def test_optional_unknown_hook_is_not_an_error():
    from core import hookimpl

    class Forward:
        @hookimpl(optionalhook=True)
        def register_losses(self, register):  # a hook a future initlab may add
            raise AssertionError("never called")

        @hookimpl
        def register_activations(self, register):
            register(_act("forward_compatible"))

    registry = load_registry(extra_plugins=[("forward", Forward())])
    assert _errors_of(registry, "forward") == []
    assert "forward_compatible" in registry.activations


def test_hook_with_wrong_argument_name_is_rejected_at_registration():
    def register_initializers(reg):
        reg(_init("unreachable"))

    registry = load_registry(extra_plugins=[("wrong_args", plugin(register_initializers=register_initializers))])
    error = _only_error(registry, "wrong_args", "register")
    assert "wrong signature" in error.message and "reg" in error.message
    assert_builtins_work(registry)


def test_forgotten_hookimpl_decorator_is_reported():
    class Undecorated:
        def register_initializers(self, register):
            register(_init("silently_lost"))

    registry = load_registry(extra_plugins=[("undecorated", Undecorated())])
    error = _only_error(registry, "undecorated", "register")
    assert "implements no initlab hook" in error.message and "@hookimpl" in error.message
    assert "register_initializers" in error.message
    assert "undecorated" not in dict(registry.plugin_manager.list_name_plugin())


def test_plugin_name_taken_by_a_builtin():
    impostor = plugin(register_activations=lambda register: register(_act("impostor_act")))
    registry = load_registry(extra_plugins=[("plugins.activations", impostor)])
    errors = [e for e in registry.errors if e.stage == "register"]
    assert len(errors) == 1 and "already loaded" in errors[0].message
    assert "impostor_act" not in registry.activations
    assert registry.activation("relu").provenance.plugin == "plugins.activations"


# -- call-time failures ---------------------------------------------------------------------------


def _nan_fill(tensor, ctx):
    tensor.fill_(float("nan"))


def _half_inf(tensor, ctx):
    tensor.zero_()
    tensor[0, 0] = math.inf


def _grows(tensor, ctx):
    tensor.resize_(tensor.shape[0] + 1, tensor.shape[1])


def _returns_transposed(tensor, ctx):
    return torch.zeros(tensor.shape[1], tensor.shape[0])


def _raises(tensor, ctx):
    raise ValueError("fan_in must be even")


CALL_FAILURES = {
    "nan": (_nan_fill, "produced 200 NaN/Inf values in a tensor of shape (10, 20)"),
    "inf": (_half_inf, "produced 1 NaN/Inf values"),
    "in-place shape change": (_grows, "changed the tensor's shape from (10, 20) to (11, 20)"),
    "returned wrong shape": (_returns_transposed, "returned shape (20, 10), expected (10, 20)"),
    "raises": (_raises, "raised ValueError: fan_in must be even"),
}


@pytest.mark.parametrize("case", sorted(CALL_FAILURES))
def test_initializer_misbehaving_at_call_time_is_recorded(case):
    fn, expected = CALL_FAILURES[case]
    registry = load_registry(
        extra_plugins=[("faulty", plugin(register_initializers=lambda register: register(_init("faulty_init", fn=fn))))]
    )
    assert registry.errors == []  # registration itself was fine
    weight = torch.empty(10, 20)
    ctx = init_context(weight, registry, "faulty_init")
    with pytest.raises(PluginCallError, match="plugin faulty") as info:
        registry.call_initializer(registry.initializer("faulty_init"), weight, ctx)
    assert expected in str(info.value)
    error = _only_error(registry, "faulty", "call")
    assert "initializer 'faulty_init'" in error.message and expected in error.message
    assert fn.__name__ in error.traceback  # where the faulty function is
    # Calling it again raises again but records no second copy of the same failure.
    with pytest.raises(PluginCallError):
        registry.call_initializer(registry.initializer("faulty_init"), torch.empty(10, 20), ctx)
    assert len(_errors_of(registry, "faulty")) == 1
    assert_builtins_work(registry)


def test_initializer_returning_a_tensor_is_copied_in():
    def ones(tensor, ctx):
        return torch.ones_like(tensor)

    registry = load_registry(
        extra_plugins=[("returns", plugin(register_initializers=lambda register: register(_init("ones", fn=ones))))]
    )
    weight = torch.zeros(4, 5)
    registry.call_initializer(registry.initializer("ones"), weight, init_context(weight, registry, "ones"))
    assert torch.equal(weight, torch.ones(4, 5))


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (lambda x: x.sum(dim=-1), "is not shape-preserving: input (2, 3, 4), output (2, 3)"),
        (lambda x: x.flatten(), "is not shape-preserving: input (2, 3, 4), output (24,)"),
        (lambda x: x.tolist(), "is not shape-preserving: input (2, 3, 4), output list"),
        (lambda x: torch.log(x), "returned NaN/Inf on inputs in [-3, 3]"),
        (lambda x: x.item(), "raised RuntimeError"),
    ],
    ids=["reduces", "flattens", "not-a-tensor", "nan", "raises"],
)
def test_activation_misbehaving_at_call_time_is_recorded(fn, expected):
    registry = load_registry(
        extra_plugins=[("bad_shape", plugin(register_activations=lambda register: register(_act("odd_act", fn=fn))))]
    )
    with pytest.raises(PluginCallError, match="plugin bad_shape"):
        registry.check_activation(registry.activation("odd_act"))
    error = _only_error(registry, "bad_shape", "call")
    assert "activation 'odd_act'" in error.message and expected in error.message
    assert_builtins_work(registry)


# -- strict mode ---------------------------------------------------------------------------------


def test_strict_mode_makes_any_failure_fatal(monkeypatch, tmp_path):
    (tmp_path / "broken.py").write_text("raise ImportError('missing dependency: initlab_nothing')\n")
    monkeypatch.setenv("INITLAB_PLUGINS_DIR", str(tmp_path))
    lenient = get_registry()  # not strict: the failure is recorded, the app goes on
    assert [e.plugin for e in lenient.errors] == ["file:broken"]

    monkeypatch.setenv("INITLAB_STRICT_PLUGINS", "1")
    with pytest.raises(StrictPluginError) as info:
        get_registry()
    message = str(info.value)
    assert "1 plugin failure(s)" in message and "file:broken" in message and "initlab_nothing" in message
    # The plugins command asks for the registry anyway, to list the failure before exiting non-zero.
    assert get_registry(allow_failures=True).errors[0].plugin == "file:broken"


def test_strict_mode_without_failures_is_silent(monkeypatch):
    monkeypatch.setenv("INITLAB_STRICT_PLUGINS", "1")
    monkeypatch.setenv("INITLAB_LOAD_PLUGINS", "")  # built-ins only
    registry = get_registry()
    assert registry.strict and registry.errors == []


@pytest.mark.parametrize(
    ("value", "strict"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("on", True),
        ("", False),
        ("0", False),
        ("false", False),
        ("Off", False),
    ],
)
def test_strict_flag_values(value, strict):
    assert strict_enabled({"INITLAB_STRICT_PLUGINS": value}) is strict
    assert strict_enabled({}) is False
