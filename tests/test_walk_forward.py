"""Walk-forward evaluation: each fold trains only on bars before its test block."""

from __future__ import annotations

import json

import pytest

from pipeline_core import walk_forward as wf
from pipeline_core.cli import main
from pipeline_core.pipeline import InferenceConfig
from pipeline_core.training import TrainOptions

BOOSTING = {"n_estimators": 15, "n_jobs": 1}
FAST = TrainOptions(model_params={"xgboost": BOOSTING})
CONFIG = InferenceConfig(model_names=["xgboost"], horizons=[10])


def test_each_fold_trains_before_its_block_and_pooled_rows_add_up(tiny_market, monkeypatch):
    seen = []
    original = wf.train_pipeline
    monkeypatch.setattr(wf, "train_pipeline", lambda bars, *a, **k: seen.append(bars["timestamp"].max()) or original(bars, *a, **k))
    results = wf.walk_forward(tiny_market, CONFIG, folds=2, options=FAST)
    folds, pooled = results[:-1], results[-1]
    assert [r.fold for r in results] == [0, 1, -1]
    for last_training_bar, fold in zip(seen, folds):
        assert str(last_training_bar) < fold.test_start.replace("T", " ")
    assert folds[0].test_end < folds[1].test_start
    assert pooled.n == sum(f.n for f in folds)
    for result in results:
        assert set(result.metrics) == set(wf.FORECASTS)
        low, high = result.log_loss_ci
        assert low <= result.metrics["final"]["log_loss"] <= high


def test_evaluate_command_prints_folds_and_writes_json(tiny_market, tmp_path, capsys):
    data = tmp_path / "bars.parquet"
    tiny_market.write_parquet(data)
    out = tmp_path / "wf.json"
    assert main(["evaluate", "--data", str(data), "--profile", "low-latency", "--folds", "2", "--min-train-frac", "0.75",
                 "--jobs", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "pooled" in printed and "persistence" in printed
    assert [row["fold"] for row in json.loads(out.read_text())] == [0, 1, -1]
    with pytest.raises(SystemExit):
        main(["evaluate", "--profile", "low-latency"])  # --data is required
