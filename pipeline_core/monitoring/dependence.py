"""Serial dependence: how many independent rows a batch or the reference is worth.

The drift tests assume independent rows. Scored partitions are not: rolling features of
one symbol's consecutive bars are strongly autocorrelated, and volatility regimes make
even serially uncorrelated features (1-bar returns, bar ranges) change scale for hundreds
of bars. A run of L consecutive rows then carries the information of L / tau(L)
independent rows, with the variance inflation

    tau(L) = L * Var(mean of L consecutive values) / Var(value) = 1 + 2 * sum_k (1 - k/L) rho_k.

The batch's tau per feature (`batch_inflation`) combines two estimates:

- from the reference (`inflation_grid`, stored in the reference sketches): tau at run
  lengths 1, 2, 4, ... measured directly by window means of the reference's ranks u and of
  |u - 1/2|. The second transform sees dependence in scale (volatility clustering), which
  the autocorrelation of the values misses. Under the null hypothesis the batch comes from
  the reference process, so this is the null variance of a batch with the same runs, at
  every lag, with no model of the autocorrelation's shape.
- from the batch itself: the AR(1) factor (1 + rho) / (1 - rho) of its lag-1
  autocorrelation (`lag1_autocorrelation`, rho clipped to [0, MAX_AUTOCORRELATION]). It
  only scales the reference's tau up, by its ratio to the AR(1) factor of the reference's
  own lag-1 autocorrelation, when the batch is more persistent than the reference shows:
  rows of the reference not in time order, or a reference stored before it recorded its
  dependence (then tau is the plain AR(1) factor). AR(1) alone would miss dependence that
  lives in the scale or lasts long (regimes), and overstate it for overlapping windows
  (an MA(k-1) such as a k-bar return has tau ~ k, AR(1) gives 2k - 1).

Runs: rows of one group (e.g. one symbol) in the order given, which must be time order.
Without groups all rows form one run: right for one symbol, conservative for several
symbols sorted by symbol then time (one long run inflates more than several short ones),
and blind to the batch's own dependence for rows interleaved across symbols.

Limits: tau is measured up to the longest run length of which the reference holds
MIN_WINDOWS disjoint copies (1,024 rows for 12 days of 8 symbols x 390 bars) and held
beyond; the KS p-value treats the dependent ECDF like an independent one of n / tau rows,
which the market simulation (tests/test_drift_market.py) finds conservative.
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

    `support` (sorted, holding the values' maximum) and `mid_cdf` (the mid-ECDF at each
    support point) give each value its rank u, exact at the support points and within one
    support step elsewhere; ties, e.g. of a 0/1 flag, share one rank. tau is the larger
    of that of u and of |u - 1/2|, clipped to [1, L] and made non-decreasing in L (both
    conservative: an estimate never claims more information than independent rows).
    """
    ranks = mid_cdf[np.searchsorted(support, values)]
    transforms = [z - z.mean() for z in (ranks, np.abs(ranks - 0.5))]
    transforms = [z for z in transforms if _sum_of_squares(z) > 1e-12 * z.size]  # |u - 1/2| of a balanced flag
    if not transforms:
        return np.ones(1)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    run_lengths = [1]
    while np.sum(lengths // (2 * run_lengths[-1])) >= MIN_WINDOWS:
        run_lengths.append(2 * run_lengths[-1])
    windows = [_window_starts(starts, lengths, length) for length in run_lengths[1:]]
    grid = np.ones(len(run_lengths))
    for centred in transforms:
        sums = np.concatenate(([0.0], np.cumsum(centred)))
        variance = _sum_of_squares(centred) / centred.size
        for k, (length, first) in enumerate(zip(run_lengths[1:], windows), start=1):
            window_sums = sums[first + length] - sums[first]
            tau = _sum_of_squares(window_sums) / (first.size * length * variance)
            grid[k] = max(grid[k], tau)
    return np.maximum.accumulate(np.clip(grid, 1.0, run_lengths))


def _sum_of_squares(values: np.ndarray) -> float:
    return float(np.einsum("i,i->", values, values))  # np.dot goes through BLAS threads: far slower here


def _window_starts(starts: np.ndarray, lengths: np.ndarray, length: int) -> np.ndarray:
    """First rows of the windows of `length` rows inside each run, every max(1, length // 4) rows."""
    stride = max(1, length // WINDOW_STRIDES)
    counts = np.where(lengths >= length, (lengths - length) // stride + 1, 0)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + stride * offsets


def batch_inflation(reference_inflation: np.ndarray, batch_rho: np.ndarray, reference_rho: np.ndarray) -> np.ndarray:
    """The batch's variance inflation: the reference's, for the batch's runs, scaled up by
    AR1(batch_rho) / AR1(reference_rho) where the batch is more persistent at lag 1."""
    return reference_inflation * np.maximum(1.0, ar1_inflation(batch_rho) / ar1_inflation(reference_rho))


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
