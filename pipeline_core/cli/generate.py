"""`inference-pipeline generate`: write a synthetic market as a date-partitioned dataset."""

from __future__ import annotations

import argparse
from datetime import date

from pipeline_core.cli.help import HelpFormatter
from pipeline_core.data.synthetic import MarketSpec  # numpy only; the rest is imported by run


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write a deterministic synthetic market (minute bars) to DIR/date=YYYY-MM-DD/",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--start", type=date.fromisoformat, default=MarketSpec.start, help="first date (YYYY-MM-DD)")
    parser.add_argument("--days", type=int, default=MarketSpec.days, help="calendar days of bars")
    parser.add_argument("--symbols", type=int, default=MarketSpec.symbols, help="number of symbols (SYN01, SYN02, ...)")
    parser.add_argument("--bars-per-day", type=int, default=MarketSpec.bars_per_day, help="one-minute bars per session")
    parser.add_argument("--seed", type=int, default=MarketSpec.seed, help="random seed: the same seed gives the same bars")
    parser.add_argument(
        "--drift-start",
        type=date.fromisoformat,
        default=None,
        help="inject drift from this date on (volatility up, momentum reversed)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline_core.data import generate_market, write_daily_partitions

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
