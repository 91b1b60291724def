"""Discovery: real entry points of fake installed distributions, the allow-list, the plugins folder, order.

Each test writes ``*.dist-info`` folders into a tmp dir on ``sys.path``, so ``importlib.metadata``
finds them through the same entry-point path as a pip-installed plugin. Also: one test per hook
(``test_hook_<name>``, demanded by test_hook_docs.py) showing an item registered through it works.
"""

from __future__ import annotations

import importlib.metadata

import pytest
import torch
from plugin_fixtures import (
    BROKEN_IMPORT_PLUGIN,
    assert_builtins_work,
    good_plugin_source,
    init_context,
    make_distribution,
    plugin,
    unique,
)

from core import ActivationSpec, DatasetBundle, DatasetSpec, InitializerSpec, Param, UnknownNameError
from core.registry import get_registry, load_registry, reset_registry


def _third_party(registry, kind: str | None = None) -> list[dict]:
    return [r for r in registry.items() if r["distribution"] != "initlab" and (kind is None or r["kind"] == kind)]


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path playing the role of site-packages for fake distributions."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


def _good_dist(site, dist: str, ep: str, init_name: str, version: str = "1.0.0") -> str:
    module = unique(ep)
    make_distribution(site, dist, version, entry_points={ep: module}, modules={module: good_plugin_source(init_name)})
    return module


# -- discovery through entry points --------------------------------------------------------------


def test_entry_point_plugin_is_found_with_its_distribution_and_version(site):
    _good_dist(site, "initlab-scaled", "scaled", "scaled_normal", version="2.3.4")
    registry = load_registry()
    assert registry.errors == []
    row = next(r for r in registry.items() if r["name"] == "scaled_normal")
    assert row == {
        "kind": "initializer",
        "name": "scaled_normal",
        "plugin": "scaled",
        "distribution": "initlab-scaled",
        "version": "2.3.4",
        "description": "N(0, scale^2 / fan_in), a test plugin.",
    }
    # Usable through the registry: variance scale^2/fan_in = 4/200 = 0.02 with scale=2. The sample
    # variance of n = 100*200 iid normals has relative std error sqrt(2/(n-1)) = 1.0%; allow 5%.
    weight = torch.empty(100, 200)
    spec = registry.initializer("scaled_normal")
    registry.call_initializer(spec, weight, init_context(weight, registry, "scaled_normal", {"scale": 2.0}))
    assert weight.var().item() == pytest.approx(0.02, rel=0.05)


def test_broken_import_next_to_a_working_plugin(site):
    # "aaa" sorts first: a loader that aborted on the first failure would never reach "zzz".
    make_distribution(site, "aaa-broken", "0.1", entry_points={"aaa": unique("aaa")}, modules={})
    broken = unique("broken")
    make_distribution(site, "bbb-broken", "0.2", entry_points={"bbb": broken}, modules={broken: BROKEN_IMPORT_PLUGIN})
    _good_dist(site, "zzz-good", "zzz", "zzz_init")
    registry = load_registry()
    by_plugin = {e.plugin: e for e in registry.errors}
    assert set(by_plugin) == {"aaa", "bbb"}
    assert (by_plugin["aaa"].distribution, by_plugin["aaa"].version, by_plugin["aaa"].stage) == (
        "aaa-broken",
        "0.1",
        "import",
    )
    assert "could not be imported: ModuleNotFoundError" in by_plugin["aaa"].message
    assert "initlab_no_such_dependency" in by_plugin["bbb"].message
    assert "initlab_no_such_dependency" in by_plugin["bbb"].traceback
    assert by_plugin["bbb"].version == "0.2"
    assert registry.initializer("zzz_init").provenance.distribution == "zzz-good"
    assert_builtins_work(registry)


