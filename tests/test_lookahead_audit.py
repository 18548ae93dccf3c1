"""The lookahead auditor: hand-written predict functions with and without planted leaks."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest

from pipeline_core.data import MarketSpec, generate_market, validate_ohlcv
from pipeline_core.errors import ConfigError, DataValidationError, InsufficientHistoryError
from pipeline_core.features import FeatureSet, register_feature_set
from pipeline_core.inputs import featurize
from pipeline_core.pipeline import InferenceConfig
from pipeline_core.scaling import fit_scaler
from pipeline_core.training import train_pipeline
from pipeline_core.validation import LookaheadAuditor, audit_pipeline_lookahead, pipeline_predict_func
from pipeline_core.validation.lookahead_audit import audit_pipeline_lookahead_by_horizon

from planted import HORIZON, LOOKBACK, TINY_XGBOOST, mini_features

WINDOW = 5


@pytest.fixture(scope="module")
def two_symbols() -> pl.DataFrame:
    """Two symbols, two days of 150 minute bars, sorted by symbol then time."""
    return generate_market(MarketSpec(start=date(2024, 5, 1), days=2, symbols=2, bars_per_day=150, seed=3))


@pytest.fixture(scope="module")
def one_symbol(two_symbols) -> pd.DataFrame:
    """One symbol as the spec's pandas frame (timestamp column, no symbol)."""
    return two_symbols.filter(pl.col("symbol") == "SYN01").drop("symbol").to_pandas()


def _signal_frame(close: pd.Series, signal: pd.Series) -> pd.DataFrame:
    """Spec-style output: only prediction and confidence, first rows without history dropped."""
    distance = (signal / close.rolling(WINDOW).mean() - 1.0).iloc[WINDOW - 1 :]
    return pd.DataFrame(
        {
            "prediction": np.sign(distance.fillna(0.0)).astype(int).to_numpy(),
            "confidence": (1.0 / (1.0 + np.exp(-1000.0 * distance.fillna(0.0).abs()))).to_numpy(),
        }
    )


def causal_spec_predict(data: pd.DataFrame) -> pd.DataFrame:
    close = data["close"].reset_index(drop=True)
    return _signal_frame(close, close)


def next_bar_spec_predict(data: pd.DataFrame) -> pd.DataFrame:
    close = data["close"].reset_index(drop=True)
    return _signal_frame(close, close.shift(-1))


def keyed_predict(signal: pl.Expr):
    """Keyed output (timestamp, symbol, prediction, confidence) of a per-symbol signal."""

    def predict(data: pl.DataFrame) -> pl.DataFrame:
        distance = (signal / pl.col("close").rolling_mean(WINDOW) - 1.0).over("symbol").alias("d")
        scored = data.sort("symbol", "timestamp").with_columns(distance).drop_nulls("d")
        return scored.select(
            "timestamp", "symbol",
            prediction=pl.col("d").sign().cast(pl.Int64),
            confidence=pl.col("d").abs(),
        )

    return predict


CAUSAL = pl.col("close")
NEXT_BAR = pl.col("close").shift(-1)
CENTRED = pl.col("close").rolling_mean(2 * WINDOW + 1, center=True)
# A z-score "scaler" fit on the whole series it is given, future included.
WHOLE_SERIES_SCALER = (pl.col("close") - pl.col("close").mean()) / pl.col("close").std() + 1000.0


def test_auditor_passes_causal_spec_style_predict_func(one_symbol):
    result = LookaheadAuditor(causal_spec_predict).audit(one_symbol, n_samples=20, seed=1)
    assert result.passed, result.summary()
    assert result.violations == ()
    assert result.n_checked == 20 and result.n_cuts == 20


def test_auditor_catches_one_bar_leak_in_spec_style_output(one_symbol):
    result = LookaheadAuditor(next_bar_spec_predict).audit(one_symbol, n_samples=20, seed=1)
    assert not result.passed
    # Every cut point except the last bar (whose cut is the full data) exposes the leak.
    assert len(result.violations) == result.n_checked - 1
    last = one_symbol["timestamp"].iloc[-1]
    assert all(v.timestamp < last for v in result.violations)


