"""Serial dependence: how many independent rows a batch or the reference is worth.

The drift tests assume independent rows. Scored partitions are not: rolling features of
one symbol's consecutive bars are strongly autocorrelated, and volatility regimes make
even serially uncorrelated features (1-bar returns, bar ranges) change scale for hundreds
of bars. A run of L consecutive rows then carries the information of L / tau(L)
independent rows, with the variance inflation

    tau(L) = L * Var(mean of L consecutive values) / Var(value) = 1 + 2 * sum_k (1 - k/L) rho_k.

Two estimates of tau are combined per feature, the larger one winning:

- from the reference (`inflation_grid`, stored in the reference sketches): tau at run
  lengths 1, 2, 4, ... measured directly by window means of the reference's ranks u and of
  |u - 1/2|. The second transform sees dependence in scale (volatility clustering), which
  the autocorrelation of the values misses. Under the null hypothesis the batch comes from
  the reference process, so this is the null variance of a batch with the same runs.
- from the batch itself (`lag1_autocorrelation`): the AR(1) factor (1 + rho) / (1 - rho)
  of its lag-1 autocorrelation, rho clipped to [0, MAX_AUTOCORRELATION], for references
  that do not show the dependence (rows not in time order, or stored before the
  reference recorded it). AR(1) cannot see dependence that lives in the scale or lasts
  longer than a few lags, hence the reference estimate.

Runs: rows of one group (e.g. one symbol) in the order given, which must be time order.
Without groups all rows form one run.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

MAX_AUTOCORRELATION = 0.99
# tau(L) is measured only where the reference holds this many disjoint runs of L rows;
# longer runs use the value at the longest measured length.
MIN_WINDOWS = 30
# Windows of L rows start every max(1, L // WINDOW_STRIDES) rows: almost the precision of
# all overlapping windows at a fraction of the cost.
WINDOW_STRIDES = 4


class Runs(NamedTuple):
    """Rows as time-ordered runs.

    Attributes:
        order: row permutation that puts each run's rows together (keeping their order),
            or None when they already are.
        lengths: rows in each run, in that order.
    """

    order: np.ndarray | None
    lengths: np.ndarray


def runs_of(codes: np.ndarray | None, n: int) -> Runs:
    """Runs per group code (integers 0..k-1 from np.unique); one run of n rows without codes."""
    if codes is None or n == 0:
        return Runs(order=None, lengths=np.array([n], dtype=np.int64))
    lengths = np.bincount(codes)
    ordered = bool(np.all(codes[1:] >= codes[:-1]))
    return Runs(order=None if ordered else np.argsort(codes, kind="stable"), lengths=lengths[lengths > 0])


def in_run_order(values: np.ndarray, runs: Runs) -> np.ndarray:
    """`values` (rows first) with each run's rows together."""
    return values if runs.order is None else values[runs.order]


def lag1_autocorrelation(matrix: np.ndarray, runs: Runs) -> np.ndarray:
    """Lag-1 autocorrelation of each column over consecutive rows of the same run.

    Centred on the column mean of all rows, so level differences between runs count as
    persistence. A constant column has autocorrelation 0.
    """
    x = in_run_order(matrix, runs)
    x = x - x.mean(axis=0)
    products = x[1:] * x[:-1]
    products[np.cumsum(runs.lengths)[:-1] - 1] = 0.0  # pairs straddling two runs
    numerator = products.sum(axis=0)
    denominator = np.einsum("ij,ij->j", x, x)
    varying = (denominator > 0) & ~np.all(matrix == matrix[:1], axis=0)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=varying)


def ar1_inflation(rho: np.ndarray) -> np.ndarray:
    """Variance inflation (1 + rho) / (1 - rho) of an AR(1) process, rho clipped to [0, 0.99]."""
    clipped = np.clip(rho, 0.0, MAX_AUTOCORRELATION)
    return (1.0 + clipped) / (1.0 - clipped)


def inflation_grid(values: np.ndarray, support: np.ndarray, mid_cdf: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """tau at run lengths 1, 2, 4, ... of `values` (in run order), measured on ranks.

    `support` and `mid_cdf` give the values' distribution (mid-ECDF at the support points)
    so ties, e.g. of a 0/1 flag, get one rank. tau is the larger of the ranks' and of their
    distance to the median, clipped to [1, L] and made non-decreasing in L (both
    conservative: an estimate never claims more information than independent rows).
    """
    ranks = np.interp(values, support, mid_cdf)
    transforms = np.column_stack([ranks, np.abs(ranks - 0.5)])
    centred = transforms - transforms.mean(axis=0)
    variance = np.mean(centred**2, axis=0)
    varying = variance > 1e-12  # |u - 1/2| of a balanced 0/1 flag is constant
    if not varying.any():
        return np.ones(1)
    centred, variance = centred[:, varying], variance[varying]
    sums = np.vstack([np.zeros((1, centred.shape[1])), np.cumsum(centred, axis=0)])
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    grid = [1.0]
    length = 2
    while np.sum(lengths // length) >= MIN_WINDOWS:
        first = _window_starts(starts, lengths, length)
        window_means = (sums[first + length] - sums[first]) / length
        grid.append(float(np.max(length * np.mean(window_means**2, axis=0) / variance)))
        length *= 2
    bounds = 2.0 ** np.arange(len(grid))
    return np.maximum.accumulate(np.clip(grid, 1.0, bounds))


def _window_starts(starts: np.ndarray, lengths: np.ndarray, length: int) -> np.ndarray:
    """First rows of the windows of `length` rows inside each run, every max(1, length // 4) rows."""
    stride = max(1, length // WINDOW_STRIDES)
    counts = np.where(lengths >= length, (lengths - length) // stride + 1, 0)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + stride * offsets


def pooled_inflation(grid: np.ndarray, lengths: np.ndarray) -> float:
    """Variance inflation of rows made of runs of `lengths` rows: sum(L * tau(L)) / sum(L).

    tau is interpolated linearly in log2(L) between the grid's run lengths 1, 2, 4, ...
    and held at its last value beyond them.
    """
    positions = np.log2(np.maximum(lengths, 1))
    taus = np.interp(positions, np.arange(grid.size), grid)
    return float(np.sum(lengths * taus) / max(np.sum(lengths), 1))


def effective_size(n: int, inflation: np.ndarray | float) -> np.ndarray:
    """Independent rows that `n` rows with this variance inflation are worth."""
    return n / np.asarray(inflation, dtype=float)
