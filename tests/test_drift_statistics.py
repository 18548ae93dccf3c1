"""The drift statistics against scipy and against their definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal, stats

from pipeline_core.monitoring import ReferenceStats
from pipeline_core.monitoring.dependence import (
    Runs,
    ar1_inflation,
    autocovariances,
    batch_inflation,
    class_design_effect,
    in_run_order,
    inflation_grid,
    lag1_autocorrelation,
    newey_west_inflation,
    newey_west_lag,
    pooled_inflation,
    runs_of,
    subset_runs,
)
from pipeline_core.monitoring.statistics import (
    accuracy_bound,
    accuracy_drop_pvalue,
    adjust_pvalues,
    bin_proportions,
    chi2_homogeneity,
    ks_pvalue,
    ks_statistic,
    mean_bound,
    mean_rise_pvalue,
    psi,
    psi_threshold,
)


def _ks_against(reference: np.ndarray, batch: np.ndarray, n_quantiles: int) -> float:
    sketch = ReferenceStats.from_data(reference[:, None], ["x"], n_quantiles=n_quantiles).features[0]
    return ks_statistic(np.sort(batch), sketch.support, sketch.count_le / sketch.size, sketch.count_lt / sketch.size)


def test_ks_statistic_matches_scipy_when_the_sketch_keeps_every_value():
    rng = np.random.default_rng(0)
    for _ in range(20):
        reference = rng.normal(size=800)
        batch = rng.normal(0.1, 1.2, size=150)
        assert _ks_against(reference, batch, n_quantiles=1000) == pytest.approx(
            stats.ks_2samp(batch, reference).statistic, abs=1e-12
        )


def test_ks_statistic_matches_scipy_with_ties():
    rng = np.random.default_rng(1)
    reference = rng.integers(0, 24, size=5000).astype(float)
    batch = rng.integers(0, 20, size=300).astype(float)
    assert _ks_against(reference, batch, n_quantiles=100) == pytest.approx(
        stats.ks_2samp(batch, reference).statistic, abs=1e-12
    )


def test_ks_statistic_on_a_sketch_underestimates_by_at_most_one_quantile_step():
    rng = np.random.default_rng(2)
    reference = rng.standard_t(4, size=50_000)
    gaps = []
    for shift in np.linspace(0.0, 0.5, 30):
        batch = rng.standard_t(4, size=400) + shift
        gaps.append(stats.ks_2samp(batch, reference).statistic - _ks_against(reference, batch, n_quantiles=1000))
    assert min(gaps) >= -1e-12
    assert max(gaps) <= 1.5 / 1000


def test_ks_pvalue_is_slightly_conservative_against_scipy():
    rng = np.random.default_rng(3)
    reference = rng.normal(size=20_000)
    for shift in (0.0, 0.1, 0.2, 0.3):
        batch = rng.normal(shift, size=250)
        expected = stats.ks_2samp(batch, reference, method="asymp")
        ours = ks_pvalue(expected.statistic, batch.size, reference.size)
        assert expected.pvalue * 0.999 <= ours <= max(expected.pvalue * 1.3, 1e-300)


def test_psi_is_zero_for_equal_proportions_and_matches_its_formula():
    ref = np.full(4, 0.25)
    assert psi(ref, ref, 1e-4) == 0.0
    cur = np.array([0.1, 0.2, 0.3, 0.4])
    assert psi(cur, ref, 1e-4) == pytest.approx(np.sum((cur - ref) * np.log(cur / ref)))


def test_psi_stays_finite_for_empty_bins():
    assert np.isfinite(psi(np.array([0.0, 1.0]), np.array([0.5, 0.5]), 1e-4))


def test_psi_threshold_grows_for_small_batches_and_has_a_floor():
    small = psi_threshold(100, 100_000, 9, 0.99, 0.1)
    assert small == pytest.approx((1 / 100 + 1 / 100_000) * stats.chi2.ppf(0.99, 9))
    assert small > 0.2
    assert psi_threshold(5000, 100_000, 9, 0.99, 0.1) == 0.1


def test_psi_threshold_holds_the_null_distribution_of_psi():
    rng = np.random.default_rng(4)
    reference = rng.normal(size=100_000)
    edges = np.quantile(reference, np.arange(1, 10) / 10)
    ref_props = bin_proportions(np.sort(reference), edges)
    values = [psi(bin_proportions(np.sort(rng.normal(size=100)), edges), ref_props, 1e-4) for _ in range(2000)]
    threshold = psi_threshold(100, reference.size, 9, 0.99, 0.0)
    assert np.mean(np.array(values) >= threshold) <= 0.02


def test_bin_proportions_uses_left_closed_bins():
    values = np.sort(np.array([0.0, 1.0, 1.0, 2.0, 3.0]))
    assert bin_proportions(values, np.array([1.0, 3.0])).tolist() == [0.2, 0.6, 0.2]


def test_adjust_pvalues_bonferroni_and_benjamini_hochberg():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    assert adjust_pvalues(p, "bonferroni").tolist() == pytest.approx([0.04, 0.16, 0.12, 1.0])
    # BH: sorted 0.01, 0.03, 0.04, 0.5 -> 0.04, 0.06, 0.0533, 0.5 -> step-up minimum.
    assert adjust_pvalues(p, "bh").tolist() == pytest.approx([0.04, 0.05333333, 0.05333333, 0.5])


def test_chi2_homogeneity_matches_scipy():
    current, reference = np.array([30, 50, 20]), np.array([3000, 4000, 3000])
    statistic, df, p = chi2_homogeneity(current, reference)
    expected = stats.chi2_contingency(np.vstack([current, reference]), correction=False)
    assert (statistic, df, p) == pytest.approx((expected.statistic, expected.dof, expected.pvalue))


def test_chi2_homogeneity_ignores_classes_absent_from_both():
    assert chi2_homogeneity(np.array([10, 0, 10]), np.array([500, 0, 500]))[1] == 1


def test_accuracy_bound_is_the_largest_significant_accuracy():
    n, reference, alpha = 250, 0.55, 0.005
    k = round(accuracy_bound(n, reference, alpha) * n)
    assert accuracy_drop_pvalue(k, n, reference) < alpha <= accuracy_drop_pvalue(k + 1, n, reference)


def test_mean_rise_pvalue_and_bound_agree():
    rng = np.random.default_rng(5)
    values = rng.exponential(1.0, size=400)
    p, std_error = mean_rise_pvalue(values, 0.9)
    bound = mean_bound(0.9, std_error, values.size, 0.01)
    assert (values.mean() > bound) == (p < 0.01)
    assert std_error == pytest.approx(values.std(ddof=1) / 20)


def test_ks_pvalue_and_psi_threshold_take_effective_sizes_per_feature():
    statistic, n_eff, m_eff = np.array([0.1, 0.3]), np.array([250.0, 15.5]), np.array([20_000.0, 180.2])
    assert ks_pvalue(statistic, n_eff, m_eff) == pytest.approx(
        [ks_pvalue(d, n, m) for d, n, m in zip(statistic, n_eff, m_eff)]
    )
    thresholds = psi_threshold(n_eff, m_eff, np.array([9, 4]), 0.99, 0.1)
    assert thresholds == pytest.approx([psi_threshold(n, m, df, 0.99, 0.1) for n, m, df in zip(n_eff, m_eff, (9, 4))])
    assert thresholds[1] == pytest.approx((1 / 15.5 + 1 / 180.2) * stats.chi2.ppf(0.99, 4))


def _ar1(rng: np.random.Generator, rho: float, size: int) -> np.ndarray:
    """A stationary Gaussian AR(1) series with unit variance."""
    shocks = rng.normal(size=size) * np.sqrt(1 - rho**2)
    shocks[0] = rng.normal()
    return signal.lfilter([1.0], [1.0, -rho], shocks)


def _tau(autocorrelation, length: int) -> float:
    """1 + 2 sum_k (1 - k/L) rho_k: the variance inflation of the mean of L consecutive values."""
    lags = np.arange(1, length)
    return float(1 + 2 * np.sum((1 - lags / length) * autocorrelation(lags)))


def test_lag1_autocorrelation_pools_pairs_within_runs_only():
    rng = np.random.default_rng(10)
    matrix = rng.normal(size=(30, 2))
    runs = Runs(order=None, lengths=np.array([10, 20]))
    centred = matrix - matrix.mean(axis=0)
    pairs = [t for t in range(29) if t != 9]  # rows 9 and 10 belong to different runs
    expected = sum(centred[t] * centred[t + 1] for t in pairs) / (centred**2).sum(axis=0)
    assert lag1_autocorrelation(matrix, runs) == pytest.approx(expected)
    assert lag1_autocorrelation(matrix, Runs(None, np.array([30])))[0] == pytest.approx(
        (centred[1:, 0] * centred[:-1, 0]).sum() / (centred[:, 0] ** 2).sum()
    )


def test_lag1_autocorrelation_of_interleaved_groups_equals_that_of_sorted_rows():
    rng = np.random.default_rng(11)
    series = np.stack([_ar1(rng, 0.9, 400) for _ in range(3)])  # (symbol, time)
    by_symbol = series.reshape(-1, 1)
    by_time = series.T.reshape(-1, 1)  # time then symbol, as a cross-section scan delivers it
    codes_by_time = np.tile(np.arange(3), 400)
    sorted_rho = lag1_autocorrelation(by_symbol, runs_of(np.repeat(np.arange(3), 400), 1200))
    assert lag1_autocorrelation(by_time, runs_of(codes_by_time, 1200)) == pytest.approx(sorted_rho)
    assert sorted_rho[0] == pytest.approx(0.9, abs=0.05)
    assert lag1_autocorrelation(by_time, runs_of(None, 1200))[0] < 0.2  # without groups: pairs across symbols


def test_lag1_autocorrelation_of_a_constant_column_is_zero():
    matrix = np.column_stack([np.full(50, 0.1), np.arange(50.0)])
    rho = lag1_autocorrelation(matrix, runs_of(None, 50))
    assert rho[0] == 0.0 and rho[1] > 0.9


def test_ar1_inflation_clips_the_autocorrelation():
    assert ar1_inflation(np.array([-0.5, 0.0, 0.5, 0.999])) == pytest.approx([1.0, 1.0, 3.0, 199.0])


def test_inflation_grid_measures_the_variance_inflation_of_ar1_runs():
    rng = np.random.default_rng(12)
    rho, runs, length = 0.9, 20, 5000
    values = np.concatenate([_ar1(rng, rho, length) for _ in range(runs)])
    sketch = ReferenceStats.from_data(values[:, None], ["x"], groups=np.repeat(np.arange(runs), length)).features[0]
    grid = sketch.inflation
    assert grid.size == 12  # run lengths 1 .. 2048 hold at least 30 disjoint windows in the reference
    for power in (2, 4, 6, 8):
        # ranks of a Gaussian AR(1) are slightly less persistent than its values
        expected = _tau(lambda lags: rho**lags, 2**power)
        assert 0.8 * expected <= grid[power] <= 1.1 * expected
    assert sketch.autocorrelation == pytest.approx(rho, abs=0.01)
    assert sketch.independent_size == pytest.approx(sketch.size / sketch.run_inflation(np.full(runs, length)))


def test_inflation_grid_of_independent_values_stays_near_one():
    rng = np.random.default_rng(13)
    values = rng.standard_t(3, size=20_000)
    sketch = ReferenceStats.from_data(values[:, None], ["x"]).features[0]
    assert np.all(sketch.inflation >= 1.0) and np.all(np.diff(sketch.inflation) >= 0)
    assert sketch.inflation[-1] < 1.35
    assert sketch.run_inflation(np.array([250])) < 1.25


def test_inflation_grid_sees_volatility_regimes_that_lag1_misses():
    rng = np.random.default_rng(14)
    durations = rng.geometric(1 / 300, size=400)
    scale = np.repeat(rng.choice([0.5, 2.0], size=400), durations)[:60_000]
    returns = scale * rng.normal(size=scale.size)  # serially uncorrelated, clustered in scale
    sketch = ReferenceStats.from_data(returns[:, None], ["ret"]).features[0]
    assert sketch.autocorrelation < 0.02
    assert sketch.run_inflation(np.array([390])) > 20


def test_inflation_grid_handles_a_balanced_flag_and_many_short_runs():
    rng = np.random.default_rng(15)
    flag = np.repeat(rng.random(2000) < 0.5, 10).astype(float)  # runs of 10 equal values
    grid = inflation_grid(flag, np.array([0.0, 1.0]), np.array([0.25, 0.75]), np.full(200, 100))
    # a row and the row k later share a block of 10 with probability 1 - k/10
    assert grid[3] == pytest.approx(_tau(lambda lags: np.maximum(0, 1 - lags / 10), 8), rel=0.1)
    assert grid.size == 7  # 200 runs of 100 rows hold 30 disjoint windows of up to 64 rows


def test_pooled_inflation_interpolates_in_log2_and_holds_beyond_the_grid():
    grid = np.array([1.0, 2.0, 4.0])
    assert pooled_inflation(grid, np.array([2])) == 2.0
    assert pooled_inflation(grid, np.array([2 * np.sqrt(2)])) == pytest.approx(3.0)
    assert pooled_inflation(grid, np.array([1000])) == 4.0
    assert pooled_inflation(grid, np.array([2, 4])) == pytest.approx((2 * 2 + 4 * 4) / 6)


def test_batch_inflation_scales_the_reference_by_excess_persistence_only():
    shown = np.array([10.0, 10.0, 10.0, 1.0])
    batch_rho = np.array([0.5, 0.8, 0.0, 0.8])
    reference_rho = np.array([0.5, 0.5, 0.5, 0.0])  # the last: a reference that did not record it
    assert batch_inflation(shown, batch_rho, reference_rho) == pytest.approx([10.0, 30.0, 10.0, 9.0])


def test_accuracy_drop_pvalue_is_the_binomial_cdf_continued_to_effective_counts():
    for n, reference in ((7, 0.3), (600, 0.55), (3120, 0.43)):
        correct = np.array([0, n // 3, n // 2, n - 1])
        assert [accuracy_drop_pvalue(k, n, reference) for k in correct] == pytest.approx(
            stats.binom.cdf(correct, n, reference), rel=1e-9
        )
    # 3,120 rows with tau 8 are tested as 390 rows; between integers the p-value is monotone
    between = [accuracy_drop_pvalue(k, 390.0, 0.45) for k in (160.0, 160.25, 160.5, 161.0)]
    assert between[0] == pytest.approx(stats.binom.cdf(160, 390, 0.45)) and np.all(np.diff(between) > 0)
    assert accuracy_drop_pvalue(390.0, 390.0, 0.45) == 1.0 and accuracy_drop_pvalue(-0.5, 390.0, 0.45) == 0.0


def test_accuracy_bound_with_inflation_is_the_largest_significant_accuracy_of_the_effective_rows():
    n, reference, alpha, inflation = 3120, 0.45, 0.005, 7.5
    correct = round(accuracy_bound(n, reference, alpha, inflation) * n)
    assert accuracy_drop_pvalue(correct / inflation, n / inflation, reference) < alpha
    assert accuracy_drop_pvalue((correct + 1) / inflation, n / inflation, reference) >= alpha
    assert accuracy_bound(n, reference, alpha, inflation) < accuracy_bound(n, reference, alpha) < reference


def test_mean_rise_pvalue_with_inflation_widens_the_error_and_cuts_the_degrees_of_freedom():
    values = np.random.default_rng(40).normal(1.0, 0.5, size=400)
    p, std_error = mean_rise_pvalue(values, 0.9, inflation=4.0)
    assert std_error == pytest.approx(values.std(ddof=1) / 10)
    t_stat = (values.mean() - 0.9) / std_error
    assert p == pytest.approx(stats.t.sf(t_stat, 99))
    assert (values.mean() > mean_bound(0.9, std_error, 100.0, 0.01)) == (p < 0.01)


def _overlapping_sums(rng: np.random.Generator, runs: int, length: int, window: int) -> np.ndarray:
    """Runs of `window`-bar sums of i.i.d. noise, one after another: an MA(window - 1) per run."""
    noise = rng.normal(size=(runs, length + window - 1))
    sums = np.stack([np.convolve(row, np.ones(window), mode="valid") for row in noise])
    return sums.ravel()


def test_newey_west_inflation_of_overlapping_windows_is_near_the_window():
    rng = np.random.default_rng(41)
    values = _overlapping_sums(rng, 40, 2000, 10)  # tau of an MA(9) with equal weights is 10
    runs = Runs(order=None, lengths=np.full(40, 2000))
    lag = newey_west_lag(values, runs)
    assert lag >= 10  # the plug-in lag grows as n^(1/3): 117 for these 80,000 rows
    assert 8.5 <= newey_west_inflation(values, runs, lag) <= 11.0
    assert newey_west_inflation(values, runs, 9) < newey_west_inflation(values, runs, 30)  # Bartlett weights
    noise = rng.normal(size=80_000)
    assert newey_west_lag(noise, runs) <= 5 and newey_west_inflation(noise, runs, 20) < 1.1


def test_autocovariances_pool_pairs_within_runs_only():
    rng = np.random.default_rng(42)
    values = rng.normal(size=30)
    runs = Runs(order=None, lengths=np.array([10, 20]))
    centred = values - values.mean()
    pairs = [t for t in range(28) if t not in (8, 9)]  # lag 2 pairs starting at rows 8 and 9 straddle the runs
    gamma = autocovariances(values, runs, 2)
    assert gamma[0] == pytest.approx(np.mean(centred**2))
    assert gamma[2] == pytest.approx(sum(centred[t] * centred[t + 2] for t in pairs) / 30)
    assert newey_west_inflation(np.ones(30), runs, 5) == 1.0


def test_subset_runs_keeps_the_rows_of_each_run_in_order():
    codes = np.tile(np.arange(3), 5)  # rows time then group
    keep = np.ones(15, dtype=bool)
    keep[[0, 4, 14]] = False
    runs = subset_runs(runs_of(codes, 15), keep)
    direct = runs_of(codes[keep], 12)
    assert runs.lengths.tolist() == direct.lengths.tolist() == [4, 4, 4]
    values = np.arange(15.0)
    assert in_run_order(values[keep], runs).tolist() == in_run_order(values[keep], direct).tolist()
    assert subset_runs(Runs(None, np.array([5, 5])), np.arange(10) >= 5).lengths.tolist() == [5]


def test_class_design_effect_is_the_largest_inflation_of_the_classes_present():
    assert class_design_effect(np.array([0.4, 0.3, 0.3]), np.array([20.0, 60.0, 15.0])) == 60.0
    assert class_design_effect(np.array([0.5, 0.0, 0.5]), np.array([20.0, 60.0, 15.0])) == 20.0