def test_violation_names_bar_and_both_values(one_symbol):
    result = LookaheadAuditor(next_bar_spec_predict).audit(one_symbol, n_samples=5, seed=2)
    violation = result.violations[0]
    full = next_bar_spec_predict(one_symbol)  # its rows are the input's last rows
    position = int(np.flatnonzero(one_symbol["timestamp"] == violation.timestamp)[0])
    row = full.iloc[position - (len(one_symbol) - len(full))]
    assert violation.symbol == "default"
    assert (violation.full_prediction, violation.full_confidence) == (row["prediction"], row["confidence"])
    # Cut just after t, the next close is missing: a neutral 0 with confidence 0.5.
    assert (violation.cut_prediction, violation.cut_confidence) == (0, 0.5)
    frame = result.to_frame()
    assert frame.height == len(result.violations)
    assert frame.columns[:2] == ["timestamp", "symbol"]


@pytest.mark.parametrize("max_history", [None, WINDOW - 1])
@pytest.mark.parametrize(
    ("signal", "leaks"),
    [(CAUSAL, False), (NEXT_BAR, True), (CENTRED, True), (WHOLE_SERIES_SCALER, True)],
    ids=["causal", "next_bar", "centred_window", "whole_series_scaler"],
)
def test_auditor_on_keyed_multi_symbol_output(two_symbols, signal, leaks, max_history):
    auditor = LookaheadAuditor(keyed_predict(signal), max_history=max_history)
    result = auditor.audit(two_symbols, n_samples=15, seed=0)
    assert result.passed is not leaks, result.summary()
    # Both symbols are compared at every cut time.
    assert result.n_checked == 2 * result.n_cuts
    if leaks:
        assert {v.symbol for v in result.violations} == {"SYN01", "SYN02"}


def test_next_bar_leak_leaves_cut_point_unscored(two_symbols):
    result = LookaheadAuditor(keyed_predict(NEXT_BAR)).audit(two_symbols, n_samples=6)
    assert all(v.cut_prediction is None and "needs later bars" in v.reason for v in result.violations)


def test_max_history_does_not_mistake_long_memory_for_lookahead(two_symbols):
    # An expanding mean depends on ALL earlier bars (the warm-up audit's business), and its
    # last bits depend on where the data starts; cut and reference runs share their first
    # bar, so only the bars after t differ and nothing is reported.
    expanding = pl.col("close").cum_sum() / pl.int_range(1, pl.len() + 1)
    result = LookaheadAuditor(keyed_predict(expanding), max_history=WINDOW).audit(two_symbols, n_samples=10)
    assert result.passed, result.summary()


def test_max_history_too_short_is_reported(two_symbols):
    result = LookaheadAuditor(keyed_predict(CAUSAL), max_history=1).audit(two_symbols, n_samples=4)
    assert not result.passed
    assert all("max_history" in v.reason for v in result.violations)


def test_auditor_accepts_pandas_datetime_index(one_symbol):
    indexed = one_symbol.set_index("timestamp")
    seen = []

    def predict(data: pd.DataFrame) -> pd.DataFrame:
        seen.append(type(data))
        return causal_spec_predict(data)

    assert LookaheadAuditor(predict).audit(indexed, n_samples=4).passed
    assert set(seen) == {pd.DataFrame}


def test_cut_points_are_reproducible_and_include_both_ends(one_symbol):
    calls = []

    def predict(data: pd.DataFrame) -> pd.DataFrame:
        calls.append(len(data))
        return causal_spec_predict(data)

    LookaheadAuditor(predict).audit(one_symbol, n_samples=6, seed=7)
    first_run, calls[:] = calls[:], []
    LookaheadAuditor(predict).audit(one_symbol, n_samples=6, seed=7)
    assert calls == first_run
    cut_lengths = first_run[1:]
    assert min(cut_lengths) == WINDOW  # the first scorable bar: cut with exactly its history
    assert max(cut_lengths) == len(one_symbol)  # the last bar


def test_error_on_cut_data_is_a_violation(one_symbol):
    n = len(one_symbol)

    def predict(data: pd.DataFrame) -> pd.DataFrame:
        if len(data) < n:
            raise InsufficientHistoryError("needs the next bar")
        return causal_spec_predict(data)

    result = LookaheadAuditor(predict).audit(one_symbol, n_samples=3)
    assert not result.passed
    assert "needs the next bar" in result.violations[0].reason


def test_unkeyed_output_for_several_symbols_is_refused(two_symbols):
    with pytest.raises(DataValidationError, match="timestamp and symbol columns"):
        LookaheadAuditor(lambda data: pd.DataFrame({"prediction": [0], "confidence": [0.5]})).audit(two_symbols)