def test_entry_point_naming_a_missing_attribute(site):
    module = unique("attr")
    make_distribution(
        site, "initlab-attr", "1.0", entry_points={"attr": f"{module}:no_such_object"}, modules={module: "x = 1\n"}
    )
    registry = load_registry()
    (error,) = registry.errors
    assert (error.plugin, error.distribution, error.stage) == ("attr", "initlab-attr", "import")
    assert "AttributeError" in error.message and "no_such_object" in error.message


def test_two_distributions_with_the_same_entry_point_name_both_load(site):
    # pluggy's load_setuptools_entrypoints would silently skip the second one.
    _good_dist(site, "initlab-shared-b", "shared", "init_from_b")
    _good_dist(site, "initlab-shared-a", "shared", "init_from_a")
    registry = load_registry()
    assert registry.errors == []
    rows = {r["name"]: r for r in _third_party(registry)}
    assert rows["init_from_a"]["plugin"] == "shared (initlab-shared-a)"
    assert rows["init_from_a"]["distribution"] == "initlab-shared-a"
    assert rows["init_from_b"]["plugin"] == "shared (initlab-shared-b)"
    assert rows["init_from_b"]["distribution"] == "initlab-shared-b"


def test_two_distributions_registering_the_same_item_name_both_named_in_the_error(site):
    _good_dist(site, "initlab-first", "first", "contested")
    _good_dist(site, "initlab-second", "second", "contested")
    registry = load_registry()
    (error,) = registry.errors
    assert (error.plugin, error.distribution, error.stage) == ("second", "initlab-second", "duplicate")
    assert "plugin 'first' (initlab-first)" in error.message and "plugin 'second' (initlab-second)" in error.message
    assert registry.initializer("contested").provenance.distribution == "initlab-first"


def test_two_entry_points_naming_the_same_module(site):
    module = unique("twin")
    make_distribution(
        site,
        "initlab-twins",
        "1.0",
        entry_points={"twin_a": module, "twin_b": module},
        modules={module: good_plugin_source("twin_init")},
    )
    registry = load_registry()
    (error,) = registry.errors
    assert (error.plugin, error.stage) == ("twin_b", "register")
    assert "same object as plugin 'twin_a'" in error.message
    assert "twin_init" in registry.initializers


def test_malformed_entry_points_file_is_confined_to_its_distribution(site):
    make_distribution(
        site, "initlab-garbled", "0.9", entry_points_text="[initlab.plugins]\nthis line has no equals sign\n"
    )
    _good_dist(site, "initlab-fine", "fine", "fine_init")
    registry = load_registry()
    (error,) = registry.errors
    assert (error.plugin, error.distribution, error.version) == ("initlab-garbled", "initlab-garbled", "0.9")
    assert "malformed entry_points.txt" in error.message
    assert "fine_init" in registry.initializers
    # importlib.metadata.entry_points() itself would have failed for every plugin:
    with pytest.raises((TypeError, ValueError)):
        importlib.metadata.entry_points(group="initlab.plugins")


def test_malformed_entry_points_of_an_unrelated_package_are_ignored(site):
    make_distribution(site, "not-a-plugin", "1.0", entry_points_text="[console_scripts]\nno equals sign here\n")
    _good_dist(site, "initlab-fine", "fine", "fine_init")
    registry = load_registry()
    assert registry.errors == []
    assert "fine_init" in registry.initializers


# -- order -------------------------------------------------------------------------------------


