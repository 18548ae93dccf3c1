"""Where the time goes: each stage of `process_file` (or of one `predict`), timed alone.

Runs the pipeline's own functions one after another on the first `rows` bars of the
file (one chunk), so the figures add up to roughly one chunk of `process_file`; or on
the latency benchmark's input (history + 100 new bars of one symbol). The
"native" line of a model is the raw library call, the "wrapper" line the model's
`predict_proba` via `ModelInputs.run` (validation and window copies included).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.throughput import native_seconds
from benchmarks.timing import load_average, timed
from pipeline_core.batch import DICTIONARY_COLUMNS
from pipeline_core.data import validate_ohlcv
from pipeline_core.features import compute_features
from pipeline_core.inputs import featurize
from pipeline_core.constants import CLASSES
from pipeline_core.pipeline import InferencePipeline, InferenceResult, model_key


def stage_breakdown(
    pipeline: InferencePipeline, source: Path | pl.DataFrame, rows: int, repeats: int, scratch: Path,
    sequence_repeats: int = 1,
) -> dict[str, Any]:
    """Median milliseconds of each stage on one chunk: the first `rows` bars of a file, or
    a frame (then there is no read stage). Sequence models run `sequence_repeats` times:
    a chunk of windows takes them tens of seconds."""
    config = pipeline.config
    stages: dict[str, dict[str, float]] = {}

    def record(name: str, runs: list[tuple[float, float]]) -> None:
        wall, cpu = np.median(np.array(runs), axis=0) * 1000
        stages[name] = {"ms": round(float(wall), 2), "cpu_ms": round(float(cpu), 2)}

    def stage(name: str, func: Callable[[], Any], times: int = repeats) -> Any:
        runs = [timed(func) for _ in range(max(times, 1))]
        record(name, [run[:2] for run in runs])
        return runs[-1][2]

    if isinstance(source, pl.DataFrame):
        table = source
    else:
        table = stage("read parquet", lambda: _first_chunk(source, rows))
    bars = stage("validate_ohlcv", lambda: validate_ohlcv(table))
    stage("compute_features", lambda: compute_features(bars, pipeline.feature_set))
    features = stage(
        "featurize (features + row selection)",
        lambda: featurize(bars, pipeline.feature_set, config.sequence_length, config.uses_sequences),
    )
    inputs = stage("scale", lambda: features.scaled_by(pipeline.scaler))
    raw: dict[int, dict[str, np.ndarray]] = {h: {} for h in config.horizons}
    for horizon in config.horizons:
        for name in config.model_names:
            key = model_key(name, horizon)
            model = pipeline.models[key]
            times = sequence_repeats if model.is_sequence else repeats
            raw[horizon][name] = stage(f"{key} wrapper", lambda: inputs.run(model, config.batch_size), times)
            record(f"{key} native", [native_seconds(model, inputs) for _ in range(times)])
    calibrated = stage("calibrate", lambda: {h: _calibrate(pipeline, raw[h], h) for h in config.horizons})
    probabilities = {h: calibrated[h][config.model_names[0]] for h in config.horizons}
    if pipeline.ensembles:
        probabilities = stage("ensemble", lambda: {h: _ensemble(pipeline, calibrated[h], h) for h in config.horizons})
    results = {h: _result(pipeline, inputs, probabilities[h], h) for h in config.horizons}
    frames = stage("InferenceResult.to_frame", lambda: [results[h].to_frame() for h in config.horizons])
    target = scratch / "stage_output.parquet"
    stage("write parquet", lambda: _write(frames, target))
    target.unlink(missing_ok=True)
    stage("predict (all of the above but read/write)", lambda: pipeline.predict(table, horizon=list(config.horizons)),
          min(repeats, sequence_repeats) if config.uses_sequences else repeats)
    return {"rows": int(table.height), "scored_rows": int(inputs.n_scored), "stages": stages,
            "load_1min": load_average()[0]}


def _calibrate(pipeline: InferencePipeline, raw: dict[str, np.ndarray], horizon: int) -> dict[str, np.ndarray]:
    if not pipeline.config.use_calibration:
        return raw
    return {name: pipeline.calibrators[model_key(name, horizon)].transform(p) for name, p in raw.items()}


def _ensemble(pipeline: InferencePipeline, calibrated: dict[str, np.ndarray], horizon: int) -> np.ndarray:
    return pipeline.ensembles[horizon].predict_proba([calibrated[n] for n in pipeline.config.model_names])


def _result(pipeline: InferencePipeline, inputs, probabilities: np.ndarray, horizon: int) -> InferenceResult:
    """The result `_score` builds, without running the models again."""
    return InferenceResult(
        predictions=np.asarray(CLASSES)[probabilities.argmax(axis=1)], probabilities=probabilities,
        confidence=probabilities.max(axis=1), inference_time_ms=0.0, horizon=horizon,
        timestamps=inputs.timestamps, symbols=inputs.symbols, bundle_version=pipeline.version,
    )


def _first_chunk(path: Path, rows: int) -> pl.DataFrame:
    """The first `rows` bars, read the way `process_file` reads its chunks."""
    batch = next(pq.ParquetFile(path).iter_batches(batch_size=rows))
    return pl.from_arrow(pa.Table.from_batches([batch]))


def _write(frames: list[pl.DataFrame], target: Path) -> None:
    writer = None
    for frame in frames:
        table = frame.to_arrow()
        writer = writer or pq.ParquetWriter(target, table.schema, use_dictionary=DICTIONARY_COLUMNS)
        writer.write_table(table)
    writer.close()
