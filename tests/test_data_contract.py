from datetime import datetime, timezone

import numpy as np
import pandas as pd
import polars as pl
import pytest

from pipeline_core.data import DEFAULT_SYMBOL, OHLCV_COLUMNS, validate_ohlcv
from pipeline_core.errors import DataValidationError


def _bars(n: int = 5, **overrides) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-02 14:30", periods=n, freq="min", tz="UTC"),
            "open": np.linspace(100, 101, n),
            "high": np.linspace(100.5, 101.5, n),
            "low": np.linspace(99.5, 100.5, n),
            "close": np.linspace(100.2, 101.2, n),
            "volume": np.full(n, 1000.0),
        }
    )
    for column, values in overrides.items():
        frame[column] = values
    return frame


def test_validate_ohlcv_normalizes_case_symbol_and_utc():
    raw = _bars().rename(columns=str.upper)
    raw["TIMESTAMP"] = raw["TIMESTAMP"].dt.tz_convert("America/New_York")
    frame = validate_ohlcv(raw)
    assert frame.columns == list(OHLCV_COLUMNS)
    assert frame.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert frame["symbol"].unique().to_list() == [DEFAULT_SYMBOL]
    assert frame["timestamp"][0] == datetime(2024, 1, 2, 14, 30, tzinfo=timezone.utc)


def test_validate_ohlcv_accepts_timestamp_index_and_integer_volume():
    raw = _bars().set_index("timestamp")
    raw["volume"] = raw["volume"].astype(int)
    frame = validate_ohlcv(raw)
    assert frame.height == 5 and frame.schema["volume"] == pl.Float64


def test_validate_ohlcv_sorts_unsorted_input_by_symbol_then_time():
    raw = pd.concat([_bars().assign(symbol="B"), _bars().assign(symbol="A")]).iloc[::-1]
    frame = validate_ohlcv(raw)
    assert frame["symbol"].to_list() == ["A"] * 5 + ["B"] * 5
    for symbol in ("A", "B"):
        assert frame.filter(pl.col("symbol") == symbol)["timestamp"].is_sorted()


def test_validate_ohlcv_reads_csv_with_unnamed_index_column(tmp_path):
    path = tmp_path / "bars.csv"
    _bars().set_index("timestamp").rename(columns=str.capitalize).to_csv(path, index_label="")
    frame = validate_ohlcv(path)
    assert frame.height == 5
    assert frame["close"][0] == pytest.approx(100.2)


def test_validate_ohlcv_reads_parquet_file_and_partitioned_folder(tmp_path, small_market):
    small_market.write_parquet(tmp_path / "bars.parquet")
    assert validate_ohlcv(tmp_path / "bars.parquet").equals(small_market)
    from pipeline_core.data import write_daily_partitions

    write_daily_partitions(small_market, tmp_path / "dataset")
    assert validate_ohlcv(tmp_path / "dataset").equals(small_market)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_bars().drop(columns=["close"]), r"missing columns \['close'\]"),
        (_bars().rename(columns={"volume": "vol"}), r"missing columns \['volume'\]"),
        (_bars(close=["a", "b", "c", "d", "e"]), r"Column 'close' has type String: expected numbers"),
        (_bars(close=[100.2, np.nan, 100.4, 100.5, 100.6]), r"'close' has NaN, missing or infinite values: 1 rows .*row 1"),
        (_bars(open=[100, np.inf, 100.5, 100.7, 101]), r"'open' has NaN, missing or infinite"),
        (_bars(low=[99.5, 0.0, 99.9, 100.0, 100.1]), r"'low' has non-positive prices.*row 1"),
        (_bars(high=[100.5, 100.0, 101, 101.2, 101.5]), r"'high' is below max\(open, close\).*row 1"),
        (_bars(low=[99.5, 100.9, 100, 100.2, 100.5]), r"'low' is above min\(open, close\)"),
        (_bars(volume=[1.0, -5.0, 1, 1, 1]), r"'volume' has negative values.*row 1"),
        (_bars().iloc[:0], r"OHLCV input is empty"),
    ],
)
def test_validate_ohlcv_rejects_bad_input_naming_the_problem(frame, message):
    with pytest.raises(DataValidationError, match=message):
        validate_ohlcv(frame)


def test_validate_ohlcv_rejects_duplicate_timestamps_naming_symbol_and_rows():
    raw = pd.concat([_bars().assign(symbol="AAA"), _bars(2).assign(symbol="BBB"), _bars(2).assign(symbol="BBB")])
    with pytest.raises(DataValidationError, match=r"duplicate timestamps within a symbol: 4 rows for symbols \['BBB'\]"):
        validate_ohlcv(raw)


def test_validate_ohlcv_same_timestamp_in_two_symbols_is_fine():
    raw = pd.concat([_bars().assign(symbol="AAA"), _bars().assign(symbol="BBB")])
    assert validate_ohlcv(raw).height == 10