def test_order_is_builtins_first_then_third_party_sorted_by_name(site, tmp_path, monkeypatch):
    # Written to sys.path in non-alphabetical order, plus a plugins-folder file in between.
    _good_dist(site, "initlab-zeta", "zeta", "zeta_init")
    _good_dist(site, "initlab-alpha", "alpha", "alpha_init")
    folder = tmp_path / "one_off"
    folder.mkdir()
    (folder / "mid.py").write_text(good_plugin_source("mid_init"))
    # The allow-list keeps plugins installed in this environment out of the comparison.
    env = {"INITLAB_PLUGINS_DIR": str(folder), "INITLAB_LOAD_PLUGINS": "zeta,alpha,mid"}
    registry = load_registry(
        env, extra_plugins=[("omega", plugin(register_initializers=lambda register: register(_spec("omega_init"))))]
    )
    assert registry.errors == []
    names = [r["name"] for r in registry.items() if r["kind"] == "initializer"]
    builtin = [
        r["name"] for r in registry.items() if r["kind"] == "initializer" and r["plugin"] == "plugins.initializers"
    ]
    assert names[: len(builtin)] == builtin
    # Plugin names: alpha < file:mid < omega < zeta.
    assert names[len(builtin) :] == ["alpha_init", "mid_init", "omega_init", "zeta_init"]
    # Loading twice gives the same order.
    again = load_registry(
        env,
        extra_plugins=[("omega", plugin(register_initializers=lambda register: register(_spec("omega_init"))))],
    )
    assert [r["name"] for r in again.items()] == [r["name"] for r in registry.items()]


def _spec(name: str) -> InitializerSpec:
    return InitializerSpec(
        name=name, fn=lambda tensor, ctx: tensor.zero_(), display_name=name, description="A test initializer."
    )


# -- INITLAB_LOAD_PLUGINS ----------------------------------------------------------------------


@pytest.fixture
def three_plugins(site):
    _good_dist(site, "initlab-one", "one", "one_init")
    _good_dist(site, "Initlab_Two", "two", "two_init")
    module = unique("broken")
    make_distribution(
        site, "initlab-broken", "1.0", entry_points={"broken": module}, modules={module: BROKEN_IMPORT_PLUGIN}
    )
    return site


@pytest.mark.parametrize(
    ("allow", "expected"),
    [
        ("", []),  # empty: built-ins only
        ("one", ["one_init"]),  # by entry-point name
        (" one , two ", ["one_init", "two_init"]),  # spaces around names are fine
        ("initlab-two", ["two_init"]),  # by distribution name, normalized (Initlab_Two)
        ("INITLAB_TWO", ["two_init"]),
        ("initlab.two", ["two_init"]),
    ],
)
def test_allow_list_narrows_third_party_plugins(three_plugins, allow, expected):
    registry = load_registry({"INITLAB_LOAD_PLUGINS": allow})
    assert registry.errors == []  # the broken plugin was not loaded, so it cannot fail
    assert [r["name"] for r in _third_party(registry)] == expected
    assert_builtins_work(registry)


def test_allow_list_bisects_to_the_broken_plugin(three_plugins):
    assert [e.plugin for e in load_registry({}).errors] == ["broken"]
    assert [e.plugin for e in load_registry({"INITLAB_LOAD_PLUGINS": "one,two"}).errors] == []
    assert [e.plugin for e in load_registry({"INITLAB_LOAD_PLUGINS": "broken"}).errors] == ["broken"]


def test_allow_list_name_matching_nothing_is_reported(three_plugins):
    registry = load_registry({"INITLAB_LOAD_PLUGINS": "one,onee"})
    (error,) = registry.errors
    assert (error.plugin, error.stage) == ("INITLAB_LOAD_PLUGINS", "config")
    assert "'onee'" in error.message
    available = error.message.split("available: ", 1)[1].split(", ")
    assert {"broken", "one", "two"} <= set(available) and available == sorted(available)
    assert [r["name"] for r in _third_party(registry)] == ["one_init"]


def test_allow_list_applies_to_the_plugins_folder(tmp_path):
    (tmp_path / "local.py").write_text(good_plugin_source("local_init"))
    env = {"INITLAB_PLUGINS_DIR": str(tmp_path)}
    assert "local_init" in load_registry(env).initializers
    assert "local_init" not in load_registry({**env, "INITLAB_LOAD_PLUGINS": ""}).initializers
    assert "local_init" in load_registry({**env, "INITLAB_LOAD_PLUGINS": "local"}).initializers
    assert "local_init" in load_registry({**env, "INITLAB_LOAD_PLUGINS": "file:local"}).initializers


# -- INITLAB_PLUGINS_DIR -----------------------------------------------------------------------


