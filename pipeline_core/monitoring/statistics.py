"""The drift statistics: PSI, a KS test against a compressed reference, p-value corrections,
a chi-square homogeneity test and one-sided performance tests. Pure numpy/scipy functions."""

from __future__ import annotations

import functools

import numpy as np
from scipy import special, stats


def bin_proportions(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of values in the bins (-inf, e1), [e1, e2), ..., [e_last, inf)."""
    below = np.searchsorted(sorted_values, edges, side="left")
    counts = np.diff(np.concatenate(([0], below, [sorted_values.size])))
    return counts / sorted_values.size


def psi(current: np.ndarray, reference: np.ndarray, epsilon: float) -> float:
    """Population stability index; proportions below `epsilon` are raised to it."""
    cur = np.maximum(current, epsilon)
    ref = np.maximum(reference, epsilon)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi_threshold(
    n: float | np.ndarray, m: float | np.ndarray, df: int | np.ndarray, quantile: float, floor: float
) -> float | np.ndarray:
    """PSI at or above which a shift counts as material for a batch of n against m rows.

    Under no drift PSI is close to (1/n + 1/m) * chi2(df), df = bins - 1, so a fixed
    threshold would flag small batches for sampling noise alone. For serially dependent
    rows n and m are effective sizes (first-order Rao-Scott correction). Element-wise over
    arrays; a float for scalar arguments.
    """
    chi2 = np.vectorize(_chi2_quantile, otypes=[float])(quantile, np.maximum(df, 1))
    noise = (1.0 / np.asarray(n, dtype=float) + 1.0 / np.asarray(m, dtype=float)) * chi2
    threshold = np.maximum(floor, noise)
    return float(threshold) if threshold.ndim == 0 else threshold


@functools.lru_cache(maxsize=256)
def _chi2_quantile(quantile: float, df: int) -> float:
    return float(stats.chi2.ppf(quantile, df))


def ks_statistic(
    sorted_current: np.ndarray,
    support: np.ndarray,
    ref_le: np.ndarray,
    ref_lt: np.ndarray,
) -> float:
    """Two-sample KS statistic between a batch and a reference known at `support` points.

    `ref_le` / `ref_lt` are the reference shares <= and < each support point. The
    difference of the two ECDFs is evaluated exactly at the support points and just
    below them; between two support points it is not, so the result underestimates the
    full-reference statistic by at most the reference mass between neighbouring support
    points (about 1/len(support)) and is exact when the support holds every distinct
    reference value.
    """
    n = sorted_current.size
    cur_le = np.searchsorted(sorted_current, support, side="right") / n
    cur_lt = np.searchsorted(sorted_current, support, side="left") / n
    return float(max(np.max(np.abs(cur_le - ref_le)), np.max(np.abs(cur_lt - ref_lt))))


def ks_pvalue(
    statistic: np.ndarray | float, n: float | np.ndarray, m: float | np.ndarray
) -> np.ndarray:
    """Two-sided p-value of the two-sample KS statistic from the Kolmogorov limit law.

    Uses the combined size n*m/(n+m); n and m may be effective sizes of serially
    dependent rows (non-integer, element-wise over arrays). The limit law is
    conservative for finite samples (e.g. 0.0108 instead of 0.01 at 250 rows; 0.049 where
    the exact one-sample law gives 0.037 at 15), far faster than the exact law, and
    unlike it defined for non-integer sizes.
    """
    n = np.asarray(n, dtype=float)
    m = np.asarray(m, dtype=float)
    return stats.kstwobign.sf(np.asarray(statistic, dtype=float) * np.sqrt(n * m / (n + m)))


def adjust_pvalues(pvalues: np.ndarray, method: str) -> np.ndarray:
    """Multiple-testing adjusted p-values: "bonferroni" (family-wise) or "bh" (FDR)."""
    p = np.asarray(pvalues, dtype=float)
    k = p.size
    if k == 0:
        return p
    if method == "bonferroni":
        return np.minimum(p * k, 1.0)
    order = np.argsort(p)
    scaled = p[order] * k / np.arange(1, k + 1)
    stepped = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def chi2_homogeneity(current_counts: np.ndarray, reference_counts: np.ndarray) -> tuple[float, int, float]:
    """Chi-square test that two samples share one class distribution: (statistic, df, p)."""
    table = np.vstack([current_counts, reference_counts]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    df = table.shape[1] - 1
    if df < 1:
        return 0.0, 0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, df, float(stats.chi2.sf(statistic, df))


def accuracy_drop_pvalue(correct: float, n: float, reference_accuracy: float) -> float:
    """One-sided binomial p-value that the true accuracy is below the reference: P(Bin(n, ref) <= correct).

    For serially dependent rows `correct` and `n` are effective counts (raw counts / tau,
    non-integer): the binomial CDF is continued to real counts by the regularized
    incomplete beta function I_(1-ref)(n - correct, correct + 1), exact for integers.
    """
    if reference_accuracy <= 0.0 or correct >= n:
        return 1.0
    if correct < 0.0 or reference_accuracy >= 1.0:
        return 0.0
    return float(special.betainc(n - correct, correct + 1.0, 1.0 - reference_accuracy))


def accuracy_bound(n: int, reference_accuracy: float, alpha: float, inflation: float = 1.0) -> float:
    """Highest accuracy c / n (c correct of n rows) that the one-sided binomial test calls a
    significant drop, the rows counting as n / inflation independent ones (-1/n: none)."""
    if reference_accuracy <= 0.0:
        return 0.0

    def significant(correct: int) -> bool:
        return accuracy_drop_pvalue(correct / inflation, n / inflation, reference_accuracy) < alpha

    low, high = -1, n  # significant(-1) taken as true, significant(n) false; the p-value rises with `correct`
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if significant(middle) else (low, middle)
    return float(low / n)


def mean_rise_pvalue(values: np.ndarray, reference_mean: float, inflation: float = 1.0) -> tuple[float, float]:
    """One-sided t-test that the mean of `values` exceeds `reference_mean`: (p, std error).

    `inflation` is the variance inflation of the mean of serially dependent values (e.g. a
    Newey-West long-run variance over the variance): the standard error grows by its
    square root and the t distribution has n / inflation - 1 degrees of freedom.
    """
    n = values.size
    std_error = float(np.std(values, ddof=1) * np.sqrt(inflation / n))
    if std_error == 0.0:
        return (0.0 if values[0] > reference_mean else 1.0), 0.0
    t_stat = (float(np.mean(values)) - reference_mean) / std_error
    return float(stats.t.sf(t_stat, _t_df(n / inflation))), std_error


def mean_bound(reference_mean: float, std_error: float, n: float, alpha: float) -> float:
    """Lowest mean the one-sided t-test at `alpha` calls significantly above the reference;
    `n` is the (effective) number of values."""
    return float(reference_mean + stats.t.isf(alpha, _t_df(n)) * std_error)


def _t_df(n: float) -> float:
    return max(float(n) - 1.0, 1.0)
