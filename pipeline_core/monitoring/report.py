"""DriftReport: the result of one drift check as data (tables, markdown) and as a plot."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from pipeline_core.monitoring.alerts import AlertSeverity, DriftAlert
from pipeline_core.monitoring.reference import ReferenceStats


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift statistics for a batch.

    Attributes:
        feature: feature name.
        psi: population stability index on the reference-quantile bins (effect size).
        psi_threshold: PSI at or above which the shift is material for this batch size.
        ks_stat: two-sample KS statistic against the reference.
        ks_pvalue: its p-value.
        ks_pvalue_adjusted: the p-value after the multiple-testing correction over features.
        mean_shift_sigma: (batch mean - reference mean) / reference standard deviation.
        significant: the adjusted p-value is below the configured alpha.
        drifted: significant and PSI at or above its threshold.
        effective_size: independent rows the batch is worth for this feature given its
            serial dependence (the batch size when rows are taken as independent); the
            KS p-value and the PSI threshold use it.
    """

    feature: str
    psi: float
    psi_threshold: float
    ks_stat: float
    ks_pvalue: float
    ks_pvalue_adjusted: float
    mean_shift_sigma: float
    significant: bool
    drifted: bool
    effective_size: float


@dataclass(frozen=True)
class MetricDrift:
    """One prediction or performance test for a batch.

    Attributes:
        metric: "class_balance", "confidence", "accuracy" or "log_loss".
        statistic: name of `value`: "psi", "accuracy" or "log_loss".
        value: the observed value in the batch.
        reference: the reference/validation value it is compared with (None for PSI).
        threshold: for PSI the material-shift threshold; for performance the bound beyond
            which the difference to the validation figure is significant.
        test: the significance test: "chi-square", "ks", "binomial" or "t".
        p_value: its p-value.
        alpha: the level it was tested at (after splitting the family's alpha).
        n: rows the test used.
        severity: the severity this test raised, or None.
        effective_size: independent rows the batch (for performance: its rows with
            known actuals) is worth given their serial dependence; the test uses it. The
            row count `n` when rows are taken as independent.
    """

    metric: str
    statistic: str
    value: float
    reference: float | None
    threshold: float
    test: str
    p_value: float
    alpha: float
    n: int
    severity: AlertSeverity | None
    effective_size: float | None = None


@dataclass(frozen=True, eq=False)
class DriftReport:
    """Everything one check found.

    Attributes:
        batch_size: rows in the batch.
        features: per-feature statistics (empty when the batch was skipped).
        metrics: prediction and performance tests that ran.
        alerts: the alerts raised, escalation included.
        drifted_share: share of features that drifted.
        skipped_reason: why the batch was not judged, or None.
        notes: checks that could not run and why (e.g. no reference predictions).
    """

    batch_size: int
    features: tuple[FeatureDrift, ...] = ()
    metrics: tuple[MetricDrift, ...] = ()
    alerts: tuple[DriftAlert, ...] = ()
    drifted_share: float = 0.0
    skipped_reason: str | None = None
    notes: tuple[str, ...] = ()
    reference: ReferenceStats | None = field(default=None, repr=False)
    current: np.ndarray | None = field(default=None, repr=False)

    @property
    def severity(self) -> AlertSeverity | None:
        """The highest alert severity, or None without alerts."""
        return max((alert.severity for alert in self.alerts), default=None)

    @property
    def drifted_features(self) -> list[str]:
        return [row.feature for row in self.features if row.drifted]

    def to_frame(self) -> pd.DataFrame:
        """The per-feature table, most drifted first."""
        columns = [f.name for f in fields(FeatureDrift)]
        rows = [asdict(row) for row in self.ranked_features()]
        return pd.DataFrame(rows, columns=columns)

    def metrics_frame(self) -> pd.DataFrame:
        """The prediction and performance tests, one row each."""
        columns = [f.name for f in fields(MetricDrift)]
        rows = [{**asdict(row), "severity": _name(row.severity)} for row in self.metrics]
        return pd.DataFrame(rows, columns=columns)

    def ranked_features(self) -> list[FeatureDrift]:
        """Features ordered drifted first, then by PSI descending."""
        return sorted(self.features, key=lambda row: (not row.drifted, not row.significant, -row.psi))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for Dagster metadata or logs)."""
        return {
            "batch_size": self.batch_size,
            "severity": _name(self.severity),
            "drifted_share": self.drifted_share,
            "drifted_features": self.drifted_features,
            "skipped_reason": self.skipped_reason,
            "notes": list(self.notes),
            "alerts": [alert.to_dict() for alert in self.alerts],
            "features": [asdict(row) for row in self.ranked_features()],
            "metrics": [{**asdict(row), "severity": _name(row.severity)} for row in self.metrics],
        }

    def to_markdown(self, max_features: int | None = None) -> str:
        """Summary, alerts, the feature table and the metric table as markdown."""
        lines = [
            f"**Drift check**: {self.batch_size} rows, severity {_name(self.severity) or 'none'}, "
            f"{len(self.drifted_features)}/{len(self.features)} features drifted",
        ]
        if self.skipped_reason:
            lines.append(f"\nSkipped: {self.skipped_reason}")
        lines += [f"\nNote: {note}" for note in self.notes]
        if self.alerts:
            lines.append("\n| severity | metric | feature | statistic | threshold | message |")
            lines.append("|---|---|---|---|---|---|")
            lines += [
                f"| {a.severity.name} | {a.metric} | {a.feature or ''} | {a.statistic:.4g} "
                f"| {a.threshold:.4g} | {a.message} |"
                for a in self.alerts
            ]
        if self.features:
            lines.append(_feature_table(self.ranked_features()[:max_features]))
        if self.metrics:
            lines.append(_metric_table(self.metrics))
        return "\n".join(lines) + "\n"

    def plot_png(self, top_k: int = 6) -> bytes:
        """PNG of reference vs batch histograms of the `top_k` most drifted features."""
        from pipeline_core.monitoring.plot import drift_histograms_png

        return drift_histograms_png(self, top_k)


def _name(severity: AlertSeverity | None) -> str | None:
    return None if severity is None else severity.name


def _feature_table(rows: list[FeatureDrift]) -> str:
    out = [
        "\n| feature | psi | psi_threshold | ks_stat | ks_pvalue | adjusted_p | mean_shift_sigma | effective_rows "
        "| drifted |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    out += [
        f"| {r.feature} | {r.psi:.4f} | {r.psi_threshold:.4f} | {r.ks_stat:.4f} | {r.ks_pvalue:.3g} "
        f"| {r.ks_pvalue_adjusted:.3g} | {r.mean_shift_sigma:+.3f} | {r.effective_size:.0f} "
        f"| {'yes' if r.drifted else 'no'} |"
        for r in rows
    ]
    return "\n".join(out)


def _metric_table(rows: tuple[MetricDrift, ...]) -> str:
    out = [
        "\n| metric | statistic | value | reference | threshold | test | p_value | alpha | n | severity |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    out += [
        f"| {r.metric} | {r.statistic} | {r.value:.4f} | {'' if r.reference is None else f'{r.reference:.4f}'} "
        f"| {r.threshold:.4f} | {r.test} | {r.p_value:.3g} | {r.alpha:.3g} | {r.n} | {_name(r.severity) or ''} |"
        for r in rows
    ]
    return "\n".join(out)
