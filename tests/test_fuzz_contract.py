"""Property-based tests of the data contract: any input validates or raises DataValidationError.

Nothing else escapes `validate_ohlcv` (no polars, pyarrow or pandas error, no crash) for
frames, CSV text or parquet bytes, and valid input scores the same whatever its row order
or column case. Settings: FUZZ examples per property, derandomized, so CI runs the same
examples every time; `HYPOTHESIS_PROFILE=explore` draws new ones.
"""

from __future__ import annotations

import io
import math
import os
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline_core.data import validate_ohlcv
from pipeline_core.errors import DataValidationError

FUZZ = 150
settings.register_profile("ci", max_examples=FUZZ, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("explore", max_examples=FUZZ * 10, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

COLUMNS = ("timestamp", "symbol", "open", "high", "low", "close", "volume")
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from([0.0, -1.0, 1e308, float("nan"), float("inf")]),
)
START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _validates_or_refuses(source) -> pl.DataFrame | None:
    try:
        return validate_ohlcv(source)
    except DataValidationError:
        return None


@st.composite
def frames(draw) -> pl.DataFrame:
    """A valid frame, then up to three mutations: a column dropped, renamed or added, a cell
    set to an odd value, a timestamp repeated or made naive, rows shuffled."""
    n = draw(st.integers(min_value=1, max_value=12))
    close = draw(st.lists(st.floats(min_value=0.5, max_value=500), min_size=n, max_size=n))
    data = {
        "timestamp": [START + timedelta(minutes=i) for i in range(n)],
        "symbol": draw(st.lists(st.sampled_from(["A", "B"]), min_size=n, max_size=n)),
        "open": close, "high": [c * 1.01 for c in close], "low": [c * 0.99 for c in close], "close": close,
        "volume": draw(st.lists(st.floats(min_value=0, max_value=1e6), min_size=n, max_size=n)),
    }
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        kind = draw(st.sampled_from(["drop", "case", "extra", "cell", "repeat", "naive"]))
        name = draw(st.sampled_from(sorted(data)))
        if kind == "drop":
            data.pop(name)
        elif kind == "case":
            data[name.upper()] = data.pop(name)
        elif kind == "extra":
            data["extra"] = [1] * n
        elif kind == "cell" and name not in ("timestamp", "symbol"):
            values = list(data[name])
            values[draw(st.integers(min_value=0, max_value=n - 1))] = draw(NUMBERS)
            data[name] = values
        elif kind == "repeat" and "timestamp" in data and n > 1:
            values = list(data["timestamp"])
            values[-1] = values[0]
            data["timestamp"] = values
        elif kind == "naive" and "timestamp" in data:
            data["timestamp"] = [t.replace(tzinfo=None) for t in data["timestamp"]]
    frame = pl.DataFrame(data, strict=False)
    return frame.sample(fraction=1.0, shuffle=True, seed=draw(st.integers(0, 1000))) if draw(st.booleans()) else frame


@given(frames())
def test_any_frame_validates_or_raises_a_data_validation_error(frame):
    result = _validates_or_refuses(frame)
    if result is not None:  # what passes honours the contract
        assert result.columns == list(COLUMNS)
        prices = result.select("open", "high", "low", "close").to_numpy()
        assert np.isfinite(prices).all() and (prices > 0).all()
        assert result.select(pl.struct("symbol", "timestamp").is_duplicated().any()).item() is False


CSV_TEXT = st.text(alphabet=st.sampled_from(list("0123456789,.-:TZ \n\"abcdeflohvmstuy") + ["\r", "\t", "é"]), max_size=400)


@given(st.one_of(
    CSV_TEXT,
    st.builds(lambda rows: "timestamp,open,high,low,close,volume\n" + rows, CSV_TEXT),
))
def test_any_csv_text_validates_or_raises_a_data_validation_error(tmp_path, text):
    path = tmp_path / "bars.csv"
    path.write_text(text)
    _validates_or_refuses(path)


def _valid_parquet() -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame({
        "timestamp": [START + timedelta(minutes=i) for i in range(5)], "symbol": ["A"] * 5,
        "open": [1.0] * 5, "high": [1.1] * 5, "low": [0.9] * 5, "close": [1.0] * 5, "volume": [1.0] * 5,
    }).write_parquet(buffer)
    return buffer.getvalue()


VALID_PARQUET = _valid_parquet()


@given(st.one_of(
    st.binary(max_size=300),
    st.integers(min_value=0, max_value=len(VALID_PARQUET) - 1).map(lambda cut: VALID_PARQUET[:cut]),
    st.tuples(st.integers(min_value=0, max_value=len(VALID_PARQUET) - 1), st.binary(min_size=1, max_size=8)).map(
        lambda spot: VALID_PARQUET[: spot[0]] + spot[1] + VALID_PARQUET[spot[0] + len(spot[1]):]
    ),
))
def test_any_parquet_bytes_validate_or_raise_a_data_validation_error(tmp_path, content):
    path = tmp_path / "bars.parquet"
    path.write_bytes(content)
    _validates_or_refuses(path)


@settings(max_examples=max(FUZZ // 10, 5))
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), upper=st.lists(st.booleans(), min_size=7, max_size=7))
def test_valid_input_scores_the_same_whatever_its_row_order_or_column_case(tiny_pipeline, tiny_market, seed, upper):
    frame = tiny_market.tail(600)
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=seed)
    renamed = shuffled.rename({c: c.upper() if up else c.title() for c, up in zip(frame.columns, upper, strict=False)})
    expected = tiny_pipeline.predict(frame, horizon=20).to_frame()
    got = tiny_pipeline.predict(renamed, horizon=20).to_frame()
    assert got.equals(expected)
    assert not math.isnan(got["confidence"].sum())


def test_a_corrupt_file_in_a_partitioned_folder_is_a_data_validation_error(tmp_path):
    folder = tmp_path / "ohlcv" / "date=2024-01-01"
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").write_bytes(VALID_PARQUET[:40] + b"\x00" * 20 + VALID_PARQUET[60:])
    with pytest.raises(DataValidationError, match="cannot be read"):
        validate_ohlcv(tmp_path / "ohlcv")
