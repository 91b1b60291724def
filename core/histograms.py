"""Histograms with shared, outlier-robust bin edges, computed for many runs and layers at once.

The dashboard overlays the histograms of several runs for one (step, layer, kind), so those runs
must share bin edges. Edges that simply span the pooled minimum and maximum fail in the common
case of one run whose values are much larger than everyone else's (large-normal init, or a run
that is blowing up): the shared range stretches to that run and every other run lands in one or
two bins. So the edges are chosen in three steps (:func:`shared_ranges`):

1. **Per-run robust interval.** For each run, ``[q_lo, q_hi]`` = its 0.5% and 99.5% quantiles
   (:data:`ROBUST_QUANTILE`), ignoring NaN/Inf; a run's own few extreme values cannot stretch it.
2. **Outlier runs are left out of the union.** A run whose interval is more than
   :data:`SPREAD_CAP` (10) times wider than the median interval width of the runs (median over
   the runs with a positive width) does not widen the shared range; its values beyond the range
   are clipped into the end bins and counted. The range is the union of the remaining intervals.
3. **A margin, so ordinary tails are not clipped.** The union is widened by :data:`EDGE_MARGIN`
   (50%) of its width on each side, but never beyond the pooled min/max of the finite values. For
   bell-shaped data (a Gaussian's 0.5-99.5% interval is +-2.58 sd; widened: +-5.15 sd) the range is
   simply the exact min..max and nothing is clipped; a few extreme values (or an outlier run) are.

Degenerate cases: all values equal ``v`` -> range ``[v - 0.5, v + 0.5]`` (``[-0.5, 0.5]`` for
zeros), so the values sit in the middle bins. The bins are :data:`NUM_BINS` (40) equal-width bins.

Counting: values below the range go into the first bin and values above into the last
(``clipped_low`` / ``clipped_high`` report how many, ±Inf included); NaN values are not binned and
are reported as ``nan_count``. So ``counts.sum() + nan_count == number of values`` always. (The top
edge sits 2**-16 of the range's width above the range's top, so that rounding never counts the
maximum itself as clipped.)
Quantiles are estimated on a strided subsample of at most :data:`QUANTILE_SAMPLE` values per run
(they only place the edges; the counts always use every value).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

NUM_BINS = 40
ROBUST_QUANTILE = 0.005
SPREAD_CAP = 10.0
EDGE_MARGIN = 0.5
QUANTILE_SAMPLE = 1024


@dataclass(frozen=True)
class HistogramBatch:
    """Histograms of ``G`` groups (e.g. layers) x ``R`` runs; the runs of a group share edges."""

    edges: np.ndarray  # (G, bins + 1) float64
    counts: np.ndarray  # (G, R, bins) int64
    clipped_low: np.ndarray  # (G, R) int64, values below edges[g, 0] (counted in bin 0)
    clipped_high: np.ndarray  # (G, R) int64, values above edges[g, -1] (counted in the last bin)
    nan_count: np.ndarray  # (G, R) int64, NaN values (not counted in any bin)


def count_true(mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Number of True values along ``dim`` as int64 (summing bytes: several times faster than ``bool.sum``)."""
    return mask.view(torch.uint8).sum(dim=dim, dtype=torch.int32).to(torch.int64)


