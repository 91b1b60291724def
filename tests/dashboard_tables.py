"""Small tidy tables with the documented ExperimentResult columns, for the dashboard's tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

RUNS = ["zeros@tanh", "small_normal@tanh", "xavier_uniform@tanh"]


def steps_table(runs=RUNS, n_steps: int = 50) -> pd.DataFrame:
    rows = []
    for i, run in enumerate(runs):
        for step in range(1, n_steps + 1):
            rows.append({"run": run, "step": step, "train_loss": 2.3 * np.exp(-step * (i + 1) / n_steps) + 0.05})
    return pd.DataFrame(rows)


def evals_table(runs=RUNS, epochs: int = 3, steps_per_epoch: int = 10) -> pd.DataFrame:
    rows = []
    for i, run in enumerate(runs):
        for epoch in range(epochs + 1):
            step = epoch * steps_per_epoch
            loss = 2.3 / (1 + epoch * (i + 1))
            acc = min(1.0, 0.1 + 0.25 * epoch * i)
            rows.append(
                {
                    "run": run,
                    "step": step,
                    "epoch": epoch,
                    "train_loss": loss,
                    "val_loss": loss * 1.1,
                    "train_accuracy": acc,
                    "val_accuracy": acc * 0.95,
                }
            )
    return pd.DataFrame(rows)


def layers_table(runs=RUNS, depth: int = 3, steps=(0, 10, 20)) -> pd.DataFrame:
    rows = []
    for i, run in enumerate(runs):
        for step in steps:
            for layer in range(depth + 1):
                grad = 0.0 if i == 0 and layer < depth else 10.0 ** (-(depth - layer) * (2 - i))
                rows.append(
                    {
                        "run": run,
                        "step": step,
                        "layer": layer,
                        "weight_std": 0.1 * (i + 1),
                        "grad_norm": grad,
                        "act_mean": 0.0,
                        "act_std": 0.0 if i == 0 else 0.5 ** (layer * (2 - i)),
                        "pre_std": 0.0 if i == 0 else 0.6 ** (layer * (2 - i)),
                        "saturated_fraction": 0.1 * i,
                        "dead_fraction": 0.0,
                        "predicted_var": float("nan") if i == 0 else 0.25 ** (layer * (2 - i)),
                    }
                )
    return pd.DataFrame(rows)


def histograms_table(runs=RUNS, depth: int = 3, steps=(0, 20), bins: int = 40, kinds=("weight", "grad", "post")):
    """Counts of normal samples on edges shared by every run at a (step, layer, kind)."""
    rng = np.random.default_rng(0)
    rows = []
    for step in steps:
        for layer in range(depth + 1):
            for kind in kinds:
                edges = np.linspace(-1.0, 1.0, bins + 1)
                for i, run in enumerate(runs):
                    samples = rng.normal(0.0, 0.1 * (i + 1), size=500)
                    counts, _ = np.histogram(np.clip(samples, -1, 1), bins=edges)
                    rows.append(
                        {
                            "run": run,
                            "step": step,
                            "layer": layer,
                            "kind": kind,
                            "bin_edges": edges.tolist(),
                            "counts": counts.tolist(),
                        }
                    )
    return pd.DataFrame(rows)
