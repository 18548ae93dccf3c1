"""Shared fixtures: tiny seeded synthetic markets."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from pipeline_core.data import MarketSpec, generate_market


@pytest.fixture(scope="session")
def small_market() -> pl.DataFrame:
    """Three symbols, four days of 120 one-minute bars."""
    return generate_market(MarketSpec(start=date(2024, 3, 1), days=4, symbols=3, bars_per_day=120, seed=11))
