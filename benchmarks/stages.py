"""Where the time of one chunk goes: each stage of `process_file`, timed alone.

Runs the pipeline's own functions one after another on the first `rows` bars of the
file (one chunk), so the figures add up to roughly one chunk of `process_file`. The
"native" line of a model is the raw library call, the "wrapper" line the model's
`predict_proba` via `ModelInputs.run` (validation and window copies included).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from benchmarks.throughput import native_seconds
from benchmarks.timing import load_average, timed
from pipeline_core.data import validate_ohlcv
from pipeline_core.features import compute_features
from pipeline_core.inputs import featurize
from pipeline_core.pipeline import InferencePipeline, model_key


def stage_breakdown(pipeline: InferencePipeline, path: Path, rows: int, repeats: int, scratch: Path) -> dict[str, Any]:
    """Median milliseconds of each stage on one chunk of `rows` bars."""
    config = pipeline.config
    stages: dict[str, float] = {}

    def stage(name: str, func: Callable[[], Any], times: int = repeats) -> Any:
        runs = [timed(func) for _ in range(max(times, 1))]
        stages[name] = round(float(np.median([seconds for seconds, _ in runs])) * 1000, 2)
        return runs[-1][1]

    table = stage("read parquet", lambda: pl.from_arrow(pq.read_table(path).slice(0, rows)))
    bars = stage("validate_ohlcv", lambda: validate_ohlcv(table))
    stage("compute_features", lambda: compute_features(bars, pipeline.feature_set))
    features = stage(
        "featurize (validate + features + row selection)",
        lambda: featurize(bars, pipeline.feature_set, config.sequence_length, config.uses_sequences),
    )
    inputs = stage("scale", lambda: features.scaled_by(pipeline._scaler))
    for horizon in config.horizons:
        for name in config.model_names:
            model = pipeline._models[model_key(name, horizon)]
            times = 1 if model.is_sequence else repeats
            stage(f"{model_key(name, horizon)} wrapper", lambda: inputs.run(model, config.batch_size), times)
            runs = [native_seconds(model, inputs) for _ in range(times)]
            stages[f"{model_key(name, horizon)} native"] = round(float(np.median(runs)) * 1000, 2)
    raw = {h: pipeline.base_model_probabilities(inputs, h) for h in config.horizons}
    calibrated = stage("calibrate", lambda: {h: _calibrate(pipeline, raw[h], h) for h in config.horizons})
    if config.use_ensemble and len(config.model_names) > 1:
        stage("ensemble", lambda: [_ensemble(pipeline, calibrated[h], h) for h in config.horizons])
    results = {h: pipeline.score_inputs(inputs, h) for h in config.horizons}
    frames = stage("InferenceResult.to_frame", lambda: [results[h].to_frame() for h in config.horizons])
    target = scratch / "stage_output.parquet"
    stage("write parquet", lambda: _write(frames, target))
    target.unlink(missing_ok=True)
    stage("predict (all of the above but read/write)", lambda: pipeline.predict(table, horizon=list(config.horizons)), 1)
    return {"rows": int(table.height), "scored_rows": int(inputs.n_scored), "milliseconds": stages,
            "load_1min": load_average()[0]}


def _calibrate(pipeline: InferencePipeline, raw: dict[str, np.ndarray], horizon: int) -> dict[str, np.ndarray]:
    if not pipeline.config.use_calibration:
        return raw
    return {name: pipeline._calibrators[model_key(name, horizon)].transform(p) for name, p in raw.items()}


def _ensemble(pipeline: InferencePipeline, calibrated: dict[str, np.ndarray], horizon: int) -> np.ndarray:
    return pipeline._meta_learner[horizon].predict_proba([calibrated[n] for n in pipeline.config.model_names])


def _write(frames: list[pl.DataFrame], target: Path) -> None:
    writer = None
    for frame in frames:
        table = frame.to_arrow()
        writer = writer or pq.ParquetWriter(target, table.schema)
        writer.write_table(table)
    writer.close()
