"""`inference-pipeline evaluate`: walk-forward retrain-and-test of a profile against no-skill baselines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline_core.cli.help import HelpFormatter


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="walk-forward (rolling-origin) retrain-and-test of a profile, beside the baselines",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--data", required=True, help="OHLCV parquet/CSV file or date-partitioned folder")
    parser.add_argument("--profile", default="low-latency", help="training profile to evaluate")
    parser.add_argument("--folds", type=int, default=4, help="consecutive test blocks after the initial span")
    parser.add_argument("--horizon", type=int, default=None, help="horizon judged (default: the profile's longest)")
    parser.add_argument("--min-train-frac", type=float, default=0.5, help="share of timestamps before the first block")
    parser.add_argument("--jobs", type=int, default=1, help="folds trained in parallel processes (joblib)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pipeline_core.data import validate_ohlcv
    from pipeline_core.profiles import profile_config
    from pipeline_core.walk_forward import FORECASTS, to_dicts, walk_forward

    config = profile_config(args.profile)
    bars = validate_ohlcv(args.data)
    with tqdm(total=args.folds, unit="fold", desc=f"walk-forward {args.profile}") as bar:
        results = walk_forward(bars, config, args.folds, args.horizon, min_train_frac=args.min_train_frac,
                               progress=lambda _: bar.update(1), jobs=args.jobs)
    header = f"{'fold':>6} {'test window':<45} {'n':>6} " + " ".join(f"{name:>12}" for name in FORECASTS)
    print(f"log-loss (final's 90% CI in brackets); lower is better\n{header}")
    for r in results:
        fold = "pooled" if r.fold < 0 else str(r.fold)
        cells = " ".join(f"{r.metrics[name]['log_loss']:>12.4f}" for name in FORECASTS)
        print(f"{fold:>6} {r.test_start[:19] + '..' + r.test_end[:19]:<45} {r.n:>6} {cells} "
              f"[{r.log_loss_ci[0]:.4f}, {r.log_loss_ci[1]:.4f}]  acc {r.metrics['final']['accuracy']:.3f} "
              f"f1 {r.metrics['final']['macro_f1']:.3f} ece {r.metrics['final']['ece']:.3f}")
    pooled = results[-1].metrics
    beaten = [name for name in FORECASTS[1:] if pooled["final"]["log_loss"] < pooled[name]["log_loss"]]
    print(f"pooled: the final model beats {beaten or 'none'} of the baselines on log-loss")
    if args.json:
        args.json.write_text(json.dumps(to_dicts(results), indent=2))
    return 0
