"""examples/initlab-example-plugin: built and installed by pip, found through its entry point, usable.

pip builds the example's wheel from a copy of the folder and installs it with ``--target`` into a
temporary site folder that the test environment puts on its path (``PYTHONPATH`` for
subprocesses, ``sys.path`` in-process): the same wheel, ``*.dist-info`` and ``entry_points.txt`` a
regular install writes, found by the same ``importlib.metadata`` lookup, but never written into
the shared ``.venv``. So a test run that is killed midway cannot leave the plugin installed,
and other test runs using ``.venv`` at the same time never see it. The folder is deleted at the end.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from plugin_fixtures import init_context

from core.registry import load_registry

pytestmark = pytest.mark.slow  # builds a wheel and runs three subprocesses: ~15 s

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "initlab-example-plugin"
PROJECT = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
DISTRIBUTION, VERSION = PROJECT["name"], PROJECT["version"]
MODULE = "initlab_example_plugin"
# Offline and without build isolation: the build uses the test environment's setuptools.
PIP_INSTALL = (sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(source copy, site folder): the example installed by pip into a throwaway site folder."""
    pytest.importorskip("setuptools", reason="building the example plugin needs setuptools in the test environment")
    root = tmp_path_factory.mktemp("example_plugin")
    source, site = root / "source", root / "site"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".*"))
    try:
        result = subprocess.run(
            [*PIP_INSTALL, "--target", str(site), str(source)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"pip install failed:\n{result.stdout}\n{result.stderr}"
        yield source, site
    finally:
        shutil.rmtree(root, ignore_errors=True)
        for name in [m for m in sys.modules if m == MODULE or m.startswith(MODULE + ".")]:
            del sys.modules[name]


def _env(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INITLAB_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    return env


def test_pip_wrote_a_real_entry_point(installed):
    _, site = installed
    (info,) = site.glob("*.dist-info")
    assert info.name == f"{DISTRIBUTION.replace('-', '_')}-{VERSION}.dist-info"
    assert "[initlab.plugins]" in (info / "entry_points.txt").read_text()


def test_listed_by_the_plugins_command_with_distribution_and_version(installed):
    _, site = installed
    result = subprocess.run(
        [sys.executable, "-m", "core", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=_env(site),
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    ours = {(r["kind"], r["name"]): r for r in document["items"] if r["distribution"] == DISTRIBUTION}
    assert set(ours) == {("initializer", "sparse"), ("activation", "hard_tanh")}
    assert {(r["plugin"], r["version"]) for r in ours.values()} == {("example", VERSION)}
    assert [e for e in document["errors"] if e["distribution"] == DISTRIBUTION] == []


def test_usable_through_the_registry(installed, monkeypatch):
    _, site = installed
    monkeypatch.syspath_prepend(str(site))
    registry = load_registry()
    assert [e for e in registry.errors if e.distribution == DISTRIBUTION] == []
    spec = registry.initializer("sparse")
    assert (spec.provenance.plugin, spec.provenance.distribution, spec.provenance.version) == (
        "example",
        DISTRIBUTION,
        VERSION,
    )
    weight = torch.empty(256, 400)
    registry.call_initializer(spec, weight, init_context(weight, registry, "sparse", activation="tanh"))
    # Martens' sparse init: exactly 15 non-zero N(0, 1) weights per unit, so Var(w) = 15/400 = 0.0375.
    assert (weight != 0).sum(dim=1).tolist() == [15] * 256
    # The 256*15 = 3840 non-zero values are N(0, 1): sample-variance relative std error sqrt(2/3839)
    # = 2.3%; the zeros are exact, so Var(w) inherits the same relative error. Allow 5 of them.
    assert weight.var().item() == pytest.approx(15 / 400, rel=5 * math.sqrt(2 / 3839))

    act = registry.activation("hard_tanh")
    assert registry.check_activation(act) == {}
    x = torch.linspace(-3, 3, 61)
    assert torch.equal(act.fn(x), x.clamp(-1, 1))
    assert act.max_derivative == 1.0


def test_its_own_test_suite_passes(installed):
    source, site = installed
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        env=_env(site),
        cwd=source,
        timeout=300,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    match = re.match(r"(\d+) passed(, \d+ warnings?)? in ", summary)
    assert match and int(match.group(1)) >= 5, summary  # nothing skipped, failed or errored
