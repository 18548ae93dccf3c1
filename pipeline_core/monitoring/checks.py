"""The three checks of a batch against the reference: features, predictions, performance.

Each returns its table rows, its alerts and notes on what could not be checked. Every
family of tests has its own alpha from DriftConfig, split (Bonferroni) or corrected over
its tests, so together they keep the false-alarm budget of the config. Unless
`config.serial_correlation` is off, every test counts serially dependent rows by their
effective size (see `monitoring.dependence`): the feature, confidence and class-balance
tests by the dependence the reference measured (scaled up where the batch is more
persistent at lag 1), the performance tests by the batch's own Newey-West long-run
variance of per-row correctness and log-loss.
"""

from __future__ import annotations

import numpy as np

from pipeline_core.monitoring.alerts import AlertSeverity, DriftAlert
from pipeline_core.monitoring.config import DriftConfig
from pipeline_core.monitoring.dependence import (
    Runs,
    batch_inflation,
    class_design_effect,
    effective_size,
    lag1_autocorrelation,
    newey_west_inflation,
    newey_west_lag,
    subset_runs,
)
from pipeline_core.monitoring.inputs import CLASSES
from pipeline_core.monitoring.reference import DistributionSketch, ReferenceStats
from pipeline_core.monitoring.report import FeatureDrift, MetricDrift
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

CheckOutput = tuple[list, list[DriftAlert], list[str]]
_LOG_LOSS_CLIP = 1e-15


def feature_drift(reference: ReferenceStats, matrix: np.ndarray, runs: Runs, config: DriftConfig) -> CheckOutput:
    """Per-feature KS test (corrected over features) and PSI on effective sizes; the feature-share rule.

    `runs` are the batch rows' time-ordered runs (one per group).
    """
    n, sketches = matrix.shape[0], reference.features
    n_eff = effective_size(n, _batch_inflation(sketches, matrix, runs, config))
    m_eff = np.array([_reference_size(sketch, config) for sketch in sketches])
    ordered = np.sort(matrix.T, axis=1)
    effects = np.array([_compare(sketch, ordered[j], config) for j, sketch in enumerate(sketches)])
    ks, psis = effects[:, 0], effects[:, 1]
    dfs = np.array([sketch.psi_df for sketch in sketches])
    thresholds = psi_threshold(n_eff, m_eff, dfs, config.psi_quantile, config.psi_floor)
    pvalues = ks_pvalue(ks, n_eff, m_eff)
    adjusted = adjust_pvalues(pvalues, config.correction)
    means = matrix.mean(axis=0)
    rows = []
    for j, (name, sketch) in enumerate(zip(reference.feature_names, sketches)):
        significant = bool(adjusted[j] < config.ks_alpha)
        rows.append(
            FeatureDrift(
                feature=name,
                psi=float(psis[j]),
                psi_threshold=float(thresholds[j]),
                ks_stat=float(ks[j]),
                ks_pvalue=float(pvalues[j]),
                ks_pvalue_adjusted=float(adjusted[j]),
                mean_shift_sigma=float((means[j] - sketch.mean) / sketch.std) if sketch.std > 0 else 0.0,
                significant=significant,
                drifted=significant and bool(psis[j] >= thresholds[j]),
                effective_size=float(n_eff[j]),
            )
        )
    alerts = [_feature_alert(row, n, len(rows), config) for row in rows if row.significant]
    critical = _feature_share_alert(rows, n, config) or _severe_features_alert(rows, n, config)
    return rows, alerts + ([critical] if critical else []), []


def _feature_share_alert(rows: list[FeatureDrift], n: int, config: DriftConfig) -> DriftAlert | None:
    """CRITICAL when the share of drifted features reaches config.critical_feature_share."""
    drifted = [row.feature for row in rows if row.drifted]
    share = len(drifted) / len(rows)
    if not drifted or share < config.critical_feature_share:
        return None
    return DriftAlert(
        severity=AlertSeverity.CRITICAL,
        metric="feature_share",
        feature=None,
        statistic=share,
        threshold=config.critical_feature_share,
        batch_size=n,
        message=(
            f"{share:.0%} of features drifted (critical share {config.critical_feature_share:.0%}): "
            f"{_listing(drifted)}; batch of {n} rows"
        ),
    )


