"""Shared, outlier-robust histogram edges (core.histograms)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.histograms import NUM_BINS, SPREAD_CAP, shared_ranges, stacked_histograms


def _normal(*shape: int, std: float = 1.0, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * std


def _occupied(counts: np.ndarray) -> int:
    return int((counts > 0).sum())


def test_counts_sum_to_the_number_of_values():
    values = torch.stack([_normal(5, 1000, seed=i) for i in range(3)])  # (G=3, R=5, n=1000)
    batch = stacked_histograms(values)
    assert batch.counts.shape == (3, 5, NUM_BINS)
    assert batch.edges.shape == (3, NUM_BINS + 1)
    assert (batch.counts.sum(axis=2) + batch.nan_count == 1000).all()


def test_without_outliers_the_range_is_the_exact_min_max_and_nothing_is_clipped():
    values = _normal(1, 4, 2000)
    batch = stacked_histograms(values)
    assert batch.edges[0, 0] == float(values.min())
    assert batch.edges[0, -1] == pytest.approx(float(values.max()), rel=1e-4)  # raised by 2**-16 of the width
    assert (batch.clipped_low == 0).all() and (batch.clipped_high == 0).all()
    np.testing.assert_allclose(np.diff(batch.edges[0]), (batch.edges[0, -1] - batch.edges[0, 0]) / NUM_BINS)


def test_counts_match_numpy_histogram_with_the_same_edges():
    values = _normal(1, 2, 5000, seed=3).double()
    batch = stacked_histograms(values)
    for r in range(2):
        expected, _ = np.histogram(values[0, r].numpy(), bins=batch.edges[0])
        assert batch.counts[0, r].tolist() == expected.tolist()


def test_a_run_with_huge_values_does_not_squash_the_others():
    """Three runs ~N(0, 1) and one ~N(0, 1000^2). Pooled min/max edges would put the three normal
    runs (|x| < ~4) into the ~2 central bins of a range of +-3500; with the cap they keep their shape."""
    normal = [_normal(10_000, seed=i) for i in range(3)]
    huge = _normal(10_000, std=1000.0, seed=9)
    values = torch.stack([*normal, huge]).unsqueeze(0)
    batch = stacked_histograms(values)
    lo, hi = batch.edges[0, 0], batch.edges[0, -1]
    assert hi - lo < 20  # the normal runs' robust range, not the huge run's
    for r in range(3):
        assert _occupied(batch.counts[0, r]) >= 30
        assert batch.clipped_low[0, r] + batch.clipped_high[0, r] == 0  # the margin keeps their tails
    # The huge run is mostly clipped into the end bins, and says so.
    clipped = batch.clipped_low[0, 3] + batch.clipped_high[0, 3]
    assert clipped > 9_900
    assert batch.counts[0, 3, 0] >= batch.clipped_low[0, 3] and batch.counts[0, 3, -1] >= batch.clipped_high[0, 3]
    assert batch.counts[0, 3].sum() == 10_000


def test_a_few_extreme_values_inside_one_run_are_clipped_not_stretching_the_range():
    run = _normal(10_000, seed=1)
    run[:10] = 1e6
    batch = stacked_histograms(run.view(1, 1, -1))
    assert batch.edges[0, -1] < 10
    assert batch.clipped_high[0, 0] == 10  # exactly the extremes: the margin keeps the Gaussian tail
    assert batch.counts[0, 0, -1] >= 10


def test_non_finite_values_are_reported():
    run = _normal(1000, seed=2)
    run[0], run[1], run[2] = math.nan, math.inf, -math.inf
    batch = stacked_histograms(run.view(1, 1, -1))
    assert batch.nan_count[0, 0] == 1
    assert batch.clipped_high[0, 0] >= 1 and batch.clipped_low[0, 0] >= 1
    assert batch.counts[0, 0].sum() == 999
    assert np.isfinite(batch.edges).all()


def test_all_nan_run_next_to_normal_runs():
    values = torch.stack([_normal(500, seed=0), torch.full((500,), math.nan)]).unsqueeze(0)
    batch = stacked_histograms(values)
    assert batch.nan_count[0].tolist() == [0, 500]
    assert batch.counts[0, 0].sum() == 500 and batch.counts[0, 1].sum() == 0
    assert np.isfinite(batch.edges).all()


def test_constant_values_sit_in_the_middle():
    batch = stacked_histograms(torch.zeros(1, 3, 100))
    assert batch.edges[0, 0] == -0.5 and batch.edges[0, -1] == pytest.approx(0.5, rel=1e-4)
    middle = batch.counts[0, :, NUM_BINS // 2 - 1 : NUM_BINS // 2 + 1]  # 0 is the middle edge
    assert middle.sum(axis=1).tolist() == [100, 100, 100] and (middle.max(axis=1) == 100).all()
    batch = stacked_histograms(torch.full((1, 1, 10), 3.0))
    assert batch.edges[0, 0] == 2.5 and batch.edges[0, -1] == pytest.approx(3.5, rel=1e-4)


def test_inactive_runs_do_not_place_the_edges():
    values = torch.stack([_normal(1000, seed=0), _normal(1000, std=3.0, seed=1)]).unsqueeze(0)
    lo_all, hi_all = shared_ranges(values)
    lo, hi = shared_ranges(values, active=torch.tensor([True, False]))
    assert hi - lo < hi_all - lo_all
    assert lo[0] == float(values[0, 0].min()) and hi[0] == float(values[0, 0].max())  # before the 2**-16 raise


def test_groups_get_their_own_edges_and_majority_decides_the_scale():
    small = torch.stack([_normal(1000, std=0.01, seed=i) for i in range(3)])
    big = torch.stack([_normal(1000, std=1.0, seed=i) for i in range(3)])
    batch = stacked_histograms(torch.stack([small, big]))
    assert batch.edges[0, -1] < 0.1 < batch.edges[1, -1]
    # Half the runs tiny, half large: no majority is an outlier (width ratio <= SPREAD_CAP decides).
    mixed = torch.stack([_normal(1000, std=1.0, seed=0), _normal(1000, std=SPREAD_CAP / 4, seed=1)]).unsqueeze(0)
    out = stacked_histograms(mixed)
    assert out.clipped_low.sum() + out.clipped_high.sum() == 0
