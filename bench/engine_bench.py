"""Speed of the stacked training engine against the loop a user would write. Prints figures; not a test.

    python bench/engine_bench.py            # the full benchmark (a few minutes on one thread)
    python bench/engine_bench.py --quick    # smoke check: tiny sizes, one repeat, figures meaningless

For each workload (8 schemes; digits at width 64 / depth 10, and 60,000 synthetic 784-dim samples at
width 256 / depth 3) and each optimizer (SGD, Adam) it times, interleaved, ``--repeats`` times after a
warm-up, and reports medians:

- stacked: ``core.training.train`` with ``snapshots=0`` and evaluations at step 0 and the end only;
- naive: one ``nn.Sequential`` per scheme, starting from the same initial weights, trained one after
  another on the same batches with ``torch.optim`` (loss read every step, as the engine does);
- instrumented: ``train`` at the default snapshot cadence (``snapshots=None``), evaluations as in
  stacked, so the difference is the instrumentation alone (snapshots: histograms and per-layer
  statistics). The cost of the default per-epoch evaluations is printed beside it, for information.

Speed-up = naive / stacked seconds of training steps (the engine's own ``timings["train"]``; the naive
loops without model building). Overhead = the instrumented call's snapshot seconds over the rest of that
call (the whole-call ratio against stacked is printed as a cross-check).
Samples/s counts every run: runs x steps x batch / seconds. GFLOP/s counts the linear layers only:
2 * batch * in * out per layer forward, x3 for forward + backward, x runs x steps, over the same seconds;
it is set against the best fp32 square matmul (1024..2048) measured here at the same thread count.
See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import torch.nn.functional as F
from torch import nn

from core.experiment import ExperimentConfig, RunConfig
from core.registry import get_registry
from core.specs import DatasetBundle, InitContext

SCHEMES = (
    "xavier_uniform",
    "xavier_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
    "pytorch_default",
)
ACTIVATION = "relu"
LEARNING_RATES = {"sgd": 0.01, "adam": 1e-3}  # small enough that no run diverges (a frozen run skews timing)
BATCH_SIZE = 64

# Targets from the issue (a prototype on this machine).
TARGET_RATIO = {"digits": 2.5, "synthetic": 1.3}
TARGET_PEAK_FRACTION = 0.60  # of the measured matmul peak, at width 256
TARGET_OVERHEAD = 0.15


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    dataset: str
    width: int
    depth: int
    steps: int
    dataset_params: dict[str, Any] = field(default_factory=dict)


def workloads(quick: bool) -> list[Workload]:
    if quick:
        return [
            Workload("digits", "digits, width 64, depth 10", "digits", 64, 10, 12),
            Workload(
                "synthetic",
                "synthetic 2,000 x 784 (quick), width 256, depth 3",
                "synthetic",
                256,
                3,
                8,
                {"n_train": 2_000, "n_val": 200, "dims": 784},
            ),
        ]
    return [
        # 10 epochs of digits' 1,437 training images (22 steps each), so the per-epoch evaluation
        # cadence of the instrumented run is the real default one.
        Workload("digits", "digits, width 64, depth 10", "digits", 64, 10, 220),
        Workload(
            "synthetic",
            "synthetic 60,000 x 784, width 256, depth 3",
            "synthetic",
            256,
            3,
            300,
            {"n_train": 60_000, "n_val": 2_000, "dims": 784},
        ),
    ]


# -- measurement helpers ---------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def matmul_peak_gflops(sizes: tuple[int, ...], reps: int) -> tuple[float, int]:
    """Best GFLOP/s of fp32 ``n x n @ n x n`` over ``sizes`` (2 n^3 flops each), and the size that got it."""
    best, best_n = 0.0, sizes[0]
    gen = torch.Generator().manual_seed(0)
    for n in sizes:
        a = torch.randn(n, n, generator=gen)
        b = torch.randn(n, n, generator=gen)
        out = torch.empty(n, n)
        torch.mm(a, b, out=out)  # warm-up
        seconds = min(timed(lambda a=a, b=b, out=out: torch.mm(a, b, out=out)) for _ in range(reps))
        gflops = 2 * n**3 / seconds / 1e9
        if gflops > best:
            best, best_n = gflops, n
    return best, best_n


def layer_dims(bundle: DatasetBundle, width: int, depth: int) -> list[tuple[int, int]]:
    dims = [bundle.num_features] + [width] * depth + [bundle.num_classes]
    return list(itertools.pairwise(dims))


def flops_per_step(bundle: DatasetBundle, width: int, depth: int, runs: int, batch: int) -> float:
    """Linear-layer flops of one optimizer step for all runs: 2*B*in*out forward, x3 with backward."""
    return 3 * 2 * batch * sum(a * b for a, b in layer_dims(bundle, width, depth)) * runs


def required_flops_per_step(bundle: DatasetBundle, width: int, depth: int, runs: int, batch: int) -> float:
    """The same, without the first layer's input gradient, which neither implementation computes
    (the data needs no gradient): the x3 count overstates the work by that share."""
    dims = layer_dims(bundle, width, depth)
    return flops_per_step(bundle, width, depth, runs, batch) - 2 * batch * dims[0][0] * dims[0][1] * runs


# -- the naive loop --------------------------------------------------------------------------------


class _Activation(nn.Module):
    def __init__(self, fn: Callable[..., torch.Tensor], params: dict[str, Any]) -> None:
        super().__init__()
        self.fn, self.params = fn, params

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, **self.params)


def naive_models(config: ExperimentConfig, bundle: DatasetBundle) -> list[nn.Sequential]:
    """One ``nn.Sequential`` per run, holding the very initial weights the engine starts from."""
    registry = get_registry()
    dims = [bundle.num_features] + [config.width] * config.depth + [bundle.num_classes]
    models = []
    for index, run in enumerate(config.runs):
        init = registry.initializer(run.initializer)
        act = registry.activation(run.activation)
        weights, biases = initial_parameters(registry, config, index, init, act, dims, bundle)
        layers: list[nn.Module] = []
        for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
            linear = nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                linear.weight.copy_(w)
                linear.bias.copy_(b)
            layers.append(linear)
            if layer < len(weights) - 1:
                layers.append(_Activation(act.fn, dict(run.activation_params)))
        models.append(nn.Sequential(*layers))
    return models


def initial_parameters(
    registry: Any, config: ExperimentConfig, index: int, init: Any, act: Any, dims: list[int], bundle: DatasetBundle
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Run ``index``'s initial (weights, biases): the engine's own initialization when it exposes it,
    else the same initializer plugin with a seeded generator (same distribution, other draws)."""
    try:
        from core.stacked_mlp import initialize_run
    except ImportError:
        initialize_run = None
    if initialize_run is not None:
        params = dict(config.runs[index].activation_params)
        start = initialize_run(registry, config, index, init, act, params, dims, bundle.x_train[:256], torch.float32)
        return start.weights, start.biases
    gain = act.resolve_gain(config.runs[index].activation_params) or 1.0
    gen = torch.Generator().manual_seed(config.seed * 1_000 + index)
    weights, biases = [], []
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(dims)):
        w = torch.empty(fan_out, fan_in)
        ctx = InitContext.for_tensor(
            w,
            layer_index=layer,
            num_layers=len(dims) - 1,
            activation=config.runs[index].activation,
            activation_gain=gain,
            generator=gen,
            params=config.runs[index].init_params,
            activation_params=config.runs[index].activation_params,
        )
        registry.call_initializer(init, w, ctx)
        weights.append(w)
        biases.append(torch.zeros(fan_out))
    return weights, biases


