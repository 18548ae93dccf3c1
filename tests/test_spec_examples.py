"""The spec's "Load and Predict" and "Batch Inference" examples, as written but for imports."""

import shutil

import numpy as np
import pandas as pd


def test_spec_load_and_predict_and_batch_inference_examples_run(tiny_bundle, tiny_market, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_bundle, "deployment/production_pipeline_v1")
    (tmp_path / "data" / "live").mkdir(parents=True)
    (tmp_path / "data" / "backtest").mkdir(parents=True)
    (tmp_path / "results").mkdir()
    tiny_market.to_pandas().to_parquet("data/live/latest.parquet")
    tiny_market.to_pandas().to_parquet("data/backtest/2024_q4.parquet")

    # --- Load and Predict ---
    from pipeline_core.pipeline import InferencePipeline

    # Load pipeline
    pipeline = InferencePipeline.load("deployment/production_pipeline_v1")

    # Predict on new data
    df_new = pd.read_parquet("data/live/latest.parquet")
    result = pipeline.predict(df_new, horizon=20)

    print(f"Predictions: {result.predictions}")  # [-1, 0, 1, 1, 0, ...]
    print(f"Confidence: {result.confidence}")  # [0.65, 0.72, 0.58, ...]
    print(f"Latency: {result.inference_time_ms:.2f}ms")  # 45.23ms

    # --- Batch Inference ---
    from pipeline_core.batch import BatchInference

    batch_inf = BatchInference(pipeline, batch_size=1000)
    results = batch_inf.process_file(
        "data/backtest/2024_q4.parquet",
        horizon=20,
        output_path="results/backtest_predictions.parquet",
    )

    print(f"Processed {results.n_samples} samples in {results.total_time:.2f}s")
    print(f"Avg latency: {results.avg_latency_ms:.2f}ms")

    out = capsys.readouterr().out
    assert "Predictions: [" in out and "Latency: " in out and f"Processed {result.n_samples} samples" in out
    written = pd.read_parquet("results/backtest_predictions.parquet")
    np.testing.assert_allclose(written["confidence"].to_numpy(), result.confidence, atol=1e-9)
