"""The evaluation table of every profile on every real OHLCV file, as markdown.

    python scripts/fetch_real_data.py
    python -m benchmarks.real_data_eval --out docs/real-data-evaluation.md

Per file, profile and horizon: the baselines, each model raw and calibrated, the best
single calibrated model and the final model, with test-window log-loss (and its 90%
block-bootstrap interval where the code records one), accuracy, macro-F1 and ECE, and the
skill verdict. Works on evaluation tables of earlier versions too (fewer rows and columns).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import polars as pl

from pipeline_core.errors import PipelineError
from pipeline_core.training import train_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from fetch_real_data import SOURCES, cache_dir  # noqa: E402

PROFILES = ("low-latency", "max-accuracy", "multi-horizon")


def evaluate(file: Path, profile: str) -> tuple[dict | None, str, float]:
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            evaluation = train_pipeline(pl.read_parquet(file), profile).evaluation
    except PipelineError as err:
        return None, str(err), time.perf_counter() - started
    return evaluation, "", time.perf_counter() - started


def table(evaluation: dict) -> list[str]:
    lines = ["| h | model | stage | calibration | log-loss | 90% CI | accuracy | macro-F1 | ECE |",
             "|---|---|---|---|---|---|---|---|---|"]
    rows = [r for r in evaluation["table"] if r.get("symbol", "all") == "all"]
    for horizon in sorted({r["horizon"] for r in rows}):
        mine = [r for r in rows if r["horizon"] == horizon]
        calibrated = [r for r in mine if r["stage"] == "calibrated"]
        best = min(calibrated, key=lambda r: r["log_loss"]) if calibrated else None
        for row in mine:
            lines.append(_line(row))
        if best:
            lines.append(_line({**best, "stage": "best single"}))
    return lines


def _line(row: dict) -> str:
    ci = row.get("log_loss_ci")
    interval = f"{ci[0]:.4f}..{ci[1]:.4f}" if ci else ""
    return (f"| {row['horizon']} | {row['model']} | {row['stage']} | {row.get('calibration', '')} | "
            f"{row['log_loss']:.4f} | {interval} | {row['accuracy']:.3f} | {row['macro_f1']:.3f} | {row['ece']:.3f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profiles", nargs="+", default=list(PROFILES), choices=PROFILES)
    parser.add_argument("--files", nargs="+", default=[s.file for s in SOURCES], help="cached file names")
    parser.add_argument("--out", type=Path, help="markdown file to write (default: print)")
    args = parser.parse_args(argv)
    out = []
    for name in args.files:
        for profile in args.profiles:
            evaluation, error, seconds = evaluate(cache_dir() / name, profile)
            out.append(f"### {name}, {profile} ({seconds:.0f} s)\n")
            if evaluation is None:
                out.append(f"Refused: {error}\n")
                continue
            out.extend(table(evaluation))
            skill = evaluation.get("skill")
            out.append("")
            out.append(f"Skill gate: {'deployable' if skill['deployable'] else 'NOT deployable'}: {skill['reason']}\n"
                       if skill else "Skill gate: none (this version deploys every bundle)\n")
            print(f"{name} {profile}: {seconds:.0f} s", file=sys.stderr)
    text = "\n".join(out) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
