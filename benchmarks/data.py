"""Input files for the benchmarks: generated OHLCV parquet, cached by size."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import polars as pl

from pipeline_core.data import MarketSpec, generate_market

BARS_PER_DAY = 390
SCORING_START = date(2024, 6, 3)  # after the training window of the bundles
SCORING_SEED = 2024


def market_file(folder: Path, rows: int, symbols: int) -> Path:
    """A parquet file of exactly `rows // symbols` bars for each of `symbols` symbols,
    sorted by symbol then time (as `generate_market` gives it); written once, then reused."""
    per_symbol = rows // symbols
    path = Path(folder) / f"ohlcv_{per_symbol * symbols}rows_{symbols}symbols.parquet"
    if path.is_file():
        return path
    days = -(-per_symbol // BARS_PER_DAY)
    spec = MarketSpec(start=SCORING_START, days=days, symbols=symbols, seed=SCORING_SEED)
    bars = generate_market(spec).group_by("symbol", maintain_order=True).head(per_symbol)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    bars.write_parquet(temporary)
    os.replace(temporary, path)
    return path


def one_symbol(path: Path) -> pl.DataFrame:
    """The bars of the file's first symbol (the latency benchmark scores one symbol)."""
    frame = pl.scan_parquet(path)
    first = frame.select(pl.col("symbol").first()).collect().item()
    return frame.filter(pl.col("symbol") == first).collect()
