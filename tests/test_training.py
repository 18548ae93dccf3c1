import numpy as np
import pytest

from pipeline_core.errors import ConfigError, InsufficientHistoryError
from pipeline_core.pipeline import InferenceConfig, InferencePipeline
from pipeline_core.training import (
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