def _batch_inflation(
    sketches: tuple[DistributionSketch, ...], matrix: np.ndarray, runs: Runs, config: DriftConfig
) -> np.ndarray:
    """Per-column variance inflation of the batch rows (see `dependence.batch_inflation`); 1 when off."""
    if not config.serial_correlation:
        return np.ones(matrix.shape[1])
    shown = np.array([sketch.run_inflation(runs.lengths) for sketch in sketches])
    known = np.array([sketch.autocorrelation for sketch in sketches])
    return batch_inflation(shown, lag1_autocorrelation(matrix, runs), known)


def _reference_size(sketch: DistributionSketch, config: DriftConfig) -> float:
    return sketch.independent_size if config.serial_correlation else float(sketch.size)


def _severe_features_alert(rows: list[FeatureDrift], n: int, config: DriftConfig) -> DriftAlert | None:
    """CRITICAL when at least config.critical_severe_features features drifted with PSI >= severe_psi."""
    limit = config.critical_severe_features
    by_psi = sorted(rows, key=lambda row: -row.psi)
    severe = [row.feature for row in by_psi if row.drifted and row.psi >= config.severe_psi]
    if limit is None or len(severe) < limit:
        return None
    return DriftAlert(
        severity=AlertSeverity.CRITICAL,
        metric="severe_features",
        feature=None,
        statistic=float(len(severe)),
        threshold=float(limit),
        batch_size=n,
        message=(
            f"{len(severe)} features drifted severely (PSI >= {config.severe_psi:g}; critical from {limit}): "
            f"{_listing(severe)}; batch of {n} rows"
        ),
    )


def _compare(sketch: DistributionSketch, ordered: np.ndarray, config: DriftConfig) -> tuple[float, float]:
    """(KS statistic, PSI) of sorted batch values against a reference sketch."""
    m = sketch.size
    ks = ks_statistic(ordered, sketch.support, sketch.count_le / m, sketch.count_lt / m)
    return ks, psi(bin_proportions(ordered, sketch.edges), sketch.proportions, config.psi_epsilon)


def _rows_text(n: int, n_eff: float) -> str:
    """'batch of 3120 rows', with what they are worth when serially dependent."""
    worth = f", worth {n_eff:.0f} independent" if n_eff < 0.995 * n else ""
    return f"batch of {n} rows{worth}"


def _feature_alert(row: FeatureDrift, n: int, n_features: int, config: DriftConfig) -> DriftAlert:
    test = (
        f"KS D {row.ks_stat:.3f}, p {row.ks_pvalue_adjusted:.2g} after {config.correction} over "
        f"{n_features} features < {config.ks_alpha}"
    )
    if row.drifted:
        severity, what = AlertSeverity.WARNING, f"drifted: PSI {row.psi:.3f} >= {row.psi_threshold:.3f}"
    else:
        severity, what = AlertSeverity.INFO, f"shifted slightly: PSI {row.psi:.3f} < {row.psi_threshold:.3f}"
    return DriftAlert(
        severity=severity,
        metric="feature_drift",
        feature=row.feature,
        statistic=row.psi,
        threshold=row.psi_threshold,
        batch_size=n,
        message=f"feature {row.feature!r} {what} ({test}); {_rows_text(n, row.effective_size)}",
    )


def prediction_drift(
    reference: ReferenceStats,
    predictions: np.ndarray | None,
    confidences: np.ndarray | None,
    runs: Runs,
    config: DriftConfig,
) -> CheckOutput:
    """Class balance (chi-square) and confidence distribution (KS), sharing prediction_alpha."""
    notes = []
    run_balance = predictions is not None and reference.class_proportions is not None
    run_confidence = confidences is not None and reference.confidence is not None
    if predictions is not None and not run_balance:
        notes.append("class balance not checked: the reference has no predictions")
    if confidences is not None and not run_confidence:
        notes.append("confidence not checked: the reference has no confidences")
    alpha = config.prediction_alpha / max(run_balance + run_confidence, 1)
    rows = []
    if run_balance:
        rows.append(_class_balance(reference, predictions, runs, alpha, config))
    if run_confidence:
        rows.append(_confidence(reference.confidence, confidences, runs, alpha, config))
    return rows, [_metric_alert(row) for row in rows if row.severity is not None], notes