def batch_order(num_train: int, batch: int, steps: int, seed: int) -> list[torch.Tensor]:
    """The mini-batches every naive model sees: a fresh permutation per epoch, last partial batch dropped."""
    gen = torch.Generator().manual_seed(seed)
    per_epoch = max(1, num_train // batch)
    order: list[torch.Tensor] = []
    while len(order) < steps:
        perm = torch.randperm(num_train, generator=gen)
        order += [perm[i * batch : (i + 1) * batch] for i in range(per_epoch)]
    return order[:steps]


def train_naive(config: ExperimentConfig, bundle: DatasetBundle, batches: list[torch.Tensor]) -> float:
    """What a user writes: build each model, then train it on every batch, one model after another.

    Returns the seconds spent in the training loops (model construction excluded)."""
    loop_s = 0.0
    for model in naive_models(config, bundle):
        if config.optimizer == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
        losses: list[float] = []
        start = time.perf_counter()
        for idx in batches:
            loss = F.cross_entropy(model(bundle.x_train[idx]), bundle.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        loop_s += time.perf_counter() - start
    return loop_s


# -- one workload ----------------------------------------------------------------------------------


@dataclass
class Figures:
    """Median seconds of each variant. ``*_loop_s``: the training steps only; ``*_wall_s``: the whole call."""

    workload: str
    optimizer: str
    steps: int
    runs: int
    flops_per_step: float
    required_flops_per_step: float
    stacked_loop_s: float  # engine's own "train" timing: step loop without evaluations and snapshots
    stacked_wall_s: float  # train(): set-up, step-0 snapshot, two evaluations, steps, result tables
    naive_loop_s: float
    naive_wall_s: float  # including building and initializing the 8 models
    instrumented_wall_s: float  # train() at the default snapshot and evaluation cadence
    instrumented_parts: dict[str, float]  # its median "init", "train", "eval", "snapshot" seconds

    def samples_per_s(self, seconds: float) -> float:
        return self.runs * self.steps * BATCH_SIZE / seconds

    def gflops(self, seconds: float) -> float:
        return self.flops_per_step * self.steps / seconds / 1e9

    @property
    def ratio(self) -> float:
        """Training-step throughput, stacked over naive (the target)."""
        return self.naive_loop_s / self.stacked_loop_s

    @property
    def wall_ratio(self) -> float:
        return self.naive_wall_s / self.stacked_wall_s

    @property
    def overhead(self) -> float:
        """Instrumentation cost measured inside the instrumented call (the target): seconds spent in
        snapshots (the required step-0 one included, so this is conservative) over the rest of the call.
        Measured in one call, it is immune to the load changes between calls that a shared machine has."""
        snap = self.instrumented_parts["snapshot"]
        return snap / (self.instrumented_parts["total"] - snap)

    @property
    def wall_overhead(self) -> float:
        """Instrumented over uninstrumented engine, whole calls (a cross-check; noisy under load)."""
        return self.instrumented_wall_s / self.stacked_wall_s - 1


def bench_workload(w: Workload, optimizer: str, bundle: DatasetBundle, repeats: int, threads: int) -> Figures:
    from core.training import train

    registry = get_registry()
    stacked = ExperimentConfig(
        runs=tuple(RunConfig(s, ACTIVATION) for s in SCHEMES),
        dataset=w.dataset,
        dataset_params=w.dataset_params,
        depth=w.depth,
        width=w.width,
        optimizer=optimizer,
        lr=LEARNING_RATES[optimizer],
        batch_size=BATCH_SIZE,
        steps=w.steps,
        seed=0,
        snapshots=0,  # only the step-0 snapshot
        eval_every=w.steps,  # evaluations at step 0 and at the end only
    ).validated(registry)
    instrumented = replace(stacked, snapshots=None)  # the default snapshot cadence, same evaluations
    batches = batch_order(bundle.x_train.shape[0], BATCH_SIZE, w.steps, seed=0)

    def run_engine(config: ExperimentConfig) -> tuple[float, dict[str, float]]:
        start = time.perf_counter()
        result = train(config, registry=registry, bundle=bundle, threads=threads)
        wall = time.perf_counter() - start
        bad = [r.id for r in result.runs if r.status != "ok"]
        if bad:
            print(f"    note: runs not ok ({', '.join(bad)}); the timing includes frozen runs", file=sys.stderr)
        return wall, dict(getattr(result, "timings", {}) or {})

    def run_naive() -> tuple[float, float]:
        start = time.perf_counter()
        loop = train_naive(stacked, bundle, batches)
        return time.perf_counter() - start, loop

    # Warm-up: a few steps of each variant (allocator, kernels, lazy imports).
    warm = max(2, w.steps // 10)
    train(replace(stacked, steps=warm, eval_every=warm), registry=registry, bundle=bundle, threads=threads)
    train(replace(instrumented, steps=warm), registry=registry, bundle=bundle, threads=threads)
    train_naive(stacked, bundle, batches[:warm])

    stacked_runs, naive_runs, instrumented_runs = [], [], []
    for _ in range(repeats):  # interleaved, so a load change on the machine hits all three alike
        stacked_runs.append(run_engine(stacked))
        naive_runs.append(run_naive())
        instrumented_runs.append(run_engine(instrumented))

    def med(values: list[float]) -> float:
        return statistics.median(values)

    parts = {
        key: med([t.get(key, math.nan) for _, t in instrumented_runs])
        for key in ("init", "train", "eval", "snapshot", "total")
    }
    return Figures(
        workload=w.key,
        optimizer=optimizer,
        steps=w.steps,
        runs=len(SCHEMES),
        flops_per_step=flops_per_step(bundle, w.width, w.depth, len(SCHEMES), BATCH_SIZE),
        required_flops_per_step=required_flops_per_step(bundle, w.width, w.depth, len(SCHEMES), BATCH_SIZE),
        # Without the engine's own timing, fall back to the whole call (a conservative figure).
        stacked_loop_s=med([t.get("train", wall) for wall, t in stacked_runs]),
        stacked_wall_s=med([wall for wall, _ in stacked_runs]),
        naive_loop_s=med([loop for _, loop in naive_runs]),
        naive_wall_s=med([wall for wall, _ in naive_runs]),
        instrumented_wall_s=med([wall for wall, _ in instrumented_runs]),
        instrumented_parts=parts,
    )


# -- report ----------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_figures(f: Figures, peak: float) -> list[tuple[str, bool]]:
    """Print one workload x optimizer block; return its (target description, met) pairs."""
    checks = []
    for label, loop, wall in (
        ("stacked", f.stacked_loop_s, f.stacked_wall_s),
        ("naive loop", f.naive_loop_s, f.naive_wall_s),
    ):
        print(
            f"  {label:<13} {f.samples_per_s(loop):>12,.0f} samples/s  {f.gflops(loop):>7.1f} GFLOP/s "
            f"({f.gflops(loop) / peak:5.1%} of peak)  steps {loop:6.3f} s, whole call {wall:6.3f} s"
        )
    target = TARGET_RATIO[f.workload]
    ok = f.ratio >= target
    print(
        f"  {'speed-up':<13} {f.ratio:>11.2f}x  stacked vs naive, training steps (whole calls: {f.wall_ratio:.2f}x)  "
        f"target >= {target}x  {verdict(ok)}"
    )
    checks.append((f"{f.workload} {f.optimizer}: stacked >= {target}x naive ({f.ratio:.2f}x)", ok))
    if f.workload == "synthetic":
        fraction = f.gflops(f.stacked_loop_s) / peak
        ok = fraction >= TARGET_PEAK_FRACTION
        required = fraction * f.required_flops_per_step / f.flops_per_step
        print(
            f"  {'peak share':<13} {fraction:>12.1%}  of matmul peak, stacked training steps "
            f"(work actually required: {required:.1%})  target >= {TARGET_PEAK_FRACTION:.0%}  {verdict(ok)}"
        )
        checks.append((f"{f.workload} {f.optimizer}: >= {TARGET_PEAK_FRACTION:.0%} of peak ({fraction:.1%})", ok))
    ok = f.overhead <= TARGET_OVERHEAD
    p = f.instrumented_parts
    steps_s = p["train"] if p["train"] > 0 else math.nan
    print(
        f"  {'overhead':<13} {f.overhead:>12.1%}  instrumentation at the default cadence: snapshot seconds over "
        f"the rest of the call  target <= {TARGET_OVERHEAD:.0%}  {verdict(ok)}\n"
        f"  {'':<13} {'':>12}  cross-check, whole calls: {f.wall_overhead:+.1%} "
        f"({f.instrumented_wall_s:.3f} s vs {f.stacked_wall_s:.3f} s; includes load noise between calls)"
    )
    print(
        f"  {'':<13} {'':>12}  instrumented call: init {p['init']:.3f} s, steps {p['train']:.3f} s, "
        f"evaluations {p['eval']:.3f} s, snapshots {p['snapshot']:.3f} s "
        f"(snapshots = {p['snapshot'] / steps_s:.0%} of steps, evaluations = {p['eval'] / steps_s:.0%})"
    )
    checks.append((f"{f.workload} {f.optimizer}: instrumentation overhead <= 15% ({f.overhead:.1%})", ok))
    return checks


def load_bundle(w: Workload) -> DatasetBundle:
    registry = get_registry()
    spec = registry.dataset(w.dataset)
    return spec.load(**w.dataset_params)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads for everything (default 1)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per figure (default 3; quick: 1)")
    parser.add_argument("--quick", action="store_true", help="smoke check: tiny sizes, one repeat")
    parser.add_argument("--only", choices=("digits", "synthetic"), help="run one workload only")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    torch.set_num_threads(args.threads)

    print(
        f"initlab engine bench: torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"{repeats} repeat(s){', QUICK (figures are not meaningful)' if args.quick else ''}"
    )
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {_load()}")
    sizes, reps = ((256, 512), 3) if args.quick else ((1024, 1536, 2048), 5)
    peak, peak_n = matmul_peak_gflops(sizes, reps)
    print(f"matmul peak: {peak:.1f} GFLOP/s (fp32, best of {reps} at n={'/'.join(map(str, sizes))}; best n={peak_n})")

    checks: list[tuple[str, bool]] = []
    records = []
    for w in workloads(args.quick):
        if args.only and w.key != args.only:
            continue
        bundle = load_bundle(w)
        for optimizer in ("sgd", "adam"):
            print(
                f"[{w.title}; {len(SCHEMES)} schemes @ {ACTIVATION}; {optimizer}, lr {LEARNING_RATES[optimizer]:g}; "
                f"batch {BATCH_SIZE}; {w.steps} steps]",
                flush=True,
            )
            figures = bench_workload(w, optimizer, bundle, repeats, args.threads)
            checks += print_figures(figures, peak)
            records.append(
                {
                    **figures.__dict__,
                    "stacked_samples_per_s": figures.samples_per_s(figures.stacked_loop_s),
                    "naive_samples_per_s": figures.samples_per_s(figures.naive_loop_s),
                    "stacked_gflops": figures.gflops(figures.stacked_loop_s),
                    "ratio": figures.ratio,
                    "wall_ratio": figures.wall_ratio,
                    "overhead": figures.overhead,
                }
            )
            sys.stdout.flush()
    print("targets:")
    for text, ok in checks:
        print(f"  {verdict(ok)}  {text}")
    print(f"load after: {_load()}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"peak_gflops": peak, "threads": args.threads, "quick": args.quick, "figures": records}, indent=2
            )
        )
    return 0


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"


if __name__ == "__main__":
    sys.exit(main())
