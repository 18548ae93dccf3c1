"""Drift monitoring of scored batches against reference statistics stored in the bundle.

Feature drift (per-feature KS test corrected over features, PSI as effect size),
prediction drift (class balance, confidence distribution) and performance drift
(accuracy, log-loss against validation figures), with severities, escalation across
checks, JSON state for sensors, and a report as tables and a PNG. Every test counts
serially dependent rows (consecutive bars of a symbol) by their effective sample size:
see `monitoring.dependence` and `DriftConfig.serial_correlation`.
"""

from pipeline_core.monitoring.alerts import AlertSeverity, DriftAlert
from pipeline_core.monitoring.config import DriftConfig
from pipeline_core.monitoring.drift_detector import OnlineDriftMonitor
from pipeline_core.monitoring.reference import ClassDependence, DistributionSketch, ReferenceStats
from pipeline_core.monitoring.report import DriftReport, FeatureDrift, MetricDrift

__all__ = [
    "AlertSeverity",
    "ClassDependence",
    "DistributionSketch",
    "DriftAlert",
    "DriftConfig",
    "DriftReport",
    "FeatureDrift",
    "MetricDrift",
    "OnlineDriftMonitor",
    "ReferenceStats",
]