def _class_balance(
    reference: ReferenceStats, predictions: np.ndarray, runs: Runs, alpha: float, config: DriftConfig
) -> MetricDrift:
    """Chi-square homogeneity test and PSI of the class shares, on effective counts."""
    n, m = predictions.size, reference.n_predictions
    ref_props = np.asarray(reference.class_proportions)
    counts = np.array([np.count_nonzero(predictions == c) for c in CLASSES])
    n_eff = n / _class_inflation(reference, predictions, runs, config)
    m_eff = reference.independent_predictions if config.serial_correlation else float(m)
    _, _, p_value = chi2_homogeneity(counts / n * n_eff, ref_props * m_eff)
    value = psi(counts / n, ref_props, config.psi_epsilon)
    df = max(int(np.count_nonzero(ref_props)) - 1, 1)
    return _distribution_drift("class_balance", "chi-square", value, p_value, n, n_eff, m_eff, df, alpha, config)


def _class_inflation(reference: ReferenceStats, predictions: np.ndarray, runs: Runs, config: DriftConfig) -> float:
    """Design effect of the batch's class shares (`dependence.class_design_effect`); 1 when off.

    Per class the reference's tau for the batch's runs, scaled up where the batch's class
    indicator is more persistent at lag 1 (a reference without class dependence: the
    batch's AR(1) factor alone).
    """
    if not config.serial_correlation:
        return 1.0
    indicators = (predictions[:, None] == np.array(CLASSES)).astype(np.float64)
    dependence = reference.class_dependence
    if dependence is None:
        shown, known = np.ones(len(CLASSES)), np.zeros(len(CLASSES))
    else:
        shown, known = dependence.run_inflation(runs.lengths), np.asarray(dependence.autocorrelation)
    taus = batch_inflation(shown, lag1_autocorrelation(indicators, runs), known)
    return class_design_effect(np.asarray(reference.class_proportions), taus)


def _confidence(
    sketch: DistributionSketch, confidences: np.ndarray, runs: Runs, alpha: float, config: DriftConfig
) -> MetricDrift:
    n = confidences.size
    n_eff = float(effective_size(n, _batch_inflation((sketch,), confidences[:, None], runs, config))[0])
    m_eff = _reference_size(sketch, config)
    ks, value = _compare(sketch, np.sort(confidences), config)
    p_value = float(ks_pvalue(ks, n_eff, m_eff))
    return _distribution_drift("confidence", "ks", value, p_value, n, n_eff, m_eff, sketch.psi_df, alpha, config)


def _distribution_drift(
    metric: str, test: str, value: float, p_value: float, n: int, n_eff: float, m_eff: float, df: int,
    alpha: float, config: DriftConfig,
) -> MetricDrift:
    """A PSI-judged test: no alert unless significant; WARNING when the PSI is also material."""
    threshold = psi_threshold(n_eff, m_eff, df, config.psi_quantile, config.psi_floor)
    severity = None if p_value >= alpha else AlertSeverity.WARNING if value >= threshold else AlertSeverity.INFO
    return MetricDrift(
        metric=metric, statistic="psi", value=value, reference=None, threshold=threshold, test=test,
        p_value=p_value, alpha=alpha, n=n, severity=severity, effective_size=n_eff,
    )


def performance_drift(
    reference: ReferenceStats,
    predictions: np.ndarray | None,
    probabilities: np.ndarray | None,
    actuals: np.ndarray | None,
    runs: Runs,
    config: DriftConfig,
) -> CheckOutput:
    """One-sided accuracy (binomial) and log-loss (t) tests against validation figures.

    On the rows with known actuals; with `config.serial_correlation` each test counts
    them by the Newey-West long-run variance of its per-row values within runs (labels of
    consecutive bars overlap, so their errors are correlated).
    """
    if actuals is None:
        return [], [], []
    known = ~np.isnan(actuals)
    n_known = int(known.sum())
    if n_known < config.min_batch_size:
        return [], [], [
            f"performance not checked: {n_known} rows with known actuals, fewer than "
            f"min_batch_size={config.min_batch_size}"
        ]
    notes = []
    run_accuracy = predictions is not None and reference.accuracy is not None
    run_log_loss = probabilities is not None and reference.log_loss is not None
    if not run_accuracy:
        notes.append("accuracy not checked: needs predictions and a validation accuracy in the reference")
    if not run_log_loss:
        notes.append("log-loss not checked: needs probabilities and a validation log-loss in the reference")
    alpha = config.performance_alpha / max(run_accuracy + run_log_loss, 1)
    labels = actuals[known]
    known_runs = subset_runs(runs, known)
    rows = []
    if run_accuracy:
        rows.append(_accuracy(reference.accuracy, predictions[known], labels, known_runs, alpha, config))
    if run_log_loss:
        rows.append(_log_loss(reference.log_loss, probabilities[known], labels, known_runs, alpha, config))
    return rows, [_metric_alert(row) for row in rows if row.severity is not None], notes


