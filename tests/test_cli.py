"""The `inference-pipeline` command end to end, on a tiny market, in-process."""

import argparse
import subprocess
import sys
from datetime import date

import polars as pl
import pytest

from pipeline_core.cli import build_parser, main
from pipeline_core.data import MarketSpec, generate_market, list_partition_dates


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for command in ("generate", "train", "predict", "audit", "drift", "bundles"):
        assert command in out


def test_generate_writes_a_partitioned_market(tmp_path, capsys):
    assert main(["generate", "--start", "2024-01-01", "--days", "3", "--symbols", "2", "--out", str(tmp_path / "ohlcv")]) == 0
    assert list_partition_dates(tmp_path / "ohlcv") == [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)]
    assert "wrote 2,340 bars of 2 symbols in 3 daily partitions" in capsys.readouterr().out


def test_train_predict_bundles_and_drift_commands(tmp_path, capsys):
    raw = tmp_path / "ohlcv"
    assert main(["generate", "--days", "8", "--symbols", "3", "--bars-per-day", "390", "--out", str(raw)]) == 0
    deployment = tmp_path / "deployment"
    code = main(["train", "--data", str(raw), "--profile", "multi-horizon", "--horizons", "20",
                 "--out", str(deployment / "pipeline_v1")])
    out = capsys.readouterr().out
    assert code == 0 and "class prior" in out and "xgboost" in out and "saved" in out

    bars = tmp_path / "bars.parquet"
    generate_market(MarketSpec(start=date(2024, 2, 1), days=2, symbols=2, bars_per_day=240, seed=3)).write_parquet(bars)
    output = tmp_path / "predictions.parquet"
    assert main(["predict", "--bundle", str(deployment / "pipeline_v1"), "--input", str(bars),
                 "--horizon", "20", "--output", str(output)]) == 0
    assert "rows/s" in capsys.readouterr().out
    assert pl.read_parquet(output).height == 2 * 240 * 2 - 2 * 60  # all bars but each symbol's lookback

    assert main(["bundles", "--root", str(deployment), "promote", "v1"]) == 0
    assert main(["bundles", "--root", str(deployment), "list"]) == 0
    listing = capsys.readouterr().out
    assert "* pipeline_v1" in listing and "xgboost,lightgbm" in listing

    drifted = tmp_path / "drifted.parquet"
    spec = MarketSpec(start=date(2024, 2, 1), days=2, symbols=2, bars_per_day=240, seed=3, drift_start=date(2024, 2, 1))
    generate_market(spec).write_parquet(drifted)
    plot = tmp_path / "drift.png"
    code = main(["drift", "--bundle", str(deployment / "pipeline_v1"), "--data", str(drifted), "--horizon", "20",
                 "--plot", str(plot)])
    out = capsys.readouterr().out
    assert code == 1 and "CRITICAL" in out and "rvol_60" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_are_reported_without_a_traceback(tmp_path, capsys):
    code = main(["predict", "--bundle", str(tmp_path), "--input", "x.parquet", "--horizon", "20", "--output", "y.parquet"])
    assert code == 2
    assert "error: " in (err := capsys.readouterr().err) and "manifest.json is missing" in err


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                yield from ((f"{name} {n}", s) for n, s in _subparsers(sub))


def test_every_option_has_help_and_a_real_default_or_says_required():
    for name, parser in _subparsers(build_parser()):
        text = parser.format_help()
        assert "(default: None)" not in text and "(default: )" not in text, name
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings} has no help"
                if action.required:
                    assert "(required)" in parser._get_formatter()._get_help_string(action), name


def test_help_imports_no_heavy_library():
    """`--help` of every command stays fast because building the parser imports none of them."""
    code = (
        "import sys; from pipeline_core.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('polars', 'pandas', 'pyarrow', 'torch', 'sklearn', 'xgboost', 'tqdm', 'dagster') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
