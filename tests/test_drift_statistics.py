"""The drift statistics against scipy and against their definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pipeline_core.monitoring import ReferenceStats
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
