"""The `inference-pipeline` command: one sub-command per module in this package."""

from __future__ import annotations

import argparse
import importlib
import sys

from pipeline_core.errors import PipelineError

# Each module exposes `register(subparsers)`, which adds its parser and sets `func`.
COMMAND_MODULES = (
    "generate",
    "train",
    "evaluate",
    "predict",
    "audit",
    "drift",
    "bundles",
    "backtest",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inference-pipeline",
        description="Build, score, audit and monitor OHLCV direction-model bundles.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
