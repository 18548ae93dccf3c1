"""Drift of one scored date for several horizons, and where its reports are kept.

Used by the Dagster `prediction_drift` asset. A (date, horizon) partition is judged against
the reference statistics of the bundle that scored it (the `bundle_version` column of its
predictions), not whatever bundle is live now:

    <data root>/drift/horizon=H/date=D/report.json   the report as JSON, replaced atomically
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from pipeline_core.constants import PROBABILITY_COLUMNS
from pipeline_core.atomic import atomic_write_text
from pipeline_core.batch import partition_bars
from pipeline_core.data.io import PART_FILE, partition_dir
from pipeline_core.errors import DataValidationError
from pipeline_core.monitoring.config import DriftConfig
from pipeline_core.monitoring.drift_detector import OnlineDriftMonitor
from pipeline_core.monitoring.report import DriftReport
from pipeline_core.pipeline import InferencePipeline

REPORT_FILE = "report.json"
NO_ALERT = "none"


@dataclass(frozen=True)
class ScoredRows:
    """Unscaled features of the rows a bundle scores on one date, in scoring order."""

    features: np.ndarray
    timestamps: np.ndarray  # datetime64[us], UTC
    symbols: np.ndarray


@dataclass(frozen=True)
class PartitionDrift:
    """The drift report of one partition, the bundle it was judged with, and its JSON file."""

    report: DriftReport
    bundle_version: str
    path: Path

    @property
    def severity(self) -> str:
        """CRITICAL, WARNING, INFO, or "none" without alerts."""
        return self.report.severity.name if self.report.severity else NO_ALERT

    def figures(self) -> dict[str, float | int | str]:
        """Severity, its level (0-3, plotted across partitions), drifted features and rows."""
        report = self.report
        return {
            "severity": self.severity,
            "severity_level": report.severity.value if report.severity else 0,
            "drifted_features": len(report.drifted_features),
            "features_checked": len(report.features),
            "drifted_share": round(float(report.drifted_share), 6),
            "rows": report.batch_size,
            "bundle_version": self.bundle_version,
        }


def partition_name(day: date, horizon: int) -> str:
    """`date|horizon`, as the partition is named in messages and reports."""
    return f"{day.isoformat()}|{horizon}"


def predictions_file(predictions_dir: Path, day: date, horizon: int) -> Path:
    return partition_dir(predictions_dir, day, horizon) / PART_FILE


def report_file(drift_dir: Path, day: date, horizon: int) -> Path:
    return partition_dir(drift_dir, day, horizon) / REPORT_FILE


def require_predictions(predictions_dir: Path, partitions: list[tuple[date, int]]) -> None:
    """DataValidationError naming every (date, horizon) partition without a predictions file."""
    missing = [p for p in sorted(partitions) if not predictions_file(predictions_dir, *p).is_file()]
    if missing:
        shown = ", ".join(partition_name(*p) for p in missing[:5])
        raise DataValidationError(
            f"No predictions for {len(missing)} partition(s): {shown}. Expected "
            f"{predictions_dir}/horizon=H/date=D/{PART_FILE}; materialize scored_predictions for "
            "them first. No drift report was written."
        )


def judge_date(
    load_bundle: Callable[[str], InferencePipeline],
    ohlcv_dir: Path,
    predictions_dir: Path,
    drift_dir: Path,
    day: date,
    horizons: list[int],
    config: DriftConfig,
) -> Iterator[tuple[int, PartitionDrift]]:
    """Judge each horizon of `day` with the bundle that scored it; write each report as JSON."""
    scored = {h: pl.read_parquet(predictions_file(predictions_dir, day, h)) for h in horizons}
    horizons_by_version: dict[str, list[int]] = defaultdict(list)
    for horizon, frame in scored.items():
        horizons_by_version[_bundle_version(frame, day, horizon)].append(horizon)
    for version, version_horizons in horizons_by_version.items():
        pipeline = load_bundle(version)
        rows = scored_rows(pipeline, ohlcv_dir, day)  # features once for all horizons of this bundle
        for horizon in version_horizons:
            report = evaluate_partition(pipeline, rows, scored[horizon], day, horizon, config)
            path = save_report(report, report_file(drift_dir, day, horizon), day, horizon, version)
            yield horizon, PartitionDrift(report, version, path)


def scored_rows(pipeline: InferencePipeline, ohlcv_dir: Path, day: date) -> ScoredRows:
    """The features `pipeline` computes for the rows of `day` it scores (from the bars plus lookback)."""
    inputs = pipeline.model_inputs(partition_bars(pipeline, ohlcv_dir, day), check_input=False)
    timestamps = np.asarray(inputs.timestamps).astype("datetime64[us]")
    keep = timestamps.astype("datetime64[D]") == np.datetime64(day)
    return ScoredRows(np.asarray(inputs.features)[keep], timestamps[keep], np.asarray(inputs.symbols)[keep])


def evaluate_partition(
    pipeline: InferencePipeline, rows: ScoredRows, scored: pl.DataFrame, day: date, horizon: int,
    config: DriftConfig,
) -> DriftReport:
    """Features, predicted classes and probabilities of one partition against the bundle's reference.

    Rows are grouped by symbol (each symbol's rows in time order), so the tests count
    serially dependent bars by their effective number. Labels are not passed: they need
    bars after the partition.
    """
    _require_same_rows(rows, scored, partition_name(day, horizon))
    monitor = OnlineDriftMonitor.from_bundle(pipeline, horizon, config)
    return monitor.evaluate(
        rows.features,
        predictions=scored["prediction"].to_numpy(),
        probabilities=scored.select(list(PROBABILITY_COLUMNS)).to_numpy(),
        groups=rows.symbols,
    )


def save_report(report: DriftReport, path: Path, day: date, horizon: int, bundle_version: str) -> Path:
    """The report as JSON (no pickle), written atomically."""
    payload = {
        "partition": partition_name(day, horizon),
        "bundle_version": bundle_version,
        "evaluated_at": datetime.now(timezone.utc).isoformat(),
        "report": report.to_dict(),
    }
    return atomic_write_text(path, json.dumps(payload, indent=1, default=_json_default))


def _bundle_version(frame: pl.DataFrame, day: date, horizon: int) -> str:
    versions = frame["bundle_version"].unique().to_list() if "bundle_version" in frame.columns else []
    if len(versions) != 1 or not versions[0]:
        raise DataValidationError(
            f"The predictions of {partition_name(day, horizon)} name {len(versions)} bundle versions "
            f"{sorted(map(str, versions))[:5]}; expected exactly one. Re-score the partition."
        )
    return versions[0]


def _require_same_rows(rows: ScoredRows, scored: pl.DataFrame, name: str) -> None:
    """The predictions file holds exactly the rows the bundle scores from today's bars, in order."""
    timestamps = scored["timestamp"].dt.replace_time_zone(None).to_numpy().astype("datetime64[us]")
    same = (
        len(timestamps) == len(rows.timestamps)
        and np.array_equal(timestamps, rows.timestamps)
        and np.array_equal(scored["symbol"].to_numpy().astype(str), rows.symbols.astype(str))
    )
    if not same:
        raise DataValidationError(
            f"The predictions of {name} ({scored.height} rows) do not line up with the "
            f"{len(rows.timestamps)} rows its bundle scores from the raw bars of that date: the bars "
            "changed after scoring. Re-score the partition, then judge its drift."
        )


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
