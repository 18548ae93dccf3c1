"""Bar intervals per symbol: a dataset that mixes intervals (hourly FX beside daily equities) is refused."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from pipeline_core.errors import DataValidationError


def bar_intervals(bars: pl.DataFrame) -> dict[str, timedelta]:
    """Median spacing of each symbol's consecutive bars."""
    spacing = bars.group_by("symbol", maintain_order=True).agg(pl.col("timestamp").diff().median().alias("step"))
    return {row["symbol"]: row["step"] for row in spacing.iter_rows(named=True) if row["step"] is not None}


def check_bar_intervals(bars: pl.DataFrame, allow_mixed: bool = False) -> dict[str, timedelta]:
    intervals = bar_intervals(bars)
    if not allow_mixed and len(set(intervals.values())) > 1:
        groups: dict[timedelta, list[str]] = {}
        for symbol, step in intervals.items():
            groups.setdefault(step, []).append(symbol)
        described = "; ".join(f"{sorted(s)[:5]} are {step} bars" for step, s in groups.items())
        raise DataValidationError(
            f"Symbols have different bar intervals: {described}. Train one interval at a time, "
            "or pass allow_mixed_intervals=True (--allow-mixed-intervals)."
        )
    return intervals
