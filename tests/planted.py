"""A small causal feature set for tiny audit pipelines, onto which tests plant leaks."""

from __future__ import annotations

import polars as pl

from pipeline_core.training import TrainOptions

HORIZON = 20
LOOKBACK = 15
# Audit tests train on a few hundred bars: skill is beside the point, so the windows may be tiny.
AUDIT_WINDOWS = {"train": 1, "early_stopping": 0.5, "calibration": 12, "test": 1}
# A few trees on one thread (the machine is shared; OpenMP spinning costs more than it saves).
TINY_XGBOOST = TrainOptions(
    model_params={"xgboost": {"n_estimators": 8, "max_depth": 3, "early_stopping_rounds": 8, "n_jobs": 1}},
    min_label_periods=AUDIT_WINDOWS,
)


def mini_features() -> list[pl.Expr]:
    """Returns over 1, 5 and 15 bars and a 15-bar realized volatility: lookback 15."""
    log_close = pl.col("close").log()
    returns = [(log_close - log_close.shift(w)).alias(f"ret_{w}") for w in (1, 5, 15)]
    return [*returns, log_close.diff().pow(2).rolling_mean(15).sqrt().alias("rvol_15")]
