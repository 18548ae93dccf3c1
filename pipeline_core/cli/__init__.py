"""The `inference-pipeline` command: one sub-command per module in this package.

Exit codes: 0 done; 1 a check failed (audit, CRITICAL drift); 2 bad input or a refused
operation (the project's own errors); 3 a trained bundle has no skill; 4 the system refused
a read or write (permissions, a full disk). Errors are one `error:` line; `--debug` shows
the traceback instead.
"""

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
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


EXIT_INPUT, EXIT_SYSTEM = 2, 4


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PipelineError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as err:
        if args.debug:
            raise
        where = f" {err.filename}" if err.filename else ""
        print(f"error: cannot write or read{where}: {err.strerror or err}. Nothing was changed.", file=sys.stderr)
        return EXIT_SYSTEM


if __name__ == "__main__":
    sys.exit(main())