def test_output_without_prediction_column_is_refused(one_symbol):
    with pytest.raises(DataValidationError, match=r"missing \['prediction'\]"):
        LookaheadAuditor(lambda data: pd.DataFrame({"confidence": [0.5]})).audit(one_symbol)


def test_too_many_output_rows_are_refused(one_symbol):
    with pytest.raises(DataValidationError, match="must be the last rows"):
        LookaheadAuditor(lambda d: pd.DataFrame({"prediction": [0] * (len(d) + 1), "confidence": 0.5})).audit(
            one_symbol
        )


def test_nothing_scored_is_refused(one_symbol):
    with pytest.raises(DataValidationError, match="scored none"):
        LookaheadAuditor(lambda d: pd.DataFrame({"prediction": [], "confidence": []})).audit(one_symbol)


@pytest.mark.parametrize("n_samples", [0, 1, 2.5])
def test_n_samples_must_be_at_least_two(one_symbol, n_samples):
    with pytest.raises(ConfigError, match="n_samples"):
        LookaheadAuditor(causal_spec_predict).audit(one_symbol, n_samples=n_samples)


def test_frame_without_timestamp_is_refused(one_symbol):
    with pytest.raises(DataValidationError, match="no timestamp column"):
        LookaheadAuditor(causal_spec_predict).audit(one_symbol.drop(columns="timestamp"))


# ---------------------------------------------------------------------------------------
# Real tiny pipelines (xgboost, a few trees) trained on planted feature sets.

PLANTED = {
    "lookahead_clean": [],
    "lookahead_next_bar": [(pl.col("close").shift(-1).log() - pl.col("close").log()).alias("next_ret")],
    "lookahead_centred": [
        (pl.col("close").log() - pl.col("close").log().rolling_mean(11, center=True)).alias("centred_dev")
    ],
}


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    return generate_market(MarketSpec(start=date(2024, 6, 3), days=3, symbols=2, bars_per_day=200, seed=21))


@pytest.fixture(scope="module")
def pipelines(market) -> dict:
    """One tiny trained pipeline per planted feature set."""
    trained = {}
    for name, extra in PLANTED.items():
        feature_set = FeatureSet.from_expressions(name, [*mini_features(), *extra], LOOKBACK)
        register_feature_set(feature_set, replace=True)
        config = InferenceConfig(model_names=["xgboost"], horizons=[HORIZON], feature_set=name)
        trained[name] = train_pipeline(market, config, TINY_XGBOOST)
    return trained


@pytest.mark.parametrize("full_prefix", [False, True], ids=["declared_history", "full_prefix"])
def test_clean_pipeline_passes_lookahead_audit(pipelines, market, full_prefix):
    result = audit_pipeline_lookahead(
        pipelines["lookahead_clean"], market, HORIZON, n_samples=12, full_prefix=full_prefix
    )
    assert result.passed, result.summary()
    assert result.n_checked == 2 * result.n_cuts
    assert result.max_history == (None if full_prefix else LOOKBACK)


@pytest.mark.parametrize("name", ["lookahead_next_bar", "lookahead_centred"])
def test_pipeline_with_leaking_feature_fails_lookahead_audit(pipelines, market, name):
    result = audit_pipeline_lookahead(pipelines[name], market, HORIZON, n_samples=12)
    assert not result.passed
    assert all(v.cut_prediction is not None for v in result.violations)  # scored, but differently


def test_spec_example_predict_func_on_pipeline(pipelines, market):
    """The spec's predict_func (prediction and confidence only) on one symbol."""
    one = market.filter(pl.col("symbol") == "SYN02").drop("symbol").to_pandas()

    def spec_predict_func(pipeline):
        def predict(data):
            result = pipeline.predict(data, horizon=HORIZON)
            return pd.DataFrame({"prediction": result.predictions, "confidence": result.confidence})

        return predict

    clean = LookaheadAuditor(spec_predict_func(pipelines["lookahead_clean"])).audit(one, n_samples=8)
    leaky = LookaheadAuditor(spec_predict_func(pipelines["lookahead_next_bar"])).audit(one, n_samples=8)
    assert clean.passed, clean.summary()
    assert not leaky.passed


