"""`inference-pipeline train`: raw OHLCV -> a saved bundle, with an evaluation table."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from typing import TYPE_CHECKING

from pipeline_core.cli.help import HelpFormatter
from pipeline_core.profiles import PROFILES, profile_config
from pipeline_core.skill import EXIT_NO_SKILL, format_verdict

if TYPE_CHECKING:
    from tqdm import tqdm

ENSEMBLE_CHOICES = ("profile", "auto", "stacking", "voting", "single")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a profile on OHLCV data and save the bundle",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--data", required=True, help="parquet/CSV file or date-partitioned folder")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="max-accuracy", help="models, horizons and ensemble")
    parser.add_argument("--horizons", type=int, nargs="+", help="override the profile's horizons")
    parser.add_argument(
        "--until", type=date.fromisoformat,
        help="train on the bars up to this date (YYYY-MM-DD) only, e.g. to backtest the dates after it",
    )
    parser.add_argument("--out", required=True, help="new bundle folder to write, e.g. deployment/bundles/pipeline_v1")
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace the bundle already at --out (never the live one: promotion is the only way to change LIVE)",
    )
    parser.add_argument(
        "--ensemble", choices=ENSEMBLE_CHOICES, default="profile",
        help="final combination: the profile's, the best by cross-validation (auto), or a named one",
    )
    parser.add_argument(
        "--allow-no-skill", action="store_true",
        help=f"exit 0 even when the bundle is no better than the class prior (otherwise exit {EXIT_NO_SKILL}; "
        "the bundle is written either way, marked not deployable)",
    )
    parser.add_argument(
        "--allow-mixed-intervals", action="store_true",
        help="train even when symbols have different bar intervals (e.g. hourly and daily)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import polars as pl
    from tqdm import tqdm

    from pipeline_core.bundle import check_bundle_target
    from pipeline_core.data import validate_ohlcv
    from pipeline_core.errors import DataValidationError
    from pipeline_core.evaluation import format_table
    from pipeline_core.training import TrainOptions, train_pipeline

    check_bundle_target(args.out, overwrite=args.overwrite)  # before hours of training, not after

    overrides = {"horizons": args.horizons} if args.horizons else {}
    if args.ensemble not in ("profile", "auto"):
        overrides.update(ensemble_method=args.ensemble, use_ensemble=True)
    config = profile_config(args.profile, **overrides)
    options = TrainOptions(auto_ensemble=args.ensemble == "auto", allow_mixed_intervals=args.allow_mixed_intervals)
    bars = validate_ohlcv(args.data)
    if args.until:
        bars = bars.filter(pl.col("timestamp").dt.date() <= args.until)
        if bars.height == 0:
            raise DataValidationError(f"{args.data} has no bars up to {args.until}: nothing to train on.")
    print(f"training {args.profile} ({', '.join(config.model_names)}) on {bars.height:,} bars, horizons {config.horizons}")
    started = time.perf_counter()
    with tqdm(total=len(config.model_names) * len(config.horizons), unit="model") as bar:
        stepper = _Stepper(bar)
        pipeline = train_pipeline(bars, config, options, progress=stepper)
        stepper.finish()
    pipeline.save(args.out)
    print(format_table(pipeline.evaluation))
    print(format_verdict(pipeline.evaluation["skill"]))
    print(f"saved {args.out} in {time.perf_counter() - started:.1f}s")
    if not pipeline.evaluation["skill"]["deployable"] and not args.allow_no_skill:
        print(f"error: {args.out} is marked not deployable (pass --allow-no-skill to exit 0)", file=sys.stderr)
        return EXIT_NO_SKILL
    return 0


class _Stepper:
    """Progress callback: each call names the model now being fitted."""

    def __init__(self, bar: tqdm) -> None:
        self.bar = bar
        self.started = False

    def __call__(self, step: str) -> None:
        if self.started:
            self.bar.update(1)
        self.started = True
        self.bar.set_description(step)

    def finish(self) -> None:
        self.bar.update(1)
        self.bar.set_description("calibrated, ensembled, evaluated")