def test_plugins_folder_loads_one_off_files_and_isolates_a_broken_one(tmp_path):
    (tmp_path / "good.py").write_text(good_plugin_source("from_a_file"))
    (tmp_path / "bad_syntax.py").write_text("def register_initializers(register)\n")
    (tmp_path / "_helper.py").write_text("raise RuntimeError('files starting with _ are not plugins')\n")
    (tmp_path / "notes.txt").write_text("not python")
    registry = load_registry({"INITLAB_PLUGINS_DIR": str(tmp_path)})
    (error,) = registry.errors
    assert (error.plugin, error.distribution, error.stage) == ("file:bad_syntax", None, "import")
    assert "SyntaxError" in error.message
    assert registry.initializer("from_a_file").provenance.plugin == "file:good"
    assert_builtins_work(registry)


def test_plugins_folder_that_does_not_exist(tmp_path):
    registry = load_registry({"INITLAB_PLUGINS_DIR": str(tmp_path / "nope")})
    (error,) = registry.errors
    assert (error.plugin, error.stage) == ("INITLAB_PLUGINS_DIR", "config")
    assert "which is not a folder" in error.message
    assert_builtins_work(registry)


# -- provenance, JSON, cache ---------------------------------------------------------------------


def test_builtins_carry_initlab_provenance():
    registry = load_registry({"INITLAB_LOAD_PLUGINS": ""})  # built-ins only, whatever else is installed
    assert registry.errors == []
    version = importlib.metadata.version("initlab")
    rows = registry.items()
    assert {r["kind"] for r in rows} == {"initializer", "activation", "dataset"}
    assert all((r["distribution"], r["version"]) == ("initlab", version) for r in rows)
    assert {r["plugin"] for r in rows} == {"plugins.initializers", "plugins.activations", "plugins.datasets"}
    # Kinds are grouped in a fixed order.
    kinds = [r["kind"] for r in rows]
    assert kinds == sorted(kinds, key=["initializer", "activation", "dataset"].index)


def test_to_json_shape(tmp_path):
    (tmp_path / "broken.py").write_text("import initlab_no_such_dependency\n")
    document = load_registry({"INITLAB_PLUGINS_DIR": str(tmp_path)}).to_json()
    assert set(document) == {"items", "errors"}
    assert all(
        set(row) == {"kind", "name", "plugin", "distribution", "version", "description"} for row in document["items"]
    )
    (error,) = document["errors"]
    assert {"plugin", "distribution", "message", "traceback"} <= set(error)
    assert error["plugin"] == "file:broken" and "ModuleNotFoundError" in error["traceback"]


def test_unknown_name_suggests_close_ones():
    registry = load_registry()
    with pytest.raises(UnknownNameError, match="Did you mean 'he_normal'"):
        registry.initializer("he_norml")


def test_get_registry_caches_per_setting_and_reset_forgets(monkeypatch, tmp_path):
    first = get_registry()
    assert get_registry() is first
    monkeypatch.setenv("INITLAB_LOAD_PLUGINS", "")
    assert get_registry() is not first
    monkeypatch.delenv("INITLAB_LOAD_PLUGINS")
    assert get_registry() is first
    (tmp_path / "late.py").write_text(good_plugin_source("installed_later"))
    monkeypatch.setenv("INITLAB_PLUGINS_DIR", str(tmp_path))
    assert "installed_later" in get_registry().initializers
    (tmp_path / "later.py").write_text(good_plugin_source("installed_even_later"))
    assert "installed_even_later" not in get_registry().initializers  # cached
    reset_registry()
    assert "installed_even_later" in get_registry().initializers


# -- one test per hook (test_hook_docs.py checks they exist) ---------------------------------------