def test_validate_ohlcv_rejects_missing_path_and_unknown_suffix(tmp_path):
    with pytest.raises(DataValidationError, match="does not exist"):
        validate_ohlcv(tmp_path / "nope.parquet")
    (tmp_path / "bars.xlsx").write_text("x")
    with pytest.raises(DataValidationError, match=r"bars.xlsx has an unknown type: expected .parquet, .csv, .csv.gz"):
        validate_ohlcv(tmp_path / "bars.xlsx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataValidationError, match="holds no partitions"):
        validate_ohlcv(tmp_path / "empty")


def test_every_entry_point_takes_a_csv_with_an_unnamed_index_column(tmp_path, tiny_pipeline, tiny_market):
    from pipeline_core.batch import BatchInference

    frame = tiny_market.filter(pl.col("symbol") == "SYN01").drop("symbol").to_pandas().set_index("timestamp")
    frame.index.name = None
    frame.to_csv(tmp_path / "bars.csv")  # header: ",open,high,low,close,volume"
    assert (tmp_path / "bars.csv").read_text().startswith(",open")
    whole = validate_ohlcv(tmp_path / "bars.csv")  # train, audit, drift, evaluate
    streamed = BatchInference(tiny_pipeline).process_file(tmp_path / "bars.csv", horizon=20,
                                                          output_path=tmp_path / "p.parquet")  # predict
    assert whole.height == len(frame) and streamed.n_samples > 0


def test_text_past_the_rows_types_are_inferred_from_is_named_by_every_entry_point(tmp_path, tiny_pipeline, tiny_market):
    from pipeline_core.batch import BatchInference
    from pipeline_core.data.files import CSV_INFER_ROWS

    bars = pl.concat([tiny_market] * 5).head(CSV_INFER_ROWS + 100).with_columns(pl.col("close").cast(pl.String))
    late = CSV_INFER_ROWS + 50
    bars.with_columns(close=pl.when(pl.int_range(pl.len()) == late).then(pl.lit("n/a")).otherwise("close")).write_csv(tmp_path / "bars.csv")
    message = r"bars.csv cannot be read \(could not parse `n/a` as dtype `f64` at column 'close'"
    with pytest.raises(DataValidationError, match=message):
        validate_ohlcv(tmp_path / "bars.csv")  # train, audit, drift, evaluate
    with pytest.raises(DataValidationError, match=message):
        BatchInference(tiny_pipeline).process_file(tmp_path / "bars.csv", horizon=20, output_path=tmp_path / "p.parquet")
    assert not (tmp_path / "p.parquet").exists()


def _typed(frame: pd.DataFrame, symbol: str = "AAA") -> pl.DataFrame:
    """`frame` as a polars frame already of the validated schema (the numpy checks take those)."""
    return pl.from_pandas(frame.assign(symbol=symbol)).select(
        pl.col("timestamp").dt.cast_time_unit("us"), "symbol", *(pl.col(c).cast(pl.Float64) for c in OHLCV_COLUMNS[2:])
    )


SMALL_TYPED = {
    "clean": _typed(_bars()),
    "two symbols, sorted": pl.concat([_typed(_bars(), "AAA"), _typed(_bars(), "BBB")]),
    "two symbols, unsorted": pl.concat([_typed(_bars(), "BBB"), _typed(_bars(), "AAA")]),
    "NaN close": _typed(_bars(close=[100.2, np.nan, 100.4, 100.5, 100.6])),
    "infinite open": _typed(_bars(open=[100, np.inf, 100.5, 100.7, 101])),
    "zero low": _typed(_bars(low=[99.5, 0.0, 99.9, 100.0, 100.1])),
    "high below the body": _typed(_bars(high=[100.5, 100.0, 101, 101.2, 101.5])),
    "low above the body": _typed(_bars(low=[99.5, 100.9, 100, 100.2, 100.5])),
    "negative volume": _typed(_bars(volume=[1.0, -5.0, 1, 1, 1])),
    "duplicate timestamp": pl.concat([_typed(_bars(3)), _typed(_bars(2))]).sort("timestamp"),
    "time going backwards": _typed(_bars()).reverse(),
    "missing volume": _typed(_bars()).with_columns(volume=pl.when(pl.int_range(5) == 2).then(None).otherwise("volume")),
}


def _outcome(frame: pl.DataFrame):
    try:
        return validate_ohlcv(frame).to_dicts()
    except DataValidationError as err:
        return str(err)


@pytest.mark.parametrize("case", SMALL_TYPED)
def test_small_typed_frames_checked_in_numpy_give_what_the_polars_path_gives(case, monkeypatch):
    from pipeline_core.data import schema

    frame = SMALL_TYPED[case]
    assert schema._passes_in_numpy(frame) == (case in ("clean", "two symbols, sorted"))
    checked_in_numpy = _outcome(frame)
    monkeypatch.setattr(schema, "NUMPY_CHECK_ROWS", 0)  # every frame takes the polars path
    assert _outcome(frame) == checked_in_numpy
