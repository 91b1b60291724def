"""The training engine: every run of an experiment trained together on identical mini-batches.

:func:`train` validates the config, loads the data, initializes each run (a plugin failure fails
only that run), stacks the runs into one :class:`core.stacked_mlp.StackedMLP` and trains them with
one optimizer over the stacked tensors (the fused SGD/Adam kernels of ``torch.optim``, see
:class:`core.stacked_mlp.StackedOptimizer`; both are elementwise, so a run's update never depends on
another run's numbers).

Data: every run sees the same mini-batches in the same order. Each epoch is a fresh permutation of
the training set drawn from a generator seeded by ``config.seed`` alone; the last partial batch is
dropped (when the training set is smaller than ``batch_size``, each step uses the whole set).
``config.steps`` (when set) trains exactly that many steps, cycling through epochs.

Measurements (see ``core.results`` for the tables, ``core.instrumentation`` for the definitions):

- ``steps``: each run's mini-batch loss at every step, kept in a preallocated tensor (no per-step
  host sync besides one divergence check) and turned into rows at progress updates and at the end.
- ``evals``: at step 0, every ``eval_every`` steps (default: once per epoch) and at the last step,
  train loss/accuracy on a fixed random subset of :data:`TRAIN_EVAL_SAMPLES` (512) training samples
  and validation loss/accuracy on the whole validation split, all runs at once under ``no_grad``.
- Snapshots at step 0 and ``config.snapshots`` more steps spread evenly over training (the last one
  at the final step). Default: :func:`default_snapshots`.

Divergence: a run whose step loss is NaN/Inf or above ``config.divergence_threshold`` is marked
diverged at that step and frozen there: its loss is masked out of the summed loss with
``torch.where`` (never multiplied by 0, which would turn NaN into NaN), its gradients are zeroed and
its parameters restored after every optimizer step, so they keep the values that produced the bad
loss. The other runs' numbers are the same as in a training without that run (bit for bit; only
the shared histogram edges of snapshots taken while the run was still active depend on it). A
diverged run's rows stop at its divergence step (``steps``, ``evals``; no snapshot from that step
on) and its ``final_train_loss`` is the loss that tripped the check. A run whose initializer or
activation plugin fails is ``"failed"``: it is left out of the stack (or, if the activation fails
mid-training, frozen like a diverged run) and the step is redone without it.

Thread safety: no global state is touched except the torch thread count when ``threads`` is given
(restored afterwards; torch's thread count is process-wide, so concurrent trainings should leave
``threads=None``). Cancellation is checked before every step.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from core.diagnosis import diagnose
from core.errors import ConfigError, DatasetError, ParamError, PluginCallError
from core.experiment import ExperimentConfig
from core.instrumentation import Snapshotter
from core.registry import Registry, get_registry
from core.results import ExperimentResult, RunSummary, make_table
from core.specs import DatasetBundle
from core.stacked_mlp import (
    ActivationFailure,
    ActivationGroup,
    RunInit,
    StackedMLP,
    StackedOptimizer,
    initialize_run,
    layer_dims,
    make_generator,
    per_run_loss,
    stack_runs,
)
from core.theory import predicted_pre_variances

TRAIN_EVAL_SAMPLES = 512  # training samples (a fixed random subset) used for the train loss/accuracy
PROBE_SAMPLES = 256  # the probe batch for activation statistics, also the data-dependent calibration batch
EVAL_CHUNK_ELEMENTS = 2**24  # bound on runs x rows x width per evaluation chunk
DEFAULT_SNAPSHOTS = 10  # default snapshot count after step 0, when the budget allows (see default_snapshots)
INSTRUMENTATION_BUDGET = 0.15  # target share of training time spent in snapshots
# Cost model of a step and a snapshot (see snapshot_cost_steps), fitted to bench/engine_costs.py:
# seconds per op launch, per multiply-add, per element touched once (one thread).
COST_PER_OP = 6.1e-6
COST_PER_MAC = 1.7e-11
COST_PER_ELEMENT = 2.2e-10
SNAPSHOT_COST_SAFETY = 1.4  # the fit's worst underestimate of the snapshot/step ratio was 1.35x
PROGRESS_UPDATES = 100  # progress callbacks per training (plus one per evaluation and per event)
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@dataclass
class ProgressUpdate:
    """Live progress: what happened since the previous update."""

    step: int  # optimizer steps done so far
    total_steps: int
    epoch: int  # completed epochs
    steps_rows: list[dict] = field(default_factory=list)  # new rows of the "steps" table
    evals_rows: list[dict] = field(default_factory=list)  # new rows of the "evals" table
    message: str = ""  # e.g. "run he_normal@relu diverged at step 312"


def snapshot_cost_steps(config: ExperimentConfig, num_features: int, num_classes: int) -> float:
    """Estimated cost of one snapshot, in training steps, for ``config`` (deterministic: sizes only).

    A model with three per-unit costs (:data:`COST_PER_OP`, :data:`COST_PER_MAC`,
    :data:`COST_PER_ELEMENT`) and counts read off the implementation:

    - a step: ``14 L + 40`` op launches, ``3 B R n_w`` multiply-adds (forward + backward) and
      ``R (k n_w + 8 B n_a)`` element passes, ``k`` = 8 (Adam), 5 (SGD with momentum) or 3 (SGD);
    - a snapshot: ``175 g + 31 L + 150`` launches (``g`` distinct layer shapes) and
      ``R (71 n_w + 135 P n_a)`` element-pass equivalents (statistics and histograms of weights and
      gradients; the probe forward, statistics and histograms of pre- and post-activations);

    ``L = depth + 1`` layers, ``R`` runs, ``B`` batch size, ``P`` probe size, ``n_w`` weights per run,
    ``n_a`` activations per sample and run. Fitted by least squares to 14 configurations (digits and
    784-dim synthetic data, 1-16 runs, widths 16-1024, depths 2-30, batch 32-256, SGD and Adam;
    measured ratios 3-24 steps per snapshot), the model's ratio is within 0.82-1.35x of the
    measurement; the estimate is multiplied by :data:`SNAPSHOT_COST_SAFETY` so it errs on the side of
    fewer snapshots.
    """
    dims = [num_features] + [config.width] * config.depth + [num_classes]
    layers = len(dims) - 1
    runs, batch = len(config.runs), config.batch_size
    n_w = sum(a * b for a, b in itertools.pairwise(dims))
    n_a = sum(dims[1:])
    groups = len(set(itertools.pairwise(dims)))
    passes = 8 if config.optimizer == "adam" else (5 if config.momentum else 3)
    step = (
        COST_PER_OP * (14 * layers + 40)
        + COST_PER_MAC * 3 * batch * runs * n_w
        + COST_PER_ELEMENT * runs * (passes * n_w + 8 * batch * n_a)
    )
    snapshot = COST_PER_OP * (175 * groups + 31 * layers + 150) + COST_PER_ELEMENT * runs * (
        71 * n_w + 135 * PROBE_SAMPLES * n_a
    )
    return SNAPSHOT_COST_SAFETY * snapshot / step


def default_snapshots(config: ExperimentConfig, total_steps: int, num_features: int, num_classes: int) -> int:
    """The default number of snapshots after step 0: as many as fit, up to :data:`DEFAULT_SNAPSHOTS`
    (10), so that all snapshots, step 0's included, cost at most :data:`INSTRUMENTATION_BUDGET` (15%)
    of the training: ``(n + 1) * c + 1 <= 0.15 * total_steps`` with ``c`` =
    :func:`snapshot_cost_steps` (the ``+ 1``: the final snapshot's extra gradient computation).

    So a short training gets few: e.g. 8 runs at width 64 / depth 10 on digits (c ~ 23 steps) get
    1 extra snapshot (the final state) from about 310 steps and 10 from about 1,700; a training
    too short even for that keeps only the required step-0 snapshot (set ``snapshots`` explicitly to
    trade speed for detail). A model rather than a timing taken during the run, so that the snapshot
    steps, like everything else in a result, depend on the config alone.
    """
    cost = snapshot_cost_steps(config, num_features, num_classes)
    affordable = int((INSTRUMENTATION_BUDGET * total_steps - 1) / cost) - 1
    return max(0, min(DEFAULT_SNAPSHOTS, affordable))


def snapshot_steps(total_steps: int, snapshots: int) -> list[int]:
    """Step 0 plus ``snapshots`` steps spread evenly up to ``total_steps`` (duplicates merged)."""
    if snapshots <= 0:
        return [0]
    return sorted({round(i * total_steps / snapshots) for i in range(snapshots + 1)})


def load_bundle(config: ExperimentConfig, registry: Registry) -> DatasetBundle:
    """Load ``config.dataset``; DatasetError says what went wrong (a plugin's bug included)."""
    spec = registry.dataset(config.dataset)
    try:
        bundle = spec.load(**config.dataset_params)
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"dataset {spec.name!r} could not be loaded: {type(exc).__name__}: {exc}") from exc
    if not isinstance(bundle, DatasetBundle):
        raise DatasetError(f"dataset {spec.name!r} returned {type(bundle).__name__}, not a DatasetBundle")
    check_bundle(bundle, spec.name)
    return bundle


def check_bundle(bundle: DatasetBundle, owner: str) -> None:
    try:
        bundle.check(owner)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None


def train(
    config: ExperimentConfig,
    *,
    registry: Registry | None = None,
    progress: Callable[[ProgressUpdate], None] | None = None,
    cancel: threading.Event | None = None,
    bundle: DatasetBundle | None = None,
    threads: int | None = None,
) -> ExperimentResult:
    """Train every run of ``config`` side by side and return the measurements.

    Raises ConfigError for an invalid config (including a memory estimate over the budget) and
    DatasetError when the data cannot be loaded. A run whose initializer or activation plugin
    fails gets status ``"failed"`` with the plugin's error; the others train.
    """
    registry = registry if registry is not None else get_registry()
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError("threads", f"got {threads!r}; allowed: a positive integer or None")
    config = config.validated(registry)
    if bundle is None:
        bundle = load_bundle(config, registry)
    else:
        check_bundle(bundle, f"dataset {config.dataset!r}")
    config.check_memory(bundle.num_features, bundle.num_classes)
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _Trainer(config, registry, bundle, progress, cancel).run()
    finally:
        if threads is not None:
            torch.set_num_threads(previous_threads)


class _Trainer:
    """One training: set-up, the step loop, evaluations, snapshots, and the result."""

    def __init__(
        self,
        config: ExperimentConfig,
        registry: Registry,
        bundle: DatasetBundle,
        progress: Callable[[ProgressUpdate], None] | None,
        cancel: threading.Event | None,
    ) -> None:
        self.t_start = time.perf_counter()
        self.config = config
        self.registry = registry
        self.progress = progress
        self.cancel = cancel
        self.dtype = torch.float64 if config.dtype == "float64" else torch.float32
        self.x_train = bundle.x_train.to(self.dtype)
        self.y_train = bundle.y_train
        self.x_val = bundle.x_val.to(self.dtype)
        self.y_val = bundle.y_val
        self.num_classes = bundle.num_classes
        n = self.x_train.shape[0]
        self.batch_size = min(config.batch_size, n)
        self.steps_per_epoch = max(1, n // config.batch_size)
        self.total_steps = config.total_steps(n)
        self.eval_every = config.eval_every or self.steps_per_epoch
        snapshots = config.snapshots
        if snapshots is None:
            snapshots = default_snapshots(config, self.total_steps, bundle.num_features, bundle.num_classes)
        self.snapshot_steps = snapshot_steps(self.total_steps, snapshots)
        subset = torch.randperm(n, generator=make_generator(config.seed, "subset"))
        train_eval = subset[:TRAIN_EVAL_SAMPLES]
        self.x_eval = torch.cat([self.x_train[train_eval], self.x_val])
        self.y_eval = torch.cat([self.y_train[train_eval], self.y_val])
        self.n_train_eval = int(train_eval.shape[0])
        self.probe = self.x_train[subset[:PROBE_SAMPLES]]
        self.run_ids = config.run_ids()
        num_runs = len(config.runs)
        self.status = ["ok"] * num_runs
        self.errors: list[str | None] = [None] * num_runs
        self.diverged_at: list[int | None] = [None] * num_runs
        self.diverged_loss: list[float | None] = [None] * num_runs
        self.timings = {"init": 0.0, "train": 0.0, "eval": 0.0, "snapshot": 0.0}
        self.evals_rows: list[dict[str, Any]] = []
        self.pending_steps_from = 0  # first step not yet sent in a progress update
        self.pending_evals_from = 0
        self.steps_done = 0

    # -- set-up ------------------------------------------------------------------------------------
    def _initialize(self) -> StackedMLP | None:
        config, registry = self.config, self.registry
        dims = layer_dims(config, self.x_train.shape[1], self.num_classes)
        inits: dict[int, RunInit] = {}
        act_info: dict[int, tuple[Any, dict[str, Any]]] = {}
        for i, run in enumerate(config.runs):
            init_spec = registry.initializer(run.initializer)
            act_spec = registry.activation(run.activation)
            try:
                act_params = registry.check_activation(act_spec, run.activation_params)
                inits[i] = initialize_run(
                    registry, config, i, init_spec, act_spec, act_params, dims, self.probe, self.dtype
                )
                act_info[i] = (act_spec, act_params)
            except (PluginCallError, ParamError) as exc:
                self.status[i] = "failed"
                self.errors[i] = f"{exc}"
        if not inits:
            return None
        # Internal order: runs grouped by (activation, params), groups in order of first appearance.
        keys: dict[tuple[str, str], list[int]] = {}
        for i in inits:
            spec, params = act_info[i]
            keys.setdefault((spec.name, repr(sorted(params.items()))), []).append(i)
        self.order_internal: list[int] = [i for members in keys.values() for i in members]  # internal -> config
        groups, start = [], 0
        for members in keys.values():
            spec, params = act_info[members[0]]
            groups.append(ActivationGroup(start, start + len(members), spec, params))
            start += len(members)
        self.internal_of = {i: k for k, i in enumerate(self.order_internal)}  # config -> internal
        model = stack_runs([inits[i] for i in self.order_internal], groups)
        input_moment = float(self.probe.to(torch.float64).pow(2).mean())
        predicted = torch.full((model.num_runs, model.depth + 1), math.nan, dtype=torch.float64)
        for k, i in enumerate(self.order_internal):
            spec, params = act_info[i]
            values = predicted_pre_variances(
                dims[:-1],
                inits[i].weight_vars,
                lambda z, spec=spec, params=params: spec.fn(z, **params),
                input_moment,
                inits[i].bias_means,
                inits[i].bias_vars,
            )
            predicted[k] = torch.tensor(values, dtype=torch.float64)
        self.predicted = predicted
        return model

    def _optimizer(self, model: StackedMLP) -> StackedOptimizer:
        config = self.config
        return StackedOptimizer(
            model, config.optimizer, config.lr, momentum=config.momentum, betas=ADAM_BETAS, eps=ADAM_EPS
        )

    # -- the loop --------------------------------------------------------------------------------------
    def run(self) -> ExperimentResult:
        t0 = time.perf_counter()
        model = self._initialize()
        self.timings["init"] = time.perf_counter() - t0
        cancelled = False
        steps_done = 0
        if model is not None:
            cancelled, steps_done = self._train(model)
        return self._result(cancelled, steps_done)

    def _batch(self, step: int) -> torch.Tensor:
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self._perm_epoch:
            self._perm = torch.randperm(self.x_train.shape[0], generator=self._data_gen)
            self._perm_epoch = epoch
        return self._perm[position * self.batch_size : (position + 1) * self.batch_size]

    def _train(self, model: StackedMLP) -> tuple[bool, int]:
        config = self.config
        self.model = model
        runs = model.num_runs
        self._data_gen = make_generator(config.seed, "batches")
        self._perm_epoch = -1
        self._perm = torch.empty(0, dtype=torch.long)
        opt = self._optimizer(model)
        params, grads = model.parameters(), model.gradients()
        self.losses = torch.full((self.total_steps, runs), math.nan, dtype=self.dtype)
        self.active = torch.ones(runs, dtype=torch.bool)  # not frozen (internal order)
        self.frozen: list[int] = []
        self.frozen_index = torch.empty(0, dtype=torch.long)
        self.frozen_values: list[torch.Tensor] = []
        self.last_step_of: dict[int, int] = {}  # internal run -> last step with a steps row
        config_order = sorted(self.order_internal)  # snapshot rows follow config order
        snapshotter = Snapshotter(
            model,
            self.probe,
            [self.internal_of[i] for i in config_order],
            [self.run_ids[i] for i in config_order],
            self.predicted,
        )
        self.snapshotter = snapshotter
        threshold = config.divergence_threshold
        snap_set = set(self.snapshot_steps)
        progress_every = max(1, self.total_steps // PROGRESS_UPDATES)
        self._evaluate(0)
        cancelled = False
        step = 0
        t_train = time.perf_counter()
        spent_before = self.timings["snapshot"] + self.timings["eval"]
        while step < self.total_steps:
            if self.cancel is not None and self.cancel.is_set():
                cancelled = True
                break
            if len(self.frozen) == runs:
                self._event(f"every run diverged or failed; training stopped at step {step}", step)
                break
            idx = self._batch(step)
            x, y = self.x_train[idx], self.y_train[idx]
            snap = step in snap_set
            try:
                loss, pre_grad = self._forward_backward(x, y, snap)
            except ActivationFailure as exc:
                self._fail_group(exc, step)
                continue  # redo this step without the failed runs (no parameter has changed)
            detached = loss.detach()
            self.losses[step] = detached
            watched = torch.where(self.active, detached, 0.0) if self.frozen else detached
            if not float(watched.max()) <= threshold:  # NaN-safe: max() propagates NaN
                self._diverge(self.active & (~torch.isfinite(loss) | (loss > threshold)), step, loss)
            if snap:  # after the divergence check: a run diverging now has no meaningful gradient
                t = time.perf_counter()
                snapshotter.capture(step, self.active.clone(), pre_grad)
                self.timings["snapshot"] += time.perf_counter() - t
            if self.frozen:
                for g in grads:
                    g.index_fill_(0, self.frozen_index, 0.0)
            opt.step()
            if self.frozen:
                for p, v in zip(params, self.frozen_values, strict=True):
                    p.index_copy_(0, self.frozen_index, v)
            step += 1
            evaluate = step % self.eval_every == 0 or step == self.total_steps
            if evaluate:
                self._evaluate(step)
            if self.progress is not None and (evaluate or step % progress_every == 0 or step == self.total_steps):
                self._send_progress(step)
        spent = self.timings["snapshot"] + self.timings["eval"] - spent_before
        self.timings["train"] = time.perf_counter() - t_train - spent
        if not cancelled and step == self.total_steps and self.total_steps in snap_set and len(self.frozen) < runs:
            idx = self._batch(step)
            t = time.perf_counter()
            try:
                _, pre_grad = self._forward_backward(self.x_train[idx], self.y_train[idx], True)
                snapshotter.capture(step, self.active.clone(), pre_grad)
            except ActivationFailure as exc:
                self._fail_group(exc, step)
            self.timings["snapshot"] += time.perf_counter() - t
        if (cancelled or step < self.total_steps) and self.last_eval_step != step:
            self._evaluate(step)
        self.steps_done = step
        if self.progress is not None:
            self._send_progress(step, message=f"cancelled at step {step}" if cancelled else "")
        return cancelled, step

    def _forward_backward(
        self, x: torch.Tensor, y: torch.Tensor, snap: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        """Forward and backward on one batch; returns per-run losses and (at snapshots) the norm of
        the gradient w.r.t. each layer's pre-activations."""
        model = self.model
        pre_grad: list[torch.Tensor | None] = [None] * (model.depth + 1)
        record = None
        if snap:

            def record(layer: int, z: torch.Tensor, _h: torch.Tensor) -> None:
                if z.requires_grad:

                    def hook(g: torch.Tensor, layer: int = layer) -> None:
                        pre_grad[layer] = torch.linalg.vector_norm(
                            g.detach().reshape(g.shape[0], -1).to(torch.float64), dim=1
                        )

                    z.register_hook(hook)

        logits = model.forward(x, record=record)
        loss = per_run_loss(logits, y)
        total = torch.where(self.active, loss, torch.zeros_like(loss)).sum() if self.frozen else loss.sum()
        total.backward()
        return loss, pre_grad

    # -- events ----------------------------------------------------------------------------------------
    def _freeze(self, internal: Sequence[int]) -> None:
        for k in internal:
            if k not in self.frozen:
                self.frozen.append(k)
                self.active[k] = False
        self.frozen.sort()
        self.frozen_index = torch.tensor(self.frozen, dtype=torch.long)
        self.frozen_values = [p.index_select(0, self.frozen_index) for p in self.model.parameters()]

    def _diverge(self, bad: torch.Tensor, step: int, loss: torch.Tensor) -> None:
        newly = [int(k) for k in torch.nonzero(bad).flatten()]
        values = loss.detach().to(torch.float64).tolist()
        for k in newly:
            i = self.order_internal[k]
            self.status[i] = "diverged"
            self.diverged_at[i] = step
            self.diverged_loss[i] = values[k]
            self.last_step_of[k] = step
            reason = (
                "is not finite" if not math.isfinite(values[k]) else f"exceeds {self.config.divergence_threshold:g}"
            )
            self._event(f"run {self.run_ids[i]} diverged at step {step}: its loss {values[k]:.4g} {reason}", step)
        self._freeze(newly)

    def _fail_group(self, exc: ActivationFailure, step: int) -> None:
        group = self.model.groups[exc.group]
        group.failed = True
        failure = self.registry._record_call_failure(group.spec, str(exc))
        members = list(range(group.start, group.stop))
        for k in members:
            i = self.order_internal[k]
            self.status[i] = "failed"
            self.errors[i] = f"{failure} (at step {step})"
            self.last_step_of[k] = step - 1
            self._event(f"run {self.run_ids[i]} failed at step {step}: {failure}", step)
        self._freeze(members)

    def _event(self, message: str, step: int) -> None:
        if self.progress is not None:
            self._send_progress(step, message=message)

    # -- evaluation ------------------------------------------------------------------------------------
    def _stacked_eval(self) -> list[list[float]]:
        """Train-subset and validation loss and accuracy of every run: one forward pass over both
        (in chunks), all runs at once. Returns ``[train_loss, val_loss, train_acc, val_acc]`` lists."""
        model = self.model
        runs = model.num_runs
        x, y, n_train = self.x_eval, self.y_eval, self.n_train_eval
        width = max(self.config.width, self.num_classes, x.shape[1])
        chunk = max(1, EVAL_CHUNK_ELEMENTS // (runs * width))
        sums = torch.zeros(4, runs, dtype=torch.float64)  # train loss, val loss, train correct, val correct
        with torch.no_grad():
            for start in range(0, x.shape[0], chunk):
                xb, yb = x[start : start + chunk], y[start : start + chunk]
                logits = model.forward(xb)
                index = yb.view(1, -1, 1).expand(runs, -1, 1)
                nll = -torch.log_softmax(logits, dim=2).gather(2, index).squeeze(2).to(torch.float64)
                hit = (logits.argmax(dim=2) == yb.view(1, -1)).to(torch.float64)
                cut = min(max(n_train - start, 0), xb.shape[0])  # rows before `cut` are training rows
                sums[0] += nll[:, :cut].sum(dim=1)
                sums[1] += nll[:, cut:].sum(dim=1)
                sums[2] += hit[:, :cut].sum(dim=1)
                sums[3] += hit[:, cut:].sum(dim=1)
        n_val = x.shape[0] - n_train
        counts = torch.tensor([n_train, n_val, n_train, n_val], dtype=torch.float64).view(4, 1)
        return (sums / counts).tolist()

    def _evaluate(self, step: int) -> None:
        self.last_eval_step = step
        t = time.perf_counter()
        try:
            values = self._stacked_eval()
        except ActivationFailure as exc:
            self._fail_group(exc, step)
            self.timings["eval"] += time.perf_counter() - t
            self._evaluate(step)
            return
        epoch = step / self.steps_per_epoch
        for i in sorted(self.order_internal):
            k = self.internal_of[i]
            if self.status[i] == "failed" or (self.diverged_at[i] is not None and step > self.diverged_at[i]):
                continue
            self.evals_rows.append(
                {
                    "run": self.run_ids[i],
                    "step": step,
                    "epoch": epoch,
                    "train_loss": values[0][k],
                    "val_loss": values[1][k],
                    "train_accuracy": values[2][k],
                    "val_accuracy": values[3][k],
                }
            )
        self.timings["eval"] += time.perf_counter() - t

    # -- rows and progress -------------------------------------------------------------------------
    def _flush_steps(self, upto: int) -> list[dict[str, Any]]:
        """Rows of the steps table for steps ``pending_steps_from..upto-1`` (for progress updates)."""
        start = self.pending_steps_from
        if upto <= start:
            return []
        block = self.losses[start:upto].tolist()
        rows = []
        for offset, values in enumerate(block):
            s = start + offset
            for i in sorted(self.order_internal):
                k = self.internal_of[i]
                if s <= self.last_step_of.get(k, upto - 1):
                    rows.append({"run": self.run_ids[i], "step": s, "train_loss": values[k]})
        self.pending_steps_from = upto
        return rows

    def _steps_table(self) -> pd.DataFrame:
        """The steps table, step-major (runs in config order within a step), from the loss buffer."""
        losses = getattr(self, "losses", None)
        if losses is None or self.steps_done == 0:
            return make_table("steps")
        config_order = sorted(self.order_internal)
        cols = [self.internal_of[i] for i in config_order]
        values = losses[: self.steps_done][:, cols].numpy()
        steps = np.arange(self.steps_done)
        last = np.array([self.last_step_of.get(k, self.steps_done - 1) for k in cols])
        keep = steps[:, None] <= last[None, :]
        ids = np.array([self.run_ids[i] for i in config_order], dtype=object)
        return make_table(
            "steps",
            {
                "run": np.broadcast_to(ids, keep.shape)[keep],
                "step": np.broadcast_to(steps[:, None], keep.shape)[keep],
                "train_loss": values[keep],
            },
        )

    def _send_progress(self, step: int, message: str = "") -> None:
        if self.progress is None:
            return
        steps_rows = self._flush_steps(step)
        evals_rows = self.evals_rows[self.pending_evals_from :]
        self.pending_evals_from = len(self.evals_rows)
        update = ProgressUpdate(
            step=step,
            total_steps=self.total_steps,
            epoch=step // self.steps_per_epoch,
            steps_rows=steps_rows,
            evals_rows=[dict(r) for r in evals_rows],
            message=message,
        )
        self.progress(update)

    # -- the result --------------------------------------------------------------------------------------
    def _result(self, cancelled: bool, steps_done: int) -> ExperimentResult:
        config = self.config
        steps = self._steps_table()
        evals = (
            make_table("evals", {c: [r[c] for r in self.evals_rows] for c in self.evals_rows[0]})
            if self.evals_rows
            else make_table("evals")
        )
        snap = getattr(self, "snapshotter", None)
        if snap is not None and snap.tables.layers["run"]:
            layers = make_table("layers", snap.tables.layers)
            histograms = make_table("histograms", snap.tables.histograms)
        else:
            layers, histograms = make_table("layers"), make_table("histograms")
        last_eval: dict[str, dict[str, Any]] = {}
        for row in self.evals_rows:
            last_eval[row["run"]] = row
        summaries = []
        for i, run in enumerate(config.runs):
            rid = self.run_ids[i]
            status = self.status[i]
            if cancelled and status == "ok":
                status = "cancelled"
            summary = RunSummary(
                id=rid,
                initializer=run.initializer,
                activation=run.activation,
                init_params=dict(run.init_params),
                activation_params=dict(run.activation_params),
                status=status,
                diverged_at_step=self.diverged_at[i],
                error=self.errors[i],
            )
            if status == "diverged":
                summary.final_train_loss = self.diverged_loss[i]
            elif status != "failed" and rid in last_eval:
                row = last_eval[rid]
                summary.final_train_loss = row["train_loss"]
                summary.final_val_loss = row["val_loss"]
                summary.final_train_accuracy = row["train_accuracy"]
                summary.final_val_accuracy = row["val_accuracy"]
            summary.diagnosis = diagnose(summary, layers[layers["run"] == rid], depth=config.depth, width=config.width)
            summaries.append(summary)
        elapsed = time.perf_counter() - self.t_start
        timings = {**self.timings, "total": elapsed, "steps": float(steps_done)}
        return ExperimentResult(
            config,
            summaries,
            steps=steps,
            evals=evals,
            layers=layers,
            histograms=histograms,
            cancelled=cancelled,
            elapsed_s=elapsed,
            timings=timings,
        )