def test_hook_register_initializers():
    def fill(tensor, ctx):
        # Everything from the context: fans, layer, activation gain, params, generator.
        std = ctx.params["gain"] * ctx.activation_gain / ctx.fan_in**0.5 / (1 + ctx.layer_index)
        tensor.normal_(0.0, std, generator=ctx.generator)

    spec = InitializerSpec(
        name="hooked_init",
        fn=fill,
        display_name="Hooked",
        description="Registered by the test of register_initializers.",
        params=(Param("gain", "float", 1.0, min=0.0, max=4.0),),
        recommended_activations=("relu",),
        citation="A test, 2025.",
        variance=lambda ctx: (ctx.params["gain"] * ctx.activation_gain / (1 + ctx.layer_index)) ** 2 / ctx.fan_in,
    )
    registry = load_registry(extra_plugins=[("hooked", plugin(register_initializers=lambda register: register(spec)))])
    assert registry.errors == []
    got = registry.initializer("hooked_init")
    assert got.provenance.plugin == "hooked" and got.citation == "A test, 2025."
    # Conv-shaped weight: fan_in = 16 * 3 * 3 = 144 (torch's rule). relu gain sqrt(2), gain 1.5:
    # variance 1.5^2 * 2 / 144 = 0.03125. Relative std error of a sample variance of n = 32*144 normals
    # is sqrt(2/(n-1)) = 2.1%; allow 5 of them.
    weight = torch.empty(32, 16, 3, 3)
    ctx = init_context(weight, registry, "hooked_init", {"gain": 1.5}, activation="relu", seed=1)
    registry.call_initializer(got, weight, ctx)
    assert ctx.fan_in == 144
    assert weight.var().item() == pytest.approx(got.variance(ctx), rel=0.105)
    assert got.variance(ctx) == pytest.approx(1.5**2 * 2 / 144)
    # Deterministic under the context's generator.
    again = torch.empty(32, 16, 3, 3)
    registry.call_initializer(got, again, init_context(again, registry, "hooked_init", {"gain": 1.5}, seed=1))
    assert torch.equal(weight, again)


def test_hook_register_activations():
    spec = ActivationSpec(
        name="hooked_act",
        fn=lambda x, negative_slope: torch.where(x > 0, x, negative_slope * x),
        display_name="Hooked leaky",
        description="Registered by the test of register_activations.",
        params=(Param("negative_slope", "float", 0.1, min=0.0, max=1.0),),
        gain=lambda params: (2.0 / (1 + params["negative_slope"] ** 2)) ** 0.5,
        max_derivative=1.0,
        inactive=lambda pre: pre <= 0,
    )
    registry = load_registry(extra_plugins=[("hooked", plugin(register_activations=lambda register: register(spec)))])
    assert registry.errors == []
    got = registry.activation("hooked_act")
    assert registry.check_activation(got, {"negative_slope": 0.2}) == {"negative_slope": 0.2}
    # torch.nn.init.calculate_gain is the oracle for the leaky-ReLU gain.
    assert got.resolve_gain({"negative_slope": 0.2}) == pytest.approx(torch.nn.init.calculate_gain("leaky_relu", 0.2))
    x = torch.tensor([-2.0, 0.5])
    assert torch.equal(got.fn(x, negative_slope=0.2), torch.nn.functional.leaky_relu(x, 0.2))


def test_hook_register_datasets():
    def load(n):
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(2 * n, 4, generator=gen)
        y = (x[:, 0] > 0).long()
        return DatasetBundle(x[:n], y[:n], x[n:], y[n:], ("neg", "pos"), (2, 2))

    spec = DatasetSpec(
        name="hooked_data",
        load=load,
        display_name="Hooked data",
        description="Registered by the test of register_datasets.",
        params=(Param("n", "int", 8, min=2, max=100),),
    )
    registry = load_registry(extra_plugins=[("hooked", plugin(register_datasets=lambda register: register(spec)))])
    assert registry.errors == []
    got = registry.dataset("hooked_data")
    bundle = got.load(n=5)
    bundle.check("hooked_data")
    assert (bundle.num_features, bundle.num_classes, len(bundle.x_val)) == (4, 2, 5)
    assert got.provenance.plugin == "hooked"
