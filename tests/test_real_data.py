"""On real market data: calibration never makes a model worse beyond noise, and no bundle
that is no better than the prior is deployable (issue: models a quant can trust)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pipeline_core.errors import DataValidationError
from pipeline_core.training import prepare_training_data, train_pipeline
from pipeline_core.profiles import profile_config

from real_data import FILES, daily_mix, real_bars

PROFILES = ("low-latency", "multi-horizon")


@pytest.fixture(scope="module")
def evaluations() -> dict[tuple[str, str], dict]:
    """Every real file x fast profile, trained once (a few seconds each)."""
    results = {}
    for name in FILES:
        bars = real_bars(name)
        for profile in PROFILES:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                results[name, profile] = train_pipeline(bars, profile).evaluation
    return results


def _pooled(evaluation: dict, stage: str) -> dict[tuple[int, str], float]:
    return {(r["horizon"], r["model"]): r["log_loss"] for r in evaluation["table"]
            if r["stage"] == stage and r["symbol"] == "all"}


def test_calibration_never_makes_a_model_worse_on_real_data(evaluations):
    changes = []
    for key, evaluation in evaluations.items():
        raw, calibrated = _pooled(evaluation, "raw"), _pooled(evaluation, "calibrated")
        for model, loss in calibrated.items():
            changes.append(loss - raw[model])
            assert loss <= raw[model] + 0.01, (key, model, loss, raw[model])
    assert np.mean(changes) <= 0.003, np.mean(changes)


def test_no_deployable_bundle_is_worse_than_the_prior_on_real_data(evaluations):
    for key, evaluation in evaluations.items():
        skill = evaluation["skill"]
        beats = [s["log_loss"] < s["train_prior_log_loss"] for s in evaluation["summary"].values()]
        assert skill["deployable"] == all(beats), key
        if skill["deployable"]:
            for summary in evaluation["summary"].values():
                assert summary["log_loss"] < summary["train_prior_log_loss"]


def test_a_real_multi_symbol_mix_gets_per_symbol_rows():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluation = train_pipeline(daily_mix(), "low-latency").evaluation
    symbols = {r["symbol"] for r in evaluation["table"] if r["stage"] == "final"}
    assert symbols == {"all", "GOOGL", "SP500", "NASDAQ"}


def test_mixing_hourly_and_daily_symbols_is_refused_naming_both():
    import polars as pl

    mixed = pl.concat([real_bars("eurusd"), real_bars("googl")])
    with pytest.raises(DataValidationError, match=r"\['EURUSD'\] are 1:00:00 bars.*\['GOOGL'\] are 1 day"):
        prepare_training_data(mixed, profile_config("low-latency"))
