"""What a training step, a snapshot and an evaluation cost in the engine, per configuration.

    python bench/engine_costs.py            # the grid below, one thread; prints a table and JSON
    python bench/engine_costs.py --quick    # two tiny configs (smoke check)

The snapshot/step ratio is what ``core.training.default_snapshots`` must keep within the 15%
instrumentation budget; this script measured the figures its cost model
(``core.training.snapshot_cost_steps``) was calibrated on, and prints the model's estimate next
to each measurement. Timings are medians of ``--repeats`` trainings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from core.experiment import ExperimentConfig, RunConfig
from core.registry import get_registry
from core.training import load_bundle, snapshot_cost_steps, train

SCHEMES = ("xavier_uniform", "he_normal", "lecun_normal", "orthogonal", "xavier_normal", "he_uniform", "lecun_uniform")
SYNTH = {"n_train": 8000, "n_val": 500, "dims": 784}

# (name, dataset, dataset_params, runs, width, depth, batch, optimizer, activation)
GRID = [
    ("digits r8 w64 d10 sgd", "digits", {}, 8, 64, 10, 64, "sgd", "relu"),
    ("digits r8 w64 d10 adam", "digits", {}, 8, 64, 10, 64, "adam", "relu"),
    ("digits r4 w32 d3 sgd", "digits", {}, 4, 32, 3, 64, "sgd", "relu"),
    ("digits r2 w16 d2 b128", "digits", {}, 2, 16, 2, 128, "sgd", "tanh"),
    ("digits r16 w128 d5 b32 tanh", "digits", {}, 16, 128, 5, 32, "sgd", "tanh"),
    ("digits r8 w64 d30", "digits", {}, 8, 64, 30, 64, "sgd", "relu"),
    ("digits r1 w64 d3", "digits", {}, 1, 64, 3, 64, "sgd", "relu"),
    ("digits r8 w256 d4 adam", "digits", {}, 8, 256, 4, 64, "adam", "relu"),
    ("synth r8 w256 d3 sgd", "synthetic", SYNTH, 8, 256, 3, 64, "sgd", "relu"),
    ("synth r8 w256 d3 adam", "synthetic", SYNTH, 8, 256, 3, 64, "adam", "relu"),
    ("synth r8 w512 d2 b128", "synthetic", SYNTH, 8, 512, 2, 128, "sgd", "relu"),
    ("synth r4 w128 d5 b256 adam", "synthetic", SYNTH, 4, 128, 5, 256, "adam", "tanh"),
    ("synth r16 w64 d10", "synthetic", SYNTH, 16, 64, 10, 64, "sgd", "relu"),
    ("synth r2 w1024 d2 b32", "synthetic", SYNTH, 2, 1024, 2, 32, "sgd", "relu"),
]
QUICK = [
    GRID[2],
    ("synth r2 w64 d2", "synthetic", {"n_train": 1000, "n_val": 100, "dims": 784}, 2, 64, 2, 64, "sgd", "relu"),
]


def measure(row, steps: int, snapshots: int, repeats: int) -> dict:
    name, dataset, params, runs, width, depth, batch, optimizer, activation = row
    registry = get_registry()
    base = ExperimentConfig(
        runs=tuple(RunConfig(SCHEMES[i % len(SCHEMES)], activation) for i in range(runs)),
        dataset=dataset,
        dataset_params=params,
        depth=depth,
        width=width,
        batch_size=batch,
        optimizer=optimizer,
        lr=0.01 if optimizer == "sgd" else 1e-3,
        steps=steps,
        snapshots=snapshots,
        eval_every=steps // 2,
    ).validated(registry)
    bundle = load_bundle(base, registry)
    train(replace(base, steps=5, eval_every=5, snapshots=1), registry=registry, bundle=bundle)  # warm-up
    step_s, snap_s, eval_s = [], [], []
    for _ in range(repeats):
        t = train(base, registry=registry, bundle=bundle).timings
        step_s.append(t["train"] / steps)
        snap_s.append(t["snapshot"] / (snapshots + 1))
        eval_s.append(t["eval"] / 3)
    step, snap, ev = (statistics.median(v) for v in (step_s, snap_s, eval_s))
    return {
        "name": name,
        "step_ms": step * 1e3,
        "snapshot_ms": snap * 1e3,
        "eval_ms": ev * 1e3,
        "snapshot_steps": snap / step,
        "model_steps": snapshot_cost_steps(base, bundle.num_features, bundle.num_classes),
        "eval_steps": ev / step,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    print(f"{'config':<30} {'step ms':>8} {'snap ms':>8} {'eval ms':>8} {'snap/step':>9} {'model':>6} {'eval/step':>9}")
    for row in QUICK if args.quick else GRID:
        m = measure(
            row,
            steps=10 if args.quick else 60,
            snapshots=2 if args.quick else 5,
            repeats=1 if args.quick else args.repeats,
        )
        rows.append(m)
        print(
            f"{m['name']:<30} {m['step_ms']:8.2f} {m['snapshot_ms']:8.2f} {m['eval_ms']:8.2f} "
            f"{m['snapshot_steps']:9.2f} {m['model_steps']:6.2f} {m['eval_steps']:9.2f}",
            flush=True,
        )
    print(json.dumps({"torch": torch.__version__, "threads": args.threads, "rows": rows}))


if __name__ == "__main__":
    main()
