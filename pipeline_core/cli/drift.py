"""`inference-pipeline drift`: score OHLCV data with a bundle and check it for drift."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline_core.cli.help import HelpFormatter, positive_int

if TYPE_CHECKING:
    from pipeline_core.monitoring import DriftReport


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "drift",
        help="score OHLCV data with a bundle and compare features and predictions with its reference",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--bundle", required=True, help="bundle folder (deployment/bundles/pipeline_vN)")
    parser.add_argument("--data", required=True, help="OHLCV parquet/CSV file or date-partitioned folder")
    parser.add_argument("--horizon", type=int, help="the bundle's horizon to check (default: its longest)")
    parser.add_argument("--plot", default=None, help="write a PNG of the most drifted features here")
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="check consecutive batches of N scored rows in time order (default: all rows at once)",
    )
    parser.add_argument("--top-k", type=positive_int, default=6, help="features shown in the plot")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print each batch's alerts and the feature table of the worst batch; 1 on CRITICAL."""
    from pipeline_core.constants import horizon_or_longest
    from pipeline_core.data import validate_ohlcv
    from pipeline_core.errors import InsufficientHistoryError
    from pipeline_core.monitoring import AlertSeverity, OnlineDriftMonitor
    from pipeline_core.pipeline import InferencePipeline

    pipeline = InferencePipeline.load(args.bundle)
    args.horizon = horizon_or_longest(args.horizon, pipeline.config.horizons)
    monitor = OnlineDriftMonitor.from_bundle(pipeline, args.horizon)
    bars = validate_ohlcv(args.data)
    result = pipeline.predict(bars, horizon=args.horizon)
    if result.n_samples < monitor.config.min_batch_size:
        raise InsufficientHistoryError(
            f"{args.data} gives {result.n_samples} scored rows ({result.unscored.height} without enough history): "
            f"drift needs at least {monitor.config.min_batch_size}. Give more bars."
        )
    features = _scored_features(pipeline, bars, result)
    order = np.argsort(result.timestamps, kind="stable")
    size = args.batch_size or max(len(order), 1)
    reports = []
    for number, start in enumerate(range(0, max(len(order), 1), size), start=1):
        rows = order[start : start + size]
        monitor.check(features[rows], predictions=result.predictions[rows], probabilities=result.probabilities[rows])
        report = monitor.last_report
        reports.append(report)
        _print_batch(number, report, result.timestamps[rows] if len(rows) else None)
    worst = max(reports, key=_rank)
    _print_table(worst)
    if args.plot:
        Path(args.plot).write_bytes(worst.plot_png(top_k=args.top_k))
        print(f"wrote {args.plot}")
    return 1 if any(r.severity == AlertSeverity.CRITICAL for r in reports) else 0


def _scored_features(pipeline, bars, result) -> np.ndarray:
    """Unscaled features of the scored rows, in `result` order.

    Uses `result.features` when the pipeline provides it; otherwise recomputes the
    features and joins them to the scored rows on (symbol, timestamp).
    """
    if getattr(result, "features", None) is not None:
        return np.asarray(result.features, dtype=np.float64)
    import polars as pl

    from pipeline_core.features import compute_features

    columns = list(pipeline.config.feature_columns)
    computed = compute_features(bars, pipeline.config.feature_set).with_columns(
        pl.col("timestamp").dt.replace_time_zone(None)
    )
    keys = pl.DataFrame({"timestamp": result.timestamps, "symbol": result.symbols})
    joined = keys.join(computed, on=["timestamp", "symbol"], how="left", maintain_order="left")
    return joined.select(columns).to_numpy().astype(np.float64)


def _rank(report: DriftReport) -> tuple[int, float]:
    return (0 if report.severity is None else report.severity.value, report.drifted_share)


def _print_batch(number: int, report: DriftReport, timestamps) -> None:
    span = "" if timestamps is None else f" {timestamps.min()} .. {timestamps.max()}"
    level = "none" if report.severity is None else report.severity.name
    print(f"batch {number}:{span} {report.batch_size} rows, severity {level}, "
          f"{len(report.drifted_features)}/{len(report.features)} features drifted")
    if report.skipped_reason:
        print(f"  skipped: {report.skipped_reason}")
    for note in report.notes:
        print(f"  note: {note}")
    for alert in report.alerts:
        print(f"  {alert.severity.name}: {alert.message}")


def _print_table(report: DriftReport) -> None:
    if not report.features:
        return
    print(f"\nfeature drift of the worst batch ({report.batch_size} rows):")
    print(report.to_frame().to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    if report.metrics:
        print()
        print(report.metrics_frame().to_string(index=False, float_format=lambda x: f"{x:.4g}"))
