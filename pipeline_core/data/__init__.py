"""OHLCV data: the validated contract, a synthetic market, partitioned parquet I/O."""

from pipeline_core.data.intervals import bar_intervals, check_bar_intervals
from pipeline_core.data.io import (
    list_partition_dates,
    partition_dir,
    read_bars,
    require_dates,
    write_daily_partitions,
    write_partition,
)
from pipeline_core.data.schema import DEFAULT_SYMBOL, OHLCV_COLUMNS, validate_ohlcv
from pipeline_core.data.synthetic import MarketSpec, generate_market

__all__ = [
    "DEFAULT_SYMBOL",
    "OHLCV_COLUMNS",
    "MarketSpec",
    "bar_intervals",
    "check_bar_intervals",
    "generate_market",
    "list_partition_dates",
    "partition_dir",
    "read_bars",
    "require_dates",
    "validate_ohlcv",
    "write_daily_partitions",
    "write_partition",
]
