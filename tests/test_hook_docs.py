"""Meta-tests: every hook has a test and a docs section; the plugin guide's example really works."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from core import hookspecs
from core.registry import ENV_ALLOW, ENV_DIR, ENV_STRICT, STAGES, load_registry
from core.testing import check_activation, check_initializer

REPO = Path(__file__).resolve().parents[1]
DOCS = (REPO / "docs" / "plugins.md").read_text()
TESTS = {path.name: path.read_text() for path in (REPO / "tests").glob("test_*.py")}


def _hookspecs() -> list[str]:
    marker = f"{hookspecs.PROJECT_NAME}_spec"  # the attribute pluggy's HookspecMarker sets
    return sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, marker))


def test_the_hookspecs_are_found():
    assert _hookspecs() == ["register_activations", "register_datasets", "register_initializers"]


@pytest.mark.parametrize("hook", _hookspecs())
def test_every_hook_has_a_test(hook):
    tests = [name for name, text in TESTS.items() if re.search(rf"^def test_hook_{hook}\(", text, re.MULTILINE)]
    assert tests, f"write a test named test_hook_{hook} that registers an item through {hook} and uses it"


@pytest.mark.parametrize("hook", _hookspecs())
def test_every_hook_has_a_docs_section(hook):
    headings = re.findall(r"^#{2,4} .*$", DOCS, re.MULTILINE)
    assert any(f"`{hook}(register)`" in heading for heading in headings), f"docs/plugins.md needs a section for {hook}"


@pytest.mark.parametrize("stage", STAGES)
def test_every_failure_stage_is_explained(stage):
    section = DOCS.split("## What to do if it breaks", 1)[1]
    assert re.search(rf"^### `{re.escape(stage)}`", section, re.MULTILINE), f"explain stage {stage!r}"


@pytest.mark.parametrize("variable", [ENV_ALLOW, ENV_STRICT, ENV_DIR])
def test_every_environment_variable_is_documented(variable):
    table = DOCS.split("## Environment variables", 1)[1]
    assert f"| `{variable}` |" in table


def test_docs_example_plugin_loads_and_passes_the_kit(tmp_path):
    """The one-off plugin in docs/plugins.md, saved as a file, loads cleanly and passes core.testing."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS, re.DOTALL)
    (example,) = [b for b in blocks if b.startswith("# my_plugin.py")]
    (tmp_path / "my_plugin.py").write_text(example)
    registry = load_registry({ENV_DIR: str(tmp_path), ENV_ALLOW: "my_plugin"})
    assert registry.errors == []
    init, act = registry.initializer("scaled_he"), registry.activation("softsign")
    assert init.provenance.plugin == act.provenance.plugin == "file:my_plugin"
    report = check_initializer(init, {"scale": 0.5}, conv_shape=None)
    assert report.declared_variance == pytest.approx(0.25 * 2 / 784)  # scale² · 2 / fan_in on 256x784
    assert check_activation(act).measured_max_derivative == pytest.approx(1.0)


def test_example_package_is_linked():
    assert "examples/initlab-example-plugin" in DOCS
    assert (REPO / "examples" / "initlab-example-plugin" / "pyproject.toml").is_file()
