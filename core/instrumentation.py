"""Snapshots: per run and per layer statistics and histograms, computed for all runs at once.

A snapshot at step ``s`` describes the parameters after ``s`` updates. Definitions (layer ``l`` in
``0..depth``; ``depth`` is the output layer, whose "activation" is the identity, i.e. the logits):

- ``weight_std``: population std of the entries of ``W_l`` (biases excluded).
- ``grad_norm``: Frobenius norm of the run's loss gradient w.r.t. ``W_l`` on the mini-batch of step
  ``s`` (the batch the next update uses; the final snapshot uses the next batch of the schedule
  without updating). Step 0's gradient is the first batch's.
- ``pre_grad_norm``: norm of the gradient w.r.t. the layer's pre-activations on that batch (the
  back-propagated error signal the diagnosis uses for vanishing/exploding gradients).
- On the fixed probe batch (``core.training.PROBE_SAMPLES`` training samples), pooled over samples
  and units: ``act_mean``/``act_std`` of the post-activations (logits for the output layer),
  ``pre_mean``/``pre_std``/``pre_var`` of the pre-activations (``pre_var`` is what ``predicted_var``
  predicts).
- ``saturated_fraction``: fraction of post-activation values the activation's ``saturated(post)``
  marks (e.g. ``|tanh| > 0.99``). **NaN** when the activation declares no ``saturated`` (ReLU,
  identity, ...) and for the output layer: "not applicable", never a misleading 0.
- ``dead_fraction``: fraction of the layer's units whose ``inactive(pre)`` holds for every probe
  sample (a dead ReLU). NaN when the activation declares no ``inactive`` and for the output layer.
- ``unit_spread``: ``max_i max_j |M[i, j] - M[0, j]| / max |M|`` where the rows of ``M`` are the
  units' incoming weights and bias (0 when ``M`` is all zeros): 0 means every unit of the layer
  computes the same function (symmetry not broken).
- ``predicted_var``: ``core.theory``'s prediction of ``pre_var`` at initialization; step 0 only (NaN
  at later steps, where the initialization theory no longer applies).

Everything is computed on stacked tensors: layers with the same shape are processed together and
runs are never looped over in Python.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from core.histograms import NUM_BINS, count_true, stacked_histograms
from core.stacked_mlp import StackedMLP

LAYER_METRICS = (
    "weight_std",
    "grad_norm",
    "act_mean",
    "act_std",
    "saturated_fraction",
    "dead_fraction",
    "predicted_var",
    "pre_mean",
    "pre_std",
    "pre_var",
    "pre_grad_norm",
    "unit_spread",
)


@dataclass
class SnapshotTables:
    """Column lists of the ``layers`` and ``histograms`` tables, appended snapshot after snapshot."""

    layers: dict[str, list[Any]] = field(
        default_factory=lambda: {c: [] for c in ("run", "step", "layer", *LAYER_METRICS)}
    )
    histograms: dict[str, list[Any]] = field(
        default_factory=lambda: {
            c: []
            for c in ("run", "step", "layer", "kind", "bin_edges", "counts", "clipped_low", "clipped_high", "nan_count")
        }
    )


SNAPSHOT_CHUNK_ELEMENTS = 2**22  # values stacked at once per statistic (bounds a snapshot's extra memory)


class _Chunker:
    """Collects per-layer tensors and hands them on stacked as ``(G, R, ...)``: runs of consecutive,
    equally shaped layers, at most :data:`SNAPSHOT_CHUNK_ELEMENTS` values per stack, so that layers
    are processed together (few, large operations) without holding every layer's copy at once."""

    def __init__(self, handle: Callable[..., None]) -> None:
        self.handle = handle
        self.layers: list[int] = []
        self.items: list[list[torch.Tensor]] = []

    def add(self, layer: int, *tensors: torch.Tensor) -> None:
        first = tensors[0]
        if self.items and (
            first.shape != self.items[0][0].shape or (len(self.items) + 1) * first.numel() > SNAPSHOT_CHUNK_ELEMENTS
        ):
            self.flush()
        self.layers.append(layer)
        self.items.append([t.detach() for t in tensors])

    def flush(self) -> None:
        if self.items:
            self.handle(self.layers, *(torch.stack(ts) for ts in zip(*self.items, strict=True)))
        self.layers, self.items = [], []


