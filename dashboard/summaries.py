"""Plain tables built from an ExperimentResult's run summaries (pure functions, no Streamlit)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

SUMMARY_COLUMNS = [
    "run",
    "status",
    "final train loss",
    "final val loss",
    "val accuracy",
    "diverged at step",
    "diagnosis",
]


def _diagnosis(run: Any) -> dict:
    return run.diagnosis if isinstance(getattr(run, "diagnosis", None), dict) else {}


def summary_frame(runs: Iterable[Any]) -> pd.DataFrame:
    """One row per run: status, final losses, accuracy, divergence step and the diagnosis label."""
    rows = []
    for run in runs:
        diag = _diagnosis(run)
        rows.append(
            {
                "run": run.id,
                "status": run.status,
                "final train loss": run.final_train_loss,
                "final val loss": run.final_val_loss,
                "val accuracy": run.final_val_accuracy,
                "diverged at step": run.diverged_at_step,
                "diagnosis": diag.get("label") or diag.get("verdict") or "",
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def diagnosis_frame(runs: Iterable[Any]) -> pd.DataFrame:
    """One row per run: the verdict's label and its plain-language message."""
    rows = []
    for run in runs:
        diag = _diagnosis(run)
        message = diag.get("message", "")
        if run.status == "failed" and run.error:
            message = message or run.error
        rows.append({"run": run.id, "verdict": diag.get("label") or diag.get("verdict", "—"), "why": message})
    return pd.DataFrame(rows, columns=["run", "verdict", "why"])


def findings_frame(run: Any) -> pd.DataFrame:
    """Every finding behind a run's verdict: label, the measured value and the threshold it crossed."""
    findings = _diagnosis(run).get("findings") or []
    rows = [
        {
            "finding": f.get("label", f.get("code", "")),
            "value": f.get("value"),
            "threshold": f.get("threshold"),
            "details": f.get("message", ""),
        }
        for f in findings
        if isinstance(f, dict)
    ]
    return pd.DataFrame(rows, columns=["finding", "value", "threshold", "details"])


def status_lines(runs: Iterable[Any]) -> list[tuple[str, str]]:
    """(level, message) for runs that need a word: failed runs (error) and diverged ones (warning)."""
    out = []
    for run in runs:
        if run.status == "failed":
            out.append(("error", f"Run **{run.id}** failed: {run.error or 'no reason given'}"))
        elif run.status == "diverged":
            step = run.diverged_at_step
            out.append(("warning", f"Run **{run.id}** diverged" + (f" at step {step}." if step is not None else ".")))
    return out
