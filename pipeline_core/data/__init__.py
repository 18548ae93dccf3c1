"""OHLCV data: the validated contract, a synthetic market, partitioned parquet I/O.

Each name is imported from its module on first use (PEP 562), so what needs only
`MarketSpec` (the `generate --help` defaults) does not import polars and pandas.
"""

import importlib

_HOMES = {
    "DEFAULT_SYMBOL": "schema",
    "MarketSpec": "synthetic",
    "OHLCV_COLUMNS": "schema",
    "bar_intervals": "intervals",
    "check_bar_intervals": "intervals",
    "generate_market": "synthetic",
    "list_partition_dates": "io",
    "partition_dir": "io",
    "read_bars": "io",
    "require_dates": "io",
    "validate_ohlcv": "schema",
    "write_daily_partitions": "io",
    "write_partition": "io",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
