"""`inference-pipeline generate`: write a synthetic market as a date-partitioned dataset."""

from __future__ import annotations

import argparse
from datetime import date

from pipeline_core.data import MarketSpec, generate_market, write_daily_partitions


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write a deterministic synthetic market (minute bars) to DIR/date=YYYY-MM-DD/",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--start", type=date.fromisoformat, default=MarketSpec.start)
    parser.add_argument("--days", type=int, default=MarketSpec.days)
    parser.add_argument("--symbols", type=int, default=MarketSpec.symbols)
    parser.add_argument("--bars-per-day", type=int, default=MarketSpec.bars_per_day)
    parser.add_argument("--seed", type=int, default=MarketSpec.seed)
    parser.add_argument(
        "--drift-start",
        type=date.fromisoformat,
        default=None,
        help="inject drift from this date on (volatility up, momentum reversed)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    spec = MarketSpec(
        start=args.start,
        days=args.days,
        symbols=args.symbols,
        bars_per_day=args.bars_per_day,
        seed=args.seed,
        drift_start=args.drift_start,
    )
    bars = generate_market(spec)
    paths = write_daily_partitions(bars, args.out)
    print(f"wrote {bars.height:,} bars of {spec.symbols} symbols in {len(paths)} daily partitions to {args.out}")
    return 0