def _performance_inflation(values: np.ndarray, runs: Runs, config: DriftConfig) -> float:
    """Newey-West variance inflation of the mean of per-row values; 1 when off.

    The lag is the data's plug-in choice (`dependence.newey_west_lag`), at least
    `config.label_horizon` when given (rows closer than that share label bars).
    """
    if not config.serial_correlation:
        return 1.0
    lag = max(newey_west_lag(values, runs), config.label_horizon or 0)
    return newey_west_inflation(values, runs, min(lag, int(runs.lengths.max()) - 1))


def _accuracy(
    validation: float, predictions: np.ndarray, labels: np.ndarray, runs: Runs, alpha: float, config: DriftConfig
) -> MetricDrift:
    n = labels.size
    hits = predictions == labels
    inflation = _performance_inflation(hits.astype(np.float64), runs, config)
    n_eff, correct = n / inflation, int(np.count_nonzero(hits))
    p_value = accuracy_drop_pvalue(correct / inflation, n_eff, validation)
    critical_level = validation - config.accuracy_critical_drop
    severity = None
    threshold = accuracy_bound(n, validation, alpha, inflation)
    if accuracy_drop_pvalue(correct / inflation, n_eff, critical_level) < alpha:
        severity, threshold = AlertSeverity.CRITICAL, accuracy_bound(n, critical_level, alpha, inflation)
    elif p_value < alpha:
        severity = AlertSeverity.WARNING
    return MetricDrift(
        metric="accuracy",
        statistic="accuracy",
        value=correct / n,
        reference=validation,
        threshold=threshold,
        test="binomial",
        p_value=p_value,
        alpha=alpha,
        n=n,
        severity=severity,
        effective_size=n_eff,
    )


def _log_loss(
    validation: float, probabilities: np.ndarray, labels: np.ndarray, runs: Runs, alpha: float, config: DriftConfig
) -> MetricDrift:
    n = labels.size
    columns = np.searchsorted(CLASSES, labels.astype(np.int64))
    losses = -np.log(np.clip(probabilities[np.arange(n), columns], _LOG_LOSS_CLIP, 1.0))
    inflation = _performance_inflation(losses, runs, config)
    n_eff = n / inflation
    p_value, std_error = mean_rise_pvalue(losses, validation, inflation)
    critical_level = validation + config.log_loss_critical_rise
    severity = None
    threshold = mean_bound(validation, std_error, n_eff, alpha)
    if mean_rise_pvalue(losses, critical_level, inflation)[0] < alpha:
        severity, threshold = AlertSeverity.CRITICAL, mean_bound(critical_level, std_error, n_eff, alpha)
    elif p_value < alpha:
        severity = AlertSeverity.WARNING
    return MetricDrift(
        metric="log_loss",
        statistic="log_loss",
        value=float(losses.mean()),
        reference=validation,
        threshold=threshold,
        test="t",
        p_value=p_value,
        alpha=alpha,
        n=n,
        severity=severity,
        effective_size=n_eff,
    )


def _metric_alert(row: MetricDrift) -> DriftAlert:
    if row.reference is None:
        detail = (
            f"{row.metric} distribution shifted: PSI {row.value:.3f} (threshold {row.threshold:.3f}), "
            f"{row.test} p {row.p_value:.2g} < {row.alpha:.3g}"
        )
    else:
        worse = "below" if row.metric == "accuracy" else "above"
        detail = (
            f"{row.metric} {row.value:.4f} is {worse} the bound {row.threshold:.4f} "
            f"(validation {row.reference:.4f}, one-sided {row.test} p {row.p_value:.2g} < {row.alpha:.3g})"
        )
    return DriftAlert(
        severity=row.severity,
        metric=row.metric,
        feature=None,
        statistic=row.value,
        threshold=row.threshold,
        batch_size=row.n,
        message=f"{detail}; {_rows_text(row.n, row.n if row.effective_size is None else row.effective_size)}",
    )


def _listing(names: list[str], limit: int = 5) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{names[:limit]}{more}"
