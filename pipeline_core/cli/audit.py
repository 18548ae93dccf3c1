"""`inference-pipeline audit`: prove a bundle on OHLCV data (lookahead, warm-up, parity)."""

from __future__ import annotations

import argparse

from pipeline_core.cli.help import HelpFormatter


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="check a bundle for lookahead, undeclared history and parity; exit 1 on any failure",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--bundle", required=True, help="bundle folder (deployment/bundles/pipeline_vN)")
    parser.add_argument("--data", required=True, help="OHLCV parquet/CSV file or date-partitioned folder")
    parser.add_argument("--horizon", type=int, help="the bundle's horizon to audit (default: its longest)")
    parser.add_argument("--samples", type=_at_least_two, default=50, help="cut points / warm-up bars checked")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled bars")
    parser.add_argument(
        "--full-prefix",
        action="store_true",
        help="give every lookahead cut run all earlier bars, not just the declared lookback (slower)",
    )
    parser.set_defaults(func=run)


def _at_least_two(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    """Print one line per audit; 0 when all pass, 1 otherwise."""
    from pipeline_core.constants import horizon_or_longest
    from pipeline_core.data import validate_ohlcv
    from pipeline_core.pipeline import InferencePipeline
    from pipeline_core.validation.report import run_audits

    pipeline = InferencePipeline.load(args.bundle)
    args.horizon = horizon_or_longest(args.horizon, pipeline.config.horizons)
    bars = validate_ohlcv(args.data)
    print(
        f"auditing {args.bundle} (horizon {args.horizon}, lookback {pipeline.required_lookback}) on "
        f"{bars.height:,} bars of {bars['symbol'].n_unique()} symbols"
    )
    report = run_audits(
        pipeline, bars, args.horizon, n_samples=args.samples, seed=args.seed, full_prefix=args.full_prefix
    )
    print(report.table())
    print("all audits passed" if report.passed else "AUDIT FAILED")
    return 0 if report.passed else 1
