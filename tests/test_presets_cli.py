"""``initlab presets``: the listing (text and JSON), ``presets run`` (check table, exit 0/1), bad input
(exit 2), ``--out`` JSON whose reloaded result passes the same checks, and ``initlab run --config`` on a
preset file."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from core import presets as P
from core.cli import main
from core.results import ExperimentResult

REPO = Path(__file__).resolve().parents[1]
FAST = "zero_constant"  # the quickest preset (about 1-2 s)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["presets", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_listing_names_every_preset_with_its_claim_and_config(capsys):
    code, out, _ = cli(capsys)
    assert code == 0
    for preset in P.all_presets():
        assert preset.slug in out
        assert preset.config_file in out
    assert "initlab presets run SLUG" in out
    assert "variants: adam" in out
    assert cli(capsys, "list")[1] == out


def test_listing_as_json(capsys):
    code, out, _ = cli(capsys, "--json")
    assert code == 0
    document = json.loads(out)
    assert [d["slug"] for d in document] == [p.slug for p in P.all_presets()]
    fig3 = next(d for d in document if d["slug"] == "he2015_fig3")
    assert fig3["variants"] == [{"slug": "adam", "title": "Adam instead of SGD"}]
    assert Path(fig3["config"]).is_file()
    assert set(document[0]) == {"slug", "title", "claim", "config", "where", "variants"}


def test_listing_through_python_m_core():
    proc = subprocess.run(
        [sys.executable, "-m", "core", "presets", "--json"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == len(P.all_presets())


def test_run_prints_the_check_table_and_exits_0(capsys, tmp_path):
    out_file = tmp_path / "result.json"
    code, out, err = cli(capsys, "run", FAST, "--quiet", "--out", str(out_file))
    assert code == 0, out + err
    preset = P.get_preset(FAST)
    outcomes_count = len(preset.check(ExperimentResult.load_json(out_file)))
    assert f"{outcomes_count}/{outcomes_count} checks passed" in out
    assert "FAIL" not in out
    assert preset.claim in out.replace("\n", " ") or preset.claim[:40] in out
    for header in ("measured", "threshold", "result"):
        assert header in out
    # The saved JSON reloads into a result that passes the very same checks (what the dashboard reuses).
    assert preset.passed(ExperimentResult.load_json(out_file))


def test_run_exits_1_when_a_check_fails(capsys, monkeypatch):
    def impossible(result):
        return [P.compare("final train loss", 1.0, "<", 0.0, result.runs[0].id, "cannot hold")]

    rigged = tuple(replace(p, check_fn=impossible) if p.slug == FAST else p for p in P.PRESETS)
    monkeypatch.setattr(P, "PRESETS", rigged)
    code, out, _ = cli(capsys, "run", FAST, "--quiet")
    assert code == 1
    assert "FAIL" in out and "0/1 checks passed, 1 FAILED" in out


def test_seed_flag_replaces_the_files_seed(capsys, tmp_path):
    out_file = tmp_path / "seed3.json"
    code, _, err = cli(capsys, "run", FAST, "--quiet", "--seed", "3", "--out", str(out_file))
    assert code == 0, err
    assert ExperimentResult.load_json(out_file).config.seed == 3


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["run", "zero_constants"], ["unknown preset 'zero_constants'", "Did you mean 'zero_constant'"]),
        (["run", "he2015_fig3", "--variant", "rmsprop"], ["variant", "its variants: adam"]),
        (["run", FAST, "--threads", "0"], ["threads (--threads)", "[1, 1024]"]),
        (["run", FAST, "--seed", "-1"], ["seed", "allowed"]),
        (["run", FAST, "--out", "/no/such/folder/r.json"], ["out (--out)", "does not exist"]),
    ],
)
def test_bad_input_exits_2_with_a_message(capsys, argv, needles):
    code, _, err = cli(capsys, *argv)
    assert code == 2, err
    assert err.startswith("initlab: error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"


def test_a_preset_file_runs_with_initlab_run_config(capsys, tmp_path):
    out_file = tmp_path / "plain.json"
    code = main(["run", "--config", str(P.get_preset(FAST).path), "--quiet", "--out", str(out_file)])
    capsys.readouterr()
    assert code == 0
    result = ExperimentResult.load_json(out_file)
    assert result.config.run_ids() == ["zeros", "constant 0.1", "Xavier (random)"]
    assert P.get_preset(FAST).passed(result)
