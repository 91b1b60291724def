"""``initlab plugins [--json]``: through ``python -m core`` and the ``initlab`` console script, with env vars."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_fixtures import good_plugin_source, make_distribution, unique

from core.cli import main
from core.commands.plugins_cmd import short_message

REPO = Path(__file__).resolve().parents[1]
INITLAB_SCRIPT = Path(sys.executable).with_name("initlab")
ITEM_KEYS = {"kind", "name", "plugin", "distribution", "version", "description"}
ERROR_KEYS = {"plugin", "distribution", "message", "traceback"}


@pytest.fixture
def plugin_env(tmp_path):
    """Environment with one working fake distribution (on PYTHONPATH) and one broken one-off file."""
    site = tmp_path / "site"
    module = unique("cli_plugin")
    make_distribution(
        site,
        "initlab-cli-demo",
        "3.1.4",
        entry_points={"cli_demo": module},
        modules={module: good_plugin_source("cli_init")},
    )
    folder = tmp_path / "one_off"
    folder.mkdir()
    (folder / "broken.py").write_text("raise RuntimeError('this one-off plugin is broken\\nsecond line of detail')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INITLAB_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    env["INITLAB_PLUGINS_DIR"] = str(folder)
    return env


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


def test_json_via_python_m_core(plugin_env):
    result = _run([sys.executable, "-m", "core", "plugins", "--json"], plugin_env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"items", "errors"}
    assert all(set(row) >= ITEM_KEYS for row in document["items"])
    assert {row["kind"] for row in document["items"]} == {"initializer", "activation", "dataset"}
    demo = next(row for row in document["items"] if row["name"] == "cli_init")
    assert {k: demo[k] for k in ITEM_KEYS} == {
        "kind": "initializer",
        "name": "cli_init",
        "plugin": "cli_demo",
        "distribution": "initlab-cli-demo",
        "version": "3.1.4",
        "description": "N(0, scale^2 / fan_in), a test plugin.",
    }
    for builtin in ("xavier_uniform", "relu", "digits"):
        assert any(row["name"] == builtin and row["distribution"] == "initlab" for row in document["items"])
    (error,) = document["errors"]
    assert set(error) >= ERROR_KEYS
    assert error["plugin"] == "file:broken" and error["distribution"] is None
    assert "RuntimeError: this one-off plugin is broken" in error["message"]
    assert "Traceback" in error["traceback"] and "broken.py" in error["traceback"]


def test_strict_mode_via_the_console_script_lists_then_fails(plugin_env):
    assert INITLAB_SCRIPT.exists(), f"the editable install should provide {INITLAB_SCRIPT}"
    result = _run([str(INITLAB_SCRIPT), "plugins", "--json"], {**plugin_env, "INITLAB_STRICT_PLUGINS": "1"})
    assert result.returncode == 1
    document = json.loads(result.stdout)  # the listing still comes first
    assert [e["plugin"] for e in document["errors"]] == ["file:broken"]
    assert any(row["name"] == "cli_init" for row in document["items"])
    assert "INITLAB_STRICT_PLUGINS" in result.stderr


def test_text_table_with_short_errors(plugin_env):
    result = _run([str(INITLAB_SCRIPT), "plugins"], {**plugin_env, "INITLAB_LOAD_PLUGINS": "cli_demo,broken"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in ("kind", "description", "cli_init", "cli_demo", "initlab-cli-demo", "3.1.4", "xavier_uniform"):
        assert text in out
    assert "1 plugin error(s)" in out and "file:broken" in out
    assert "this one-off plugin is broken" in out
    assert "second line of detail" not in out and "Traceback" not in out  # those are in --json
    assert all(line == line.rstrip() for line in out.splitlines())


# -- in-process (fast) ---------------------------------------------------------------------------


def test_strict_mode_without_failures_exits_zero(monkeypatch, capsys):
    monkeypatch.setenv("INITLAB_STRICT_PLUGINS", "1")
    monkeypatch.setenv("INITLAB_LOAD_PLUGINS", "")
    assert main(["plugins", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["errors"] == [] and len(document["items"]) >= 20
    assert {row["distribution"] for row in document["items"]} == {"initlab"}  # the allow-list left built-ins only


def test_text_mode_without_errors_says_so(monkeypatch, capsys):
    monkeypatch.setenv("INITLAB_LOAD_PLUGINS", "")
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "No plugin errors." in out and "he_normal" in out


def test_short_message():
    assert short_message("first line\nsecond line") == "first line"
    long = "x" * 500
    assert short_message(long, limit=100) == "x" * 99 + "…"
    assert short_message("") == ""
