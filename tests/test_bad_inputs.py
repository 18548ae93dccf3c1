"""Bad input files end in one clear line and exit code 2, on every command, with nothing written."""

from __future__ import annotations

import gzip
import re
from datetime import date

import polars as pl
import pytest

from pipeline_core.cli import main
from pipeline_core.data import MarketSpec, generate_market

ROWS = 200


def _bars() -> pl.DataFrame:
    bars = generate_market(MarketSpec(start=date(2024, 2, 1), days=1, symbols=1, bars_per_day=ROWS, seed=1))
    return bars.drop("symbol").with_columns(pl.col("timestamp").dt.replace_time_zone(None).cast(pl.String))


def _write(kind: str, folder) -> str:
    parquet = kind in ("one row", "truncated parquet")
    path = folder / ("bars.parquet" if parquet else "bars.csv")
    bars = _bars()
    if kind == "empty csv":
        path.write_text("")
    elif kind == "text after row 100":
        bars.with_columns(pl.col("close").cast(pl.String)).with_columns(
            close=pl.when(pl.int_range(pl.len()) == 150).then(pl.lit("n/a")).otherwise(pl.col("close"))
        ).write_csv(path)
    elif kind == "naive and offset times":
        bars.with_columns(
            timestamp=pl.when(pl.int_range(pl.len()) > 100).then(pl.col("timestamp") + "+00:00").otherwise(pl.col("timestamp"))
        ).write_csv(path)
    elif kind == "gzip named csv":
        path.write_bytes(gzip.compress(bars.write_csv().encode()))
    elif kind == "truncated parquet":
        generate_market(MarketSpec(start=date(2024, 2, 1), days=1, symbols=1, bars_per_day=ROWS, seed=1)).write_parquet(path)
        path.write_bytes(path.read_bytes()[:-200])
    elif kind == "one row":
        generate_market(MarketSpec(start=date(2024, 2, 1), days=1, symbols=1, bars_per_day=ROWS, seed=1)).head(1).write_parquet(path)
    return str(path)


CASES = {  # input -> the start of the message every command gives
    "empty csv": r"(OHLCV|Input) file .* (is empty|cannot be read)",
    "text after row 100": r"Column 'close' has (type String|NaN, missing or infinite values: 1 rows.*row 150)",
    "naive and offset times": r"Column 'timestamp' is not in one parseable format: rows \[101",
    "gzip named csv": r"cannot be read",
    "truncated parquet": r"file .*bars.parquet cannot be read",
}


# polars reads gzip whatever the file is named, so train and drift accept gzip bytes named .csv.
COMMAND_CASES = [
    (command, kind) for command in ("train", "predict", "drift") for kind in sorted(CASES)
    if not (kind == "gzip named csv" and command != "predict")
]


@pytest.mark.parametrize(("command", "kind"), COMMAND_CASES)
def test_bad_inputs_give_one_clear_line_and_write_nothing(kind, command, tiny_bundle, tmp_path, capsys):
    source = tmp_path / "in"
    source.mkdir()
    data = _write(kind, source)
    out = tmp_path / "out"
    argv = {
        "train": ["train", "--data", data, "--profile", "low-latency", "--out", str(out / "pipeline_v1")],
        "predict": ["predict", "--bundle", str(tiny_bundle), "--input", data, "--output", str(out / "p.parquet")],
        "drift": ["drift", "--bundle", str(tiny_bundle), "--data", data, "--horizon", "20"],
    }[command]
    code = main(argv)
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # after predict's progress bar
    assert code == 2 and last.startswith("error: ") and "Traceback" not in err
    assert re.search(CASES[kind], last), last
    assert not out.exists() and sorted(p.name for p in source.iterdir()) == [data.rsplit("/", 1)[1]]


def test_drift_on_too_few_rows_fails_instead_of_skipping(tiny_bundle, tmp_path, capsys):
    data = _write("one row", tmp_path)
    assert main(["drift", "--bundle", str(tiny_bundle), "--data", data, "--horizon", "20"]) == 2
    assert "drift needs at least" in capsys.readouterr().err


def test_chunk_rows_must_be_positive(tiny_bundle, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--bundle", str(tiny_bundle), "--input", "x.csv", "--output", "p.parquet", "--chunk-rows", "0"])
    assert exit_info.value.code == 2
