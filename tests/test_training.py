from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from pipeline_core.errors import ConfigError, DataValidationError, InsufficientHistoryError
from pipeline_core.evaluation import format_table
from pipeline_core.pipeline import InferenceConfig, InferencePipeline
from pipeline_core.training import (
    MIN_LABEL_PERIODS,
    TrainOptions,
    fit_feature_scaler,
    prepare_training_data,
    train_pipeline,
)

FAST = TrainOptions(
    model_params={"xgboost": {"n_estimators": 15, "max_depth": 3}, "tcn": {"max_epochs": 1, "max_train_sequences": 500}},
    max_sequence_samples=500,
)


@pytest.fixture(scope="module")
def config():
    return InferenceConfig(model_names=["xgboost", "tcn"], horizons=[5, 20], sequence_length=8, ensemble_method="voting")


def test_windows_are_time_ordered_purged_and_labelled(tiny_market, config):
    data = prepare_training_data(tiny_market, config, FAST)
    times = data.rows.timestamps
    for horizon, split in data.splits.items():
        windows = [split.train, split.early_stopping, split.calibration, split.test]
        for earlier, later in zip(windows, windows[1:]):
            assert times[earlier].max() < times[later].min()
        assert all((split.y[w] >= 0).all() for w in windows)  # only labelled rows
        # Purge: no training label window (h bars ahead) reaches the validation start.
        gap = (times[split.early_stopping].min() - times[split.train].max()) / np.timedelta64(1, "m")
        assert gap > horizon


def test_scaler_is_fit_on_the_training_window_only(tiny_market, config):
    data = prepare_training_data(tiny_market, config, FAST)
    scaler = fit_feature_scaler(data)
    train_rows = data.rows.raw[data.scaler_rows]
    np.testing.assert_allclose(scaler.center_, np.median(train_rows.astype(np.float64), axis=0))
    assert not np.allclose(scaler.center_, np.median(data.rows.raw.astype(np.float64), axis=0))
    raw_times = np.empty(len(data.rows.raw), dtype="datetime64[us]")
    raw_times[data.rows.scored] = data.rows.timestamps
    assert raw_times[data.scaler_rows].max() < data.rows.timestamps[data.splits[5].early_stopping].min()


def test_train_pipeline_in_memory_equals_the_saved_bundle(tiny_market, config, tmp_path):
    pipeline = train_pipeline(tiny_market, config, FAST)
    pipeline.save(tmp_path / "pipeline_v1")
    loaded = InferencePipeline.load(tmp_path / "pipeline_v1")
    before, after = pipeline.predict(tiny_market, horizon=None), loaded.predict(tiny_market, horizon=None)
    for horizon in (5, 20):
        np.testing.assert_array_equal(before[horizon].probabilities, after[horizon].probabilities)
    rows = pipeline.evaluation["table"]
    assert {(r["model"], r["stage"], r["symbol"]) for r in rows if r["horizon"] == 20 and r["symbol"] == "all"} == {
        ("class prior", "baseline", "all"), ("train prior", "baseline", "all"), ("persistence", "baseline", "all"),
        ("xgboost", "raw", "all"), ("xgboost", "calibrated", "all"),
        ("tcn", "raw", "all"), ("tcn", "calibrated", "all"), ("ensemble (voting)", "final", "all"),
    }
    assert set(pipeline.reference_stats) == {5, 20}


def test_train_pipeline_accepts_a_profile_name_and_rejects_bad_options(tiny_market):
    with pytest.raises(ConfigError, match="Unknown profile"):
        train_pipeline(tiny_market, "turbo")
    with pytest.raises(ConfigError, match=r"model_params names unknown families \['svm'\]"):
        TrainOptions(model_params={"svm": {}})


def test_train_pipeline_needs_enough_history(tiny_market, config):
    with pytest.raises(InsufficientHistoryError, match="too short|Too few labelled bars|enough history"):
        train_pipeline(tiny_market.head(200), config, FAST)


@pytest.fixture(scope="module")
def trained(tiny_market, config):
    return train_pipeline(tiny_market, config, FAST)


def test_windows_too_small_for_what_is_fitted_are_refused_naming_them(tiny_market, config):
    short = tiny_market.filter(pl.col("timestamp") < pl.col("timestamp").min() + pl.duration(days=2))
    with pytest.raises(InsufficientHistoryError, match=r"windows \[.*'test'.*\] hold .* independent label periods"):
        prepare_training_data(short, config, FAST)


def test_a_calibration_window_too_small_for_folds_falls_back_to_identity_and_says_so(tiny_market):
    config = InferenceConfig(model_names=["xgboost", "lightgbm"], horizons=[20], ensemble_method="stacking")
    options = replace(FAST, min_label_periods={**MIN_LABEL_PERIODS, "calibration": 10_000})
    pipeline = train_pipeline(tiny_market, config, options)
    summary = pipeline.evaluation["summary"]["h20"]
    assert {record["choice"] for record in summary["calibration"].values()} == {"identity"}
    assert "calibration window holds" in format_table(pipeline.evaluation)
    assert summary["ensemble"]["selection"]["cv_log_loss"] == {}  # nothing compared without folds


def test_a_window_holding_only_some_symbols_warns(tiny_market, config):
    late_listing = tiny_market.filter(
        (pl.col("symbol") != "SYN02") | (pl.col("timestamp") < pl.col("timestamp").min() + pl.duration(days=3))
    )
    with pytest.warns(UserWarning, match=r"test window holds only 2 of 3 symbols \(missing \['SYN02'\]\)"):
        prepare_training_data(late_listing, config, FAST)


def test_symbols_of_different_bar_intervals_are_refused_unless_allowed(tiny_market, config):
    one = tiny_market.filter(pl.col("symbol") == "SYN03")
    other = tiny_market.filter(pl.col("symbol") == "SYN01").gather_every(5)
    mixed = pl.concat([one, other])
    with pytest.raises(DataValidationError, match=r"different bar intervals.*\['SYN03'\] are 0:01:00.*--allow-mixed-intervals"):
        prepare_training_data(mixed, config, FAST)
    assert prepare_training_data(mixed, config, replace(FAST, allow_mixed_intervals=True)).splits


def test_evaluation_sets_the_final_model_beside_baselines_per_symbol_with_intervals(trained):
    rows = [r for r in trained.evaluation["table"] if r["horizon"] == 20]
    per_symbol = {(r["model"], r["symbol"]) for r in rows if r["symbol"] != "all"}
    for symbol in ("SYN01", "SYN02", "SYN03"):
        assert {(m, symbol) for m in ("class prior", "train prior", "persistence", "ensemble (voting)")} <= per_symbol
    for row in rows:
        for metric in ("log_loss", "brier", "accuracy"):  # means: their intervals hold the estimate
            low, high = row[f"{metric}_ci"]
            assert low - 1e-9 <= row[metric] <= high + 1e-9
        assert all(row[f"{m}_ci"][0] <= row[f"{m}_ci"][1] for m in ("macro_f1", "ece"))
    summary = trained.evaluation["summary"]["h20"]
    assert summary["prior_log_loss"] == summary["class_prior_log_loss"]
    assert {"train_prior_log_loss", "persistence_log_loss", "calibration", "ensemble", "windows"} <= set(summary)
    assert summary["windows"]["test"]["periods"] >= MIN_LABEL_PERIODS["test"]