def _mean_std(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and population std over the last dimension, two-pass (``torch.std_mean`` is ~5x slower)."""
    n = v.shape[-1]
    mean = v.sum(dim=-1, keepdim=True) / n
    std = torch.linalg.vector_norm(v - mean, dim=-1) / math.sqrt(n)
    return mean.squeeze(-1).to(torch.float64), std.to(torch.float64)


def _unit_spread(weights: torch.Tensor, biases: torch.Tensor) -> torch.Tensor:
    """``weights (G, R, out, in)``, ``biases (G, R, 1, out)`` -> relative unit spread ``(G, R)``."""

    def spread_and_scale(m: torch.Tensor, unit_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        # Deviation from the first unit, not from the mean: identical units give exactly 0 (a float32
        # mean would leave a ~1e-7 rounding floor).
        centred = m - m.narrow(unit_dim, 0, 1)
        spread = centred.abs().amax(dim=(2, 3))
        scale = m.abs().amax(dim=(2, 3))
        return spread, scale

    w_spread, w_scale = spread_and_scale(weights, 2)
    b_spread, b_scale = spread_and_scale(biases, 3)
    spread = torch.maximum(w_spread, b_spread).to(torch.float64)
    scale = torch.maximum(w_scale, b_scale).to(torch.float64)
    return torch.where(scale > 0, spread / scale, torch.zeros_like(scale))


class Snapshotter:
    """Computes snapshots of a :class:`StackedMLP` and appends them to :class:`SnapshotTables`.

    ``order`` lists the internal run index of each config run that trains, in config order, and
    ``run_ids`` their ids; rows follow that order.
    """

    def __init__(
        self,
        model: StackedMLP,
        probe: torch.Tensor,
        order: Sequence[int],
        run_ids: Sequence[str],
        predicted: torch.Tensor,
        bins: int = NUM_BINS,
    ) -> None:
        self.model = model
        self.probe = probe
        self.order = list(order)
        self.run_ids = list(run_ids)
        self.predicted = predicted  # (R, L) float64, internal order
        self.bins = bins
        self.tables = SnapshotTables()

    def capture(self, step: int, include: torch.Tensor, pre_grad_norms: Sequence[torch.Tensor | None]) -> None:
        """Record step ``step``. This step's weight gradients must be in ``model.weight_grads``;
        ``include[k]`` (internal order) says which runs get rows (and place histogram edges);
        ``pre_grad_norms[l]`` is ``(R,)`` or None."""
        model = self.model
        num_layers = model.depth + 1
        runs = model.num_runs
        stats: dict[str, torch.Tensor] = {
            name: torch.full((num_layers, runs), math.nan, dtype=torch.float64) for name in LAYER_METRICS
        }
        histograms: dict[str, list[tuple[list[int], Any]]] = {k: [] for k in ("weight", "grad", "pre", "post")}

        def parameters(layers: list[int], w: torch.Tensor, b: torch.Tensor, g: torch.Tensor) -> None:
            idx = torch.tensor(layers)
            flat_w, flat_g = w.view(len(layers), runs, -1), g.view(len(layers), runs, -1)
            stats["weight_std"][idx] = _mean_std(flat_w)[1]
            stats["unit_spread"][idx] = _unit_spread(w, b)
            stats["grad_norm"][idx] = torch.linalg.vector_norm(flat_g, dim=2).to(torch.float64)
            histograms["weight"].append((layers, stacked_histograms(flat_w, self.bins, active=include)))
            histograms["grad"].append((layers, stacked_histograms(flat_g, self.bins, active=include)))

        def activations(layers: list[int], z: torch.Tensor, h: torch.Tensor) -> None:  # (G, R, P, out)
            idx = torch.tensor(layers)
            flat_z, flat_h = z.view(len(layers), runs, -1), h.view(len(layers), runs, -1)
            mean, std = _mean_std(flat_z)
            stats["pre_mean"][idx], stats["pre_std"][idx], stats["pre_var"][idx] = mean, std, std * std
            stats["act_mean"][idx], stats["act_std"][idx] = _mean_std(flat_h)
            self._dead(stats["dead_fraction"], layers, z)
            self._saturated(stats["saturated_fraction"], layers, flat_h)
            histograms["pre"].append((layers, stacked_histograms(flat_z, self.bins, active=include)))
            histograms["post"].append((layers, stacked_histograms(flat_h, self.bins, active=include)))

        with torch.no_grad():
            chunker = _Chunker(parameters)
            for layer in range(num_layers):
                chunker.add(layer, model.weights[layer], model.biases[layer], model.weight_grads[layer])
            chunker.flush()
            chunker = _Chunker(activations)
            model.forward(self.probe, record=lambda layer, z, h: chunker.add(layer, z, h))
            chunker.flush()
        for layer in range(num_layers):
            if pre_grad_norms[layer] is not None:
                stats["pre_grad_norm"][layer] = pre_grad_norms[layer].to(torch.float64)
        if step == 0:
            stats["predicted_var"] = self.predicted.T.clone()
        self._append(step, include, stats, histograms)

    def _saturated(self, out: torch.Tensor, layers: list[int], post: torch.Tensor) -> None:
        """``post (G, R, n)``: fraction of values the group's ``saturated`` mask marks, all layers at once."""
        hidden = [g for g, layer in enumerate(layers) if layer < self.model.depth]
        if not hidden:
            return
        rows = torch.tensor([layers[g] for g in hidden])
        part_all = post if len(hidden) == len(layers) else post[torch.tensor(hidden)]
        for group in self.model.groups:
            if group.spec.saturated is None or group.failed:
                continue
            try:
                mask = group.spec.saturated(part_all[:, group.start : group.stop])
                fraction = count_true(mask).to(torch.float64) / mask.shape[-1]
            except Exception:  # a faulty plugin mask leaves NaN ("unknown")
                continue
            out[rows, group.start : group.stop] = fraction

    def _dead(self, out: torch.Tensor, layers: list[int], pre: torch.Tensor) -> None:
        """``pre (G, R, P, out)``: a unit is dead when ``inactive`` holds for all ``P`` probe samples."""
        hidden = [g for g, layer in enumerate(layers) if layer < self.model.depth]
        if not hidden:
            return
        rows = torch.tensor([layers[g] for g in hidden])
        part_all = pre if len(hidden) == len(layers) else pre[torch.tensor(hidden)]
        for group in self.model.groups:
            if group.spec.inactive is None or group.failed:
                continue
            try:
                dead = group.spec.inactive(part_all[:, group.start : group.stop]).all(dim=2)
                fraction = count_true(dead).to(torch.float64) / dead.shape[-1]
            except Exception:
                continue
            out[rows, group.start : group.stop] = fraction

    def _append(
        self,
        step: int,
        include: torch.Tensor,
        stats: dict[str, torch.Tensor],
        histograms: dict[str, list[tuple[list[int], Any]]],
    ) -> None:
        keep = [(rid, k) for rid, k in zip(self.run_ids, self.order, strict=True) if bool(include[k])]
        if not keep:
            return
        cols = self.tables.layers
        values = {name: t.tolist() for name, t in stats.items()}
        for layer in range(self.model.depth + 1):
            for rid, k in keep:
                cols["run"].append(rid)
                cols["step"].append(step)
                cols["layer"].append(layer)
                for name in LAYER_METRICS:
                    cols[name].append(values[name][layer][k])
        hcols = self.tables.histograms
        for kind, groups in histograms.items():
            for layers, batch in groups:
                edges = batch.edges.tolist()
                counts = batch.counts.tolist()
                low, high, nans = batch.clipped_low.tolist(), batch.clipped_high.tolist(), batch.nan_count.tolist()
                for g, layer in enumerate(layers):
                    for rid, k in keep:
                        hcols["run"].append(rid)
                        hcols["step"].append(step)
                        hcols["layer"].append(layer)
                        hcols["kind"].append(kind)
                        hcols["bin_edges"].append(edges[g])
                        hcols["counts"].append(counts[g][k])
                        hcols["clipped_low"].append(low[g][k])
                        hcols["clipped_high"].append(high[g][k])
                        hcols["nan_count"].append(nans[g][k])
