"""Shared fixtures: tiny seeded synthetic markets and one tiny trained bundle."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from filelock import FileLock

from pipeline_core.data import MarketSpec, generate_market

TINY_MARKET = MarketSpec(start=date(2024, 3, 1), days=6, symbols=3, bars_per_day=390, seed=21)
TINY_MODEL_PARAMS = {
    "xgboost": {"n_estimators": 30, "max_depth": 4},
    "lightgbm": {"n_estimators": 30},
    "gru": {"hidden_size": 8, "max_epochs": 2, "max_train_sequences": 2000},
}


@pytest.fixture(scope="session")
def small_market() -> pl.DataFrame:
    """Three symbols, four days of 120 one-minute bars."""
    return generate_market(MarketSpec(start=date(2024, 3, 1), days=4, symbols=3, bars_per_day=120, seed=11))


@pytest.fixture(scope="session")
def tiny_market() -> pl.DataFrame:
    """Three symbols, six days of 390 bars: enough to train tiny models on."""
    return generate_market(TINY_MARKET)


def _train_tiny_bundle(path: Path) -> None:
    from pipeline_core.pipeline import InferenceConfig
    from pipeline_core.training import TrainOptions, train_pipeline

    config = InferenceConfig(
        model_names=["xgboost", "lightgbm", "gru"], horizons=[10, 20], sequence_length=10, ensemble_method="stacking"
    )
    options = TrainOptions(model_params=TINY_MODEL_PARAMS, max_sequence_samples=2000)
    train_pipeline(generate_market(TINY_MARKET), config, options).save(path)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, worker_id) -> Path:
    """A saved bundle (xgboost, lightgbm, gru; horizons 10 and 20), trained once for all
    test workers. Tests that change files must copy it first (`bundle_copy`)."""
    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    path = shared / "tiny_bundle" / "pipeline_v1"
    with FileLock(str(shared / "tiny_bundle.lock")):
        if not path.exists():
            _train_tiny_bundle(path)
    return path


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path) -> Path:
    """A private copy of the tiny bundle, free to tamper with."""
    return Path(shutil.copytree(tiny_bundle, tmp_path / "pipeline_v1"))


@pytest.fixture(scope="session")
def skilled_pipeline(tiny_market):
    """xgboost + lightgbm, soft voting, h20: a tiny bundle that beats the class prior (deployable)."""
    from pipeline_core.pipeline import InferenceConfig
    from pipeline_core.training import TrainOptions, train_pipeline

    boosting = {"n_estimators": 30, "n_jobs": 1}
    config = InferenceConfig(model_names=["xgboost", "lightgbm"], horizons=[20], ensemble_method="voting")
    pipeline = train_pipeline(tiny_market, config, TrainOptions(model_params={"xgboost": boosting, "lightgbm": boosting}))
    assert pipeline.evaluation["skill"]["deployable"], pipeline.evaluation["skill"]["reason"]
    return pipeline


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_bundle):
    from pipeline_core.pipeline import InferencePipeline

    return InferencePipeline.load(tiny_bundle)


@pytest.fixture(scope="session")
def deployment_before_fault(tmp_path_factory, tiny_market) -> Path:
    """A deployment for the fault tests (`fault_worker.py`), not to be changed (copy it):
    `bundles/` with pipeline_v1 (LIVE) and pipeline_v2 (the same xgboost models), eight raw
    dates under `ohlcv/`, and the last date's predictions as pipeline_v2 scored them."""
    from pipeline_core.batch import score_date
    from pipeline_core.bundle import LIVE_POINTER, BundleStore
    from pipeline_core.data import write_daily_partitions
    from pipeline_core.pipeline import InferenceConfig, InferencePipeline
    from pipeline_core.training import TrainOptions, train_pipeline

    root = tmp_path_factory.mktemp("deployment_before_fault")
    config = InferenceConfig(model_names=["xgboost"], horizons=[10, 20])
    options = TrainOptions(model_params={"xgboost": {"n_estimators": 20, "max_depth": 3, "n_jobs": 1}})
    store = BundleStore(root / "bundles")
    pipeline = train_pipeline(tiny_market, config, options)
    pipeline.save(store.path("pipeline_v1"))
    pipeline.save(store.path("pipeline_v2"))
    (store.root / LIVE_POINTER).write_text("pipeline_v1\n")
    write_daily_partitions(generate_market(MarketSpec(start=date(2024, 5, 1), days=8, symbols=3, bars_per_day=390, seed=5)), root / "ohlcv")
    v2 = InferencePipeline.load(store.path("pipeline_v2"))
    list(score_date(v2, root / "ohlcv", root / "predictions", date(2024, 5, 8), [10, 20]))
    return root
