"""Backtest reports: a calendar month of scored partitions against what happened.

`backtest_report` is partitioned by month and depends on the month's `realized_performance`
partitions (every date x horizon of the month). For each horizon with predictions in the
month it builds `pipeline_core.backtest`'s report (equity after costs, rolling accuracy and
log-loss against the prior, reliability, per-date, per-month and per-symbol tables),
writes it under `<data root>/backtests/<YYYY-MM>/h<H>/` and records its headline figures
per horizon. A month partition is one time dimension, so those figures plot over months in
the UI's *Plots* tab, however far back the backtest period lies.
"""

from datetime import date, timedelta

import dagster as dg
import polars as pl

from pipeline_core.backtest import BacktestReport, backtest_report as build_report
from pipeline_core.backtest_files import equity_png, reliability_png, report_markdown, rolling_png, write_backtest
from pipeline_core.constants import HORIZONS
from pipeline_core.monitoring.partitions import predictions_file

from inference_assets import markdown
from inference_assets.defs.partitions import month_partitions
from inference_assets.defs.realized_assets import realized_performance
from inference_assets.defs.resources import BundleStoreResource, DataLakeResource, StrategyResource

HEADLINE = ("accuracy", "log_loss", "prior_log_loss", "trades", "total_return")


@dg.asset(
    partitions_def=month_partitions,
    deps=[realized_performance],
    code_version="1",
    group_name="monitoring",
    kinds={"polars", "matplotlib"},
)
def backtest_report(
    context: dg.AssetExecutionContext, data_lake: DataLakeResource, bundles: BundleStoreResource,
    strategy: StrategyResource,
) -> dg.MaterializeResult:
    """Per horizon: equity after costs, rolling accuracy and log-loss vs the prior, reliability, monthly and per-symbol tables."""
    window = context.partition_time_window
    days = [window.start.date() + timedelta(days=i) for i in range((window.end - window.start).days)]
    metadata, written = {}, 0
    for horizon in HORIZONS:
        predictions = _predictions(data_lake, days, horizon)
        if predictions is None:
            continue
        label_spec = bundles.store().manifest(predictions["bundle_version"][0]).label_spec
        report = build_report(
            predictions, data_lake.ohlcv_dir, horizon, label_spec=label_spec,
            threshold=strategy.threshold, cost_bps=strategy.cost_bps,
        )
        folder = write_backtest(report, data_lake.backtests_dir / context.partition_key[:7] / f"h{horizon}")
        summary = report.summary
        context.log.info(
            f"{context.partition_key[:7]} h{horizon}: {summary['realized']} realized, accuracy "
            f"{summary.get('accuracy', float('nan')):.3f}, {summary.get('trades', 0)} trades, return "
            f"{summary.get('total_return', float('nan')):+.4f} -> {folder}"
        )
        metadata.update(_figures(report, horizon, folder))
        written += 1
    if not written:
        raise dg.Failure(f"No scored partition in {context.partition_key[:7]}: backfill scored_predictions for it first.")
    return dg.MaterializeResult(metadata=metadata)


def _predictions(data_lake: DataLakeResource, days: list[date], horizon: int) -> pl.DataFrame | None:
    files = [predictions_file(data_lake.predictions_dir, day, horizon) for day in days]
    present = [file for file in files if file.is_file()]
    return pl.read_parquet(present) if present else None


def _number(value) -> int | float:
    return value if isinstance(value, int) else round(float(value), 6)


def _figures(report: BacktestReport, horizon: int, folder) -> dict:
    """Headline numbers per horizon (plotted over months), the equity, rolling and reliability plots, the report."""
    summary = report.summary
    plots = "\n\n".join(
        markdown.png_image(draw(report), f"{name} h{horizon}")
        for name, draw in (("equity", equity_png), ("rolling", rolling_png), ("reliability", reliability_png))
    )
    return {
        **{f"{name}_h{horizon}": _number(summary[name]) for name in HEADLINE if name in summary},
        f"plots_h{horizon}": dg.MetadataValue.md(plots),
        f"report_h{horizon}": dg.MetadataValue.md(report_markdown(report)),
        f"path_h{horizon}": dg.MetadataValue.path(str(folder)),
    }
