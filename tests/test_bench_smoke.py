"""``bench/engine_bench.py --quick`` runs and prints its figure lines (speed itself is never asserted)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "engine_bench.py"


@pytest.mark.slow
def test_quick_bench_prints_every_figure(tmp_path):
    figures = tmp_path / "figures.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--threads", "1", "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Traceback" not in proc.stderr
    assert re.search(r"^matmul peak: [\d.]+ GFLOP/s", out, re.MULTILINE), out
    # 2 workloads x 2 optimizers, each with stacked and naive throughput, the ratio and the overhead.
    assert len(re.findall(r"^  stacked +[\d,]+ samples/s +[\d.]+ GFLOP/s", out, re.MULTILINE)) == 4, out
    assert len(re.findall(r"^  naive loop +[\d,]+ samples/s", out, re.MULTILINE)) == 4, out
    assert len(re.findall(r"^  speed-up +[\d.]+x .*(PASS|FAIL)$", out, re.MULTILINE)) == 4, out
    assert len(re.findall(r"^  overhead +-?[\d.]+% .*(PASS|FAIL)$", out, re.MULTILINE)) == 4, out
    assert len(re.findall(r"^  peak share +[\d.]+% .*(PASS|FAIL)$", out, re.MULTILINE)) == 2, out  # width 256 only
    assert (
        len(re.findall(r"instrumented call: init [\d.]+ s, steps [\d.]+ s, evaluations [\d.]+ s, snapshots", out)) == 4
    )
    assert re.search(r"^targets:$", out, re.MULTILINE)
    assert len(re.findall(r"^  (PASS|FAIL)  ", out, re.MULTILINE)) == 10
    data = json.loads(figures.read_text(encoding="utf-8"))
    assert data["quick"] is True and data["threads"] == 1
    assert {(f["workload"], f["optimizer"]) for f in data["figures"]} == {
        (w, o) for w in ("digits", "synthetic") for o in ("sgd", "adam")
    }
