"""The warm-up audit: scoring from exactly the declared lookback equals scoring from all history."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from pipeline_core.data import MarketSpec, generate_market
from pipeline_core.errors import ConfigError, DataValidationError
from pipeline_core.features import FeatureSet, register_feature_set
from pipeline_core.pipeline import InferenceConfig
from pipeline_core.training import train_pipeline
from pipeline_core.validation import warmup_audit

from planted import HORIZON, LOOKBACK, TINY_XGBOOST, mini_features

_RET1 = pl.col("close").log().diff()
PLANTED = {
    "warmup_clean": [],
    # Infinite memory: every earlier return still carries weight (1 - 2/31)^k.
    "warmup_ewm": [_RET1.ewm_mean(span=30, adjust=False).alias("ret_ewm_30")],
    # A 40-bar window behind a declared lookback of 15 (partial windows allowed, so it is
    # never null and training does not notice).
    "warmup_long_window": [_RET1.rolling_mean(40, min_samples=1).alias("ret_mean_40")],
}


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    return generate_market(MarketSpec(start=date(2024, 7, 1), days=3, symbols=2, bars_per_day=200, seed=5))


@pytest.fixture(scope="module")
def pipelines(market) -> dict:
    trained = {}
    for name, extra in PLANTED.items():
        register_feature_set(FeatureSet.from_expressions(name, [*mini_features(), *extra], LOOKBACK), replace=True)
        config = InferenceConfig(model_names=["xgboost"], horizons=[HORIZON], feature_set=name)
        trained[name] = train_pipeline(market, config, TINY_XGBOOST)
    return trained


def test_clean_pipeline_passes_warmup_audit(pipelines, market):
    result = warmup_audit(pipelines["warmup_clean"], market, HORIZON, n_samples=15)
    assert result.passed, result.summary()
    assert result.n_checked == 15
    assert result.lookback == LOOKBACK
    assert result.max_abs_diff <= 1e-6 and result.max_feature_diff <= 1e-6


@pytest.mark.parametrize(
    ("name", "feature"), [("warmup_ewm", "ret_ewm_30"), ("warmup_long_window", "ret_mean_40")]
)
def test_undeclared_memory_fails_warmup_audit(pipelines, market, name, feature):
    result = warmup_audit(pipelines[name], market, HORIZON, n_samples=15)
    assert not result.passed
    assert result.max_feature_diff > 1e-3
    assert result.worst and result.worst[0].feature == feature
    assert "more history than declared" in result.summary()


def test_undeclared_memory_passes_lookahead_but_not_warmup(pipelines, market):
    """The two audits are separate: long memory is not lookahead."""
    from pipeline_core.validation import audit_pipeline_lookahead

    assert audit_pipeline_lookahead(pipelines["warmup_ewm"], market, HORIZON, n_samples=6).passed


def test_too_short_frame_is_refused(pipelines, market):
    short = market.group_by("symbol", maintain_order=True).head(LOOKBACK + 1)
    with pytest.raises(DataValidationError, match="nothing to compare"):
        warmup_audit(pipelines["warmup_clean"], short, HORIZON)


def test_n_samples_must_be_positive(pipelines, market):
    with pytest.raises(ConfigError, match="n_samples"):
        warmup_audit(pipelines["warmup_clean"], market, HORIZON, n_samples=0)


def test_sampled_bars_are_reproducible(pipelines, market):
    first = warmup_audit(pipelines["warmup_ewm"], market, HORIZON, n_samples=5, seed=3)
    again = warmup_audit(pipelines["warmup_ewm"], market, HORIZON, n_samples=5, seed=3)
    assert first == again
    assert np.isfinite(first.max_feature_diff)
