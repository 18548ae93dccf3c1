"""`inference-pipeline backtest`: score a period with a bundle and judge it against what happened."""

from __future__ import annotations

import argparse
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from pipeline_core.cli.help import HelpFormatter, non_negative_float, unit_float


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "backtest",
        help="score the dates START..END with a bundle and compare with the realized labels and a simple "
        "strategy after costs: report.md, metrics.json, trades.parquet and figures in OUT",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--bundle", required=True, help="bundle folder (deployment/bundles/pipeline_vN)")
    parser.add_argument("--data", required=True, help="folder of raw date=YYYY-MM-DD OHLCV partitions")
    parser.add_argument("--start", required=True, type=date.fromisoformat, help="first scored date (YYYY-MM-DD)")
    parser.add_argument("--end", required=True, type=date.fromisoformat, help="last scored date (YYYY-MM-DD)")
    parser.add_argument("--horizon", type=int, help="the bundle's horizon to backtest (default: its longest)")
    parser.add_argument(
        "--out", required=True, type=Path,
        help="report folder: new, empty, or an earlier backtest's (replaced as a whole)",
    )
    parser.add_argument(
        "--cost-bps", type=non_negative_float, default=1.0,
        help="cost of one trade in basis points of notional, for the round trip (entry and exit)",
    )
    parser.add_argument(
        "--threshold", type=unit_float, default=0.5,
        help="trade a predicted +1 / -1 only when its confidence is at least this",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Score, realize, write the report folder, print the headline figures."""
    import polars as pl
    from tqdm import tqdm

    from pipeline_core.backtest import backtest_report
    from pipeline_core.backtest_files import check_output_folder, write_backtest
    from pipeline_core.batch import day_predictions
    from pipeline_core.constants import horizon_or_longest
    from pipeline_core.data import require_dates
    from pipeline_core.errors import ConfigError, InsufficientHistoryError
    from pipeline_core.pipeline import InferencePipeline

    if args.start > args.end:
        raise ConfigError(f"--start {args.start} is after --end {args.end}: give start <= end.")
    check_output_folder(args.out)
    days = [args.start + timedelta(days=i) for i in range((args.end - args.start).days + 1)]
    require_dates(args.data, days)
    pipeline = InferencePipeline.load(args.bundle)
    horizon = horizon_or_longest(args.horizon, pipeline.config.horizons)
    frames, unscored = [], 0
    for day in tqdm(days, unit="date", desc=f"scoring h={horizon}"):
        frame, missing = day_predictions(pipeline, args.data, day, horizon)
        frames.append(frame)
        unscored += missing
    predictions = pl.concat(frames)
    if predictions.is_empty():
        raise InsufficientHistoryError(
            f"No bar of {args.start}..{args.end} could be scored: all {unscored} lack the "
            f"{pipeline.required_lookback} bars of history the bundle needs. Start later or load earlier dates."
        )
    report = backtest_report(
        predictions, args.data, horizon, label_spec=pipeline.metadata.get("label_spec"),
        threshold=args.threshold, cost_bps=args.cost_bps,
    )
    if unscored:
        note = f"{unscored} bars of the period were not scored: fewer than {pipeline.required_lookback} bars before them."
        report = replace(report, notes=(note,))
    write_backtest(report, args.out)
    _print_summary(report.summary, args.out)
    return 0


def _print_summary(summary: dict, out: Path) -> None:
    print(f"{summary['rows']:,} predictions: {summary['realized']:,} realized, {summary['pending']:,} pending")
    if summary["realized"]:
        print(f"log-loss {summary['log_loss']:.4f} (prior {summary['prior_log_loss']:.4f}), "
              f"accuracy {summary['accuracy']:.4f}")
        print(f"{summary['trades']:,} trades: hit rate {summary['hit_rate']:.3f}, mean "
              f"{summary['mean_return_bps']:.2f} bps, total {summary['total_return']:+.4f} after costs")
    print(f"wrote {out}")