def _subsample(values: torch.Tensor) -> torch.Tensor:
    n = values.shape[-1]
    if n <= QUANTILE_SAMPLE:
        return values
    stride = -(-n // QUANTILE_SAMPLE)
    return values[..., ::stride].contiguous()


def _run_stats(v: torch.Tensor) -> tuple[np.ndarray, ...]:
    """Per run (``(G, R)`` float64 arrays): robust low/high quantiles and min/max of the finite values,
    NaN where a run has no finite value; plus whether every value is finite."""
    vmin, vmax = v.amin(dim=2), v.amax(dim=2)  # propagate NaN
    sample = _subsample(v)
    n = sample.shape[-1]
    k = min(n, round(ROBUST_QUANTILE * (n - 1)) + 2)
    all_finite = bool(torch.isfinite(vmin).all()) and bool(torch.isfinite(vmax).all())
    if all_finite:
        pos = round(ROBUST_QUANTILE * (n - 1))
        lo = sample.topk(k, dim=-1, largest=False).values[..., pos]
        hi = sample.topk(k, dim=-1).values[..., pos]
        out = [t.to(torch.float64).numpy() for t in (lo, hi, vmin, vmax)]
        return (*out, True)
    finite = torch.isfinite(v)
    big = torch.finfo(v.dtype).max
    any_finite = finite.any(dim=2)
    vmin = torch.where(finite, v, big).amin(dim=2)
    vmax = torch.where(finite, v, -big).amax(dim=2)
    sfinite = torch.isfinite(sample)
    last = (count_true(sfinite) - 1).clamp(min=0).to(torch.float64)
    smallest = torch.where(sfinite, sample, torch.inf).topk(k, dim=-1, largest=False).values
    largest = torch.where(sfinite, sample, -torch.inf).topk(k, dim=-1).values
    lo_pos = torch.round(ROBUST_QUANTILE * last).long().clamp(max=k - 1)
    hi_pos = (last - torch.round((1 - ROBUST_QUANTILE) * last)).long().clamp(max=k - 1)
    lo = smallest.gather(-1, lo_pos.unsqueeze(-1)).squeeze(-1)
    hi = largest.gather(-1, hi_pos.unsqueeze(-1)).squeeze(-1)
    has = any_finite.numpy() & (count_true(sfinite) > 0).numpy()
    out = [np.where(has, t.to(torch.float64).numpy(), np.nan) for t in (lo, hi)]
    out += [np.where(any_finite.numpy(), t.to(torch.float64).numpy(), np.nan) for t in (vmin, vmax)]
    return (*out, False)


def _ranges(
    lo_r: np.ndarray, hi_r: np.ndarray, min_r: np.ndarray, max_r: np.ndarray, active: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The shared range per group from per-run statistics (module doc, steps 1-3)."""
    usable = np.isfinite(lo_r) & np.isfinite(hi_r)
    if active is not None:
        usable &= active[None, :]
    width = np.where(usable, hi_r - lo_r, np.nan)
    lo = np.empty(lo_r.shape[0])
    hi = np.empty(lo_r.shape[0])
    with np.errstate(invalid="ignore"):
        for g in range(lo_r.shape[0]):
            positive = np.sort(width[g][width[g] > 0])
            typical = usable[g].copy()
            if positive.size:
                median = positive[(positive.size - 1) // 2]  # lower median
                typical &= ~(width[g] > SPREAD_CAP * median)
            vmin = np.nanmin(np.where(usable[g], min_r[g], np.nan), initial=np.inf)
            vmax = np.nanmax(np.where(usable[g], max_r[g], np.nan), initial=-np.inf)
            if typical.any():
                lo_g, hi_g = lo_r[g][typical].min(), hi_r[g][typical].max()
                margin = EDGE_MARGIN * (hi_g - lo_g)
                lo_g, hi_g = max(vmin, lo_g - margin), min(vmax, hi_g + margin)
            else:  # no active run with finite values: span whatever finite values there are
                lo_g = np.nanmin(min_r[g], initial=np.inf)
                hi_g = np.nanmax(max_r[g], initial=-np.inf)
                if not np.isfinite(lo_g):
                    lo_g = hi_g = 0.0
            if hi_g <= lo_g:
                lo_g, hi_g = lo_g - 0.5, lo_g + 0.5
            lo[g], hi[g] = lo_g, hi_g
    return lo, hi


def shared_ranges(values: torch.Tensor, active: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The shared ``(lo, hi)`` per group for ``values`` of shape ``(G, R, n)`` (see the module doc).

    ``active`` (bool, ``(R,)``) limits which runs place the edges (the others are still counted).
    """
    lo_r, hi_r, min_r, max_r, _ = _run_stats(values.detach())
    return _ranges(lo_r, hi_r, min_r, max_r, None if active is None else active.numpy())


def stacked_histograms(
    values: torch.Tensor, bins: int = NUM_BINS, active: torch.Tensor | None = None
) -> HistogramBatch:
    """Histograms of ``values`` ``(G, R, n)``: one shared set of edges per group ``g``.

    One counting pass for everything: each row gets ``bins + 3`` slots (below the range, the bins,
    above the range, NaN), so clipped and NaN counts come out of the same ``bincount``. Works in
    the values' own dtype; the scale is shrunk by ``2**-16`` so that a value equal to the top edge
    lands in the last bin despite rounding (the reported top edge includes that factor)."""
    g, r, _ = values.shape
    v = values.detach()
    lo_r, hi_r, min_r, max_r, all_finite = _run_stats(v)
    lo, hi = _ranges(lo_r, hi_r, min_r, max_r, None if active is None else active.numpy())
    hi = lo + (hi - lo) / (1 - 2.0**-16)  # the exact top of the last bin under the shrunk scale
    lo3 = torch.from_numpy(lo).to(v.dtype).view(g, 1, 1)
    scale = torch.from_numpy(bins / (hi - lo)).to(v.dtype).view(g, 1, 1)
    index = v - lo3
    torch.addcmul(torch.ones((), dtype=v.dtype), index, scale, out=index)  # 1 + (v - lo) * scale
    index.clamp_(0.0, bins + 1.5)  # below -> [0, 1) -> slot 0; above -> slot bins + 1
    if not all_finite:
        index.masked_fill_(torch.isnan(v), float(bins + 2))
    slots = bins + 3
    # int32 conversion is many times faster than int64 on CPU; rows are told apart by an offset.
    flat = index.to(torch.int32).add_(torch.arange(0, g * r * slots, slots, dtype=torch.int32).view(g, r, 1))
    counts_np = torch.bincount(flat.view(-1), minlength=g * r * slots).view(g, r, slots).numpy()
    out = counts_np[..., 1 : bins + 1].copy()
    clipped_low, clipped_high, nan_count = counts_np[..., 0], counts_np[..., bins + 1], counts_np[..., bins + 2]
    out[..., 0] += clipped_low
    out[..., -1] += clipped_high
    edges = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, bins + 1)[None, :]
    edges[:, -1] = hi
    return HistogramBatch(edges, out, clipped_low.copy(), clipped_high.copy(), nan_count.copy())
