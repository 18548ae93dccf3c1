"""Realized performance of scored (date, horizon) partitions, and where it is kept.

Used by the Dagster `realized_performance` asset. A partition's outcomes need the bars after
it: the last bars of a date are labelled by the next dates' bars, so a date is realized
only once a later date has raw bars (its last rows stay pending until `horizon` bars
follow). Outcomes are judged against the reference of the bundle that scored them:

    <data root>/realized/horizon=H/date=D/part-0.parquet   predictions with their outcomes
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from pipeline_core.constants import PROBABILITY_COLUMNS
from pipeline_core.data import list_partition_dates, write_partition
from pipeline_core.errors import DataValidationError
from pipeline_core.monitoring.alerts import AlertSeverity
from pipeline_core.monitoring.checks import performance_drift
from pipeline_core.monitoring.config import DriftConfig
from pipeline_core.monitoring.dependence import runs_of
from pipeline_core.monitoring.drift_detector import OnlineDriftMonitor
from pipeline_core.monitoring.inputs import group_codes
from pipeline_core.monitoring.partitions import partition_name, predictions_file
from pipeline_core.monitoring.report import MetricDrift
from pipeline_core.pipeline import InferencePipeline
from pipeline_core.realized import hit_rate_by_confidence, metrics_by_symbol, partition_outcomes

NO_ALERT = "none"


class OutcomesNotAvailable(DataValidationError):
    """A date's outcomes need raw bars of a later date, and there are none yet."""


@dataclass(frozen=True)
class PartitionOutcomes:
    """One partition's realized figures, its performance tests against the bundle's
    reference, and the outcomes file."""

    by_symbol: list[dict[str, Any]]  # per symbol, then pooled ("all")
    deciles: list[dict[str, Any]]
    performance: tuple[MetricDrift, ...]
    severity: str  # of the performance tests: CRITICAL, WARNING, INFO or "none"
    notes: tuple[str, ...]
    bundle_version: str
    path: Path

    @property
    def pooled(self) -> dict[str, Any]:
        return self.by_symbol[-1]

    def figures(self) -> dict[str, float | int | str]:
        """Plain values: pooled metrics, the severity and its level (plotted across partitions)."""
        level = AlertSeverity[self.severity].value if self.severity != NO_ALERT else 0
        numbers = {k: round(float(v), 6) for k, v in self.pooled.items() if isinstance(v, (int, float)) and k != "symbol"}
        return {**numbers, "performance_severity": self.severity, "performance_level": level,
                "bundle_version": self.bundle_version}


def realize_date(
    load_bundle: Callable[[str], InferencePipeline], ohlcv_dir: Path, predictions_dir: Path, realized_dir: Path,
    day: date, horizons: list[int], *, threshold: float, cost_bps: float, config: DriftConfig,
) -> Iterator[tuple[int, PartitionOutcomes]]:
    """Realized outcomes and performance of each horizon of `day`, with the label parameters
    of the bundle that scored it; each outcomes file written atomically."""
    if day not in realizable(ohlcv_dir, [day]):
        raise OutcomesNotAvailable(
            f"The outcomes of {day} are not available yet: no raw bars after it under {ohlcv_dir}. "
            "They are computed once a later date's bars arrive."
        )
    for horizon in horizons:
        predictions = pl.read_parquet(predictions_file(predictions_dir, day, horizon))
        version = str(predictions["bundle_version"][0])
        pipeline = load_bundle(version)
        outcomes = partition_outcomes(
            predictions, ohlcv_dir, horizon, label_spec=pipeline.metadata.get("label_spec"),
            threshold=threshold, cost_bps=cost_bps,
        )
        monitor = OnlineDriftMonitor.from_bundle(pipeline, horizon, config)
        rows, alerts, notes = performance_drift(
            monitor.reference_stats, outcomes["prediction"].to_numpy(),
            outcomes.select(PROBABILITY_COLUMNS).to_numpy(), outcomes["actual"].cast(pl.Float64).to_numpy(),
            runs_of(group_codes(outcomes["symbol"].to_numpy(), outcomes.height, "symbols"), outcomes.height),
            monitor.config,
        )
        worst = max((alert.severity for alert in alerts), default=None)
        path = write_partition(outcomes, realized_dir, day, horizon)
        yield horizon, PartitionOutcomes(
            by_symbol=metrics_by_symbol(outcomes), deciles=hit_rate_by_confidence(outcomes),
            performance=tuple(rows), severity=worst.name if worst else NO_ALERT, notes=tuple(notes),
            bundle_version=version, path=path,
        )


def realizable(ohlcv_dir: Path, days: list[date]) -> list[date]:
    """The dates of `days` whose outcomes can be computed: a later date has raw bars."""
    available = list_partition_dates(ohlcv_dir)
    last = available[-1] if available else date.min
    return [day for day in days if day < last]


def performance_table(partition: PartitionOutcomes) -> list[dict[str, Any]]:
    """The performance tests as table rows (metric, value, validation figure, bound, p-value, severity)."""
    return [
        {"metric": row.metric, "value": row.value, "validation": row.reference, "bound": row.threshold,
         "test": row.test, "p_value": row.p_value, "n": row.n,
         "severity": row.severity.name if row.severity is not None else ""}
        for row in partition.performance
    ]


def describe(day: date, horizon: int, partition: PartitionOutcomes) -> str:
    """One log line for a realized partition."""
    pooled = partition.pooled
    if not pooled.get("realized"):
        return f"{partition_name(day, horizon)}: {pooled['pending']} rows, all still pending"
    return (
        f"{partition_name(day, horizon)}: accuracy {pooled['accuracy']:.3f}, log-loss {pooled['log_loss']:.4f} "
        f"(prior {pooled['prior_log_loss']:.4f}), {pooled['trades']} trades, return {pooled['total_return']:+.4f}, "
        f"{pooled['pending']} pending, performance {partition.severity}"
    )