def test_scaler_fit_on_the_whole_series_fails_lookahead_audit(pipelines, market):
    """Refitting the scaler on each frame scored (fit_transform at inference) leaks the future."""
    pipeline = pipelines["lookahead_clean"]
    config = pipeline.config

    def refit_scaler_predict(data):
        rows = featurize(validate_ohlcv(data), pipeline.feature_set, config.sequence_length, config.uses_sequences)
        scaler = fit_scaler(rows.raw, list(config.feature_columns))
        return pipeline.score_inputs(rows.scaled_by(scaler), HORIZON).to_frame()

    # Sanity: with the bundle's own scaler the same code path is clean.
    assert LookaheadAuditor(pipeline_predict_func(pipeline, HORIZON)).audit(market, n_samples=6).passed
    result = LookaheadAuditor(refit_scaler_predict, max_history=pipeline.required_lookback).audit(
        market, n_samples=12
    )
    assert not result.passed


@pytest.mark.parametrize("name", ["lookahead_clean", "lookahead_next_bar"])
def test_one_audit_for_every_horizon_catches_a_one_bar_leak_at_each(market, name, pipelines):
    config = InferenceConfig(model_names=["xgboost"], horizons=[10, HORIZON], feature_set=name)
    pipeline = train_pipeline(market, config, TINY_XGBOOST)
    by_horizon = audit_pipeline_lookahead_by_horizon(pipeline, market, [10, HORIZON], n_samples=12)
    assert sorted(by_horizon) == [10, HORIZON]
    for horizon, result in by_horizon.items():
        alone = audit_pipeline_lookahead(pipeline, market, horizon, n_samples=12)
        assert result.passed is alone.passed is (name == "lookahead_clean"), result.summary()
        assert result.n_checked == 2 * result.n_cuts  # two symbols at every cut point
        assert {v.symbol for v in result.violations} <= {"SYN01", "SYN02"}


@pytest.mark.parametrize("name", ["lookahead_clean", "lookahead_next_bar"])
def test_audit_from_stored_predictions_never_rescores_the_whole_frame_and_still_catches_a_leak(
    market, name, monkeypatch
):
    config = InferenceConfig(model_names=["xgboost"], horizons=[10, HORIZON], feature_set=name)
    pipeline = train_pipeline(market, config, TINY_XGBOOST)
    stored = {h: result.to_frame() for h, result in pipeline.predict(market, horizon=[10, HORIZON]).items()}
    rescored = audit_pipeline_lookahead_by_horizon(pipeline, market, [10, HORIZON], n_samples=12)
    featurized, scored = [], []
    model_inputs, score_inputs = pipeline.model_inputs, pipeline.score_inputs
    monkeypatch.setattr(pipeline, "model_inputs", lambda data: featurized.append(len(data)) or model_inputs(data))
    monkeypatch.setattr(pipeline, "score_inputs", lambda i, h, at: scored.append(len(at)) or score_inputs(i, h, at))
    from_stored = audit_pipeline_lookahead_by_horizon(pipeline, market, [10, HORIZON], n_samples=12, scored=stored)
    assert max(featurized) < market.height / 2  # only windows around the cut points were read
    cuts = from_stored[HORIZON].n_cuts
    if name == "lookahead_clean":  # one cut run per point, equal to the stored bars: no reference run
        assert len(featurized) == cuts
    else:  # the leak moves the stored bars: reference runs, but none at the last bar (nothing after it)
        assert cuts < len(featurized) <= 2 * cuts - 1
    assert max(scored) <= 2  # the models ran on the bars at the cut point only (two symbols)
    for horizon, result in from_stored.items():
        assert result.passed is rescored[horizon].passed is (name == "lookahead_clean"), result.summary()
        assert (result.n_cuts, result.n_checked) == (rescored[horizon].n_cuts, rescored[horizon].n_checked)


def test_stored_predictions_that_differ_cost_reference_runs_not_false_violations(market, monkeypatch):
    """A stored file whose confidences are not the pipeline's own: each cut point's reference
    run decides, and the clean pipeline passes."""
    config = InferenceConfig(model_names=["xgboost"], horizons=[HORIZON], feature_set="lookahead_clean")
    pipeline = train_pipeline(market, config, TINY_XGBOOST)
    stored = pipeline.predict(market, horizon=HORIZON).to_frame().with_columns(pl.col("confidence") - 1e-12)
    featurized = []
    model_inputs = pipeline.model_inputs
    monkeypatch.setattr(pipeline, "model_inputs", lambda data: featurized.append(len(data)) or model_inputs(data))
    result = audit_pipeline_lookahead_by_horizon(pipeline, market, [HORIZON], n_samples=6, scored={HORIZON: stored})
    assert result[HORIZON].passed, result[HORIZON].summary()
    assert len(featurized) == 2 * result[HORIZON].n_cuts - 1  # the last bar's cut run is its reference run
