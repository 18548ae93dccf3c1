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

The class-balance test does the same for the indicator of each predicted class (its
grid is stored as the reference's `ClassDependence`), the class shares counting by the
largest of the classes' tau (`class_design_effect`).

The performance tests have no reference measure (the reference keeps no per-row
outcomes), and their dependence is simpler: a label looking h bars ahead makes the
errors of rows closer than h bars share bars (an MA(h - 1) at least), plus what the
model's persistence adds. They use the batch's own Newey-West long-run variance of the
per-row correctness or log-loss within runs (`newey_west_inflation`, Bartlett weights),
the lag chosen by the Newey-West (1994) plug-in rule (`newey_west_lag`), at least h when
the monitor knows it (`DriftConfig.label_horizon`).

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
    of that of u and of |u - 1/2| (see `series_inflation_grid`).
    """
    ranks = mid_cdf[np.searchsorted(support, values)]
    grids = [series_inflation_grid(z, lengths) for z in (ranks, np.abs(ranks - 0.5))]
    size = max(grid.size for grid in grids)  # [1.0] for a constant transform (|u - 1/2| of a balanced flag)
    return np.maximum(*(np.pad(grid, (0, size - grid.size), mode="edge") for grid in grids))


def series_inflation_grid(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """tau at run lengths 1, 2, 4, ... of the mean of `values` (in run order), by window means.

    Measured up to the longest run length of which the runs hold MIN_WINDOWS disjoint
    copies; clipped to [1, L] and made non-decreasing in L (both conservative: an estimate
    never claims more information than independent rows). [1.0] for a constant series.
    """
    centred = values - values.mean()
    variance = _sum_of_squares(centred) / centred.size
    if variance <= 1e-12:
        return np.ones(1)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    run_lengths = [1]
    while np.sum(lengths // (2 * run_lengths[-1])) >= MIN_WINDOWS:
        run_lengths.append(2 * run_lengths[-1])
    sums = np.concatenate(([0.0], np.cumsum(centred)))
    grid = np.ones(len(run_lengths))
    for k, length in enumerate(run_lengths[1:], start=1):
        first = _window_starts(starts, lengths, length)
        window_sums = sums[first + length] - sums[first]
        grid[k] = _sum_of_squares(window_sums) / (first.size * length * variance)
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


def class_design_effect(proportions: np.ndarray, inflations: np.ndarray) -> float:
    """Design effect of class shares: the largest variance inflation of the indicators of
    the classes present (p_c > 0); 1 when none is.

    Dividing the chi-square statistic of the class counts by it is the conservative form
    of the Rao-Scott correction. Their first-order mean design effect,
    sum_c (1 - p_c) tau_c / (k - 1), is exact only when every class has the same tau; with
    a persistent class among less persistent ones (the model's "no move" class on market
    days, tau about 3 times the others') it under-corrects: 3.5% of undrifted market days
    at p < 0.005, against 0.5% with the largest.
    """
    present = proportions > 0
    return float(np.max(inflations[present])) if np.any(present) else 1.0


def effective_size(n: int, inflation: np.ndarray | float) -> np.ndarray:
    """Independent rows that `n` rows with this variance inflation are worth."""
    return n / np.asarray(inflation, dtype=float)


def subset_runs(runs: Runs, keep: np.ndarray) -> Runs:
    """The runs of the rows where `keep` (a mask over the rows) holds, in the same order."""
    kept = in_run_order(keep, runs)
    run_of_row = np.repeat(np.arange(runs.lengths.size), runs.lengths)
    lengths = np.bincount(run_of_row[kept], minlength=runs.lengths.size)
    order = None
    if runs.order is not None:
        position = np.cumsum(keep) - 1  # each kept row's position among the kept rows
        order = position[runs.order[kept]]
    return Runs(order=order, lengths=lengths[lengths > 0])


def autocovariances(values: np.ndarray, runs: Runs, max_lag: int) -> np.ndarray:
    """Autocovariances at lags 0..max_lag of `values` over pairs of rows of the same run.

    Centred on the mean of all rows and divided by the number of rows (the biased
    estimator, which keeps Bartlett-weighted sums of them non-negative).
    """
    x = in_run_order(values, runs)
    x = x - x.mean()
    run_of_row = np.repeat(np.arange(runs.lengths.size), runs.lengths)
    gamma = np.zeros(max_lag + 1)
    gamma[0] = _sum_of_squares(x) / x.size
    for lag in range(1, min(max_lag, x.size - 1) + 1):
        same_run = run_of_row[lag:] == run_of_row[:-lag]
        gamma[lag] = float(np.einsum("i,i->", x[lag:] * same_run, x[:-lag])) / x.size
    return gamma


def newey_west_lag(values: np.ndarray, runs: Runs) -> int:
    """Bartlett-kernel lag chosen from the data (Newey and West 1994, their plug-in rule).

    From the first 4 (n/100)^(2/9) autocovariances s0 = sum_|j| gamma_j and s1 = sum_|j| |j| gamma_j,
    the lag is 1.1447 ((s1 / s0)^2 n)^(1/3), at most the longest run minus one.
    """
    n = values.size
    pre = max(1, int(4 * (n / 100) ** (2 / 9)))
    gamma = autocovariances(values, runs, pre)
    lags = np.arange(1, gamma.size)
    s0 = gamma[0] + 2 * gamma[1:].sum()
    s1 = 2 * np.sum(lags * gamma[1:])
    if s0 <= 0 or s1 <= 0:
        return 0
    lag = int(1.1447 * ((s1 / s0) ** 2 * n) ** (1 / 3))
    return min(lag, int(runs.lengths.max()) - 1)


def newey_west_inflation(values: np.ndarray, runs: Runs, lag: int) -> float:
    """Variance inflation of the mean of `values` in runs: the Newey-West (Bartlett) long-run
    variance with this lag over the variance, at least 1 (never more than independent rows)."""
    gamma = autocovariances(values, runs, lag)
    if gamma[0] <= 0:
        return 1.0
    weights = 1 - np.arange(1, gamma.size) / gamma.size  # Bartlett: 1 - k / (lag + 1)
    long_run = gamma[0] + 2 * np.sum(weights * gamma[1:])
    return float(max(1.0, long_run / gamma[0]))
