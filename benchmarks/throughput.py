"""Batch throughput of `BatchInference.process_file`, and the same rows through the raw
native models alone (features precomputed and scaled), whose ratio is the pipeline's
own overhead.

"Raw" means the library call the model wraps, with the threads the wrapper uses:
`Booster.inplace_predict` (xgboost), `Booster.predict` (lightgbm),
`CatBoostClassifier.predict_proba`, and the torch `nn.Module` on contiguous float32
windows (copied outside the timer). Everything else a scored row costs (reading,
validation, features, scaling, window copies, calibration, ensemble, output frame,
parquet writing) is pipeline overhead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from benchmarks.timing import load_average, timed
from pipeline_core.batch import BatchInference
from pipeline_core.inputs import ModelInputs
from pipeline_core.pipeline import InferencePipeline, model_key

SEQUENCE_BATCH = 8192  # windows copied per raw torch call (a multiple of the 256-row chunk)


def batch_throughput(
    pipeline: InferencePipeline, path: Path, output: Path, repeats: int, batch_size: int, chunk_rows: int
) -> dict[str, Any]:
    """Median wall time of `process_file` over `repeats` runs, as rows per second."""
    horizons = list(pipeline.config.horizons)
    scorer = BatchInference(pipeline, batch_size=batch_size, chunk_rows=chunk_rows)
    runs = []
    for _ in range(repeats):
        load = load_average()[0]
        result = scorer.process_file(path, horizon=horizons, output_path=output)
        runs.append({"seconds": round(result.total_time, 3), "load_1min": load})
    output.unlink(missing_ok=True)
    seconds = float(np.median([run["seconds"] for run in runs]))
    input_rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    scored = result.n_samples // len(horizons)  # process_file counts one row per horizon
    return {
        "input_rows": int(input_rows),
        "scored_rows": int(scored),
        "horizons": horizons,
        "chunk_rows": chunk_rows,
        "batch_size": batch_size,
        "median_seconds": round(seconds, 3),
        "min_seconds": min(run["seconds"] for run in runs),
        "rows_per_sec": round(scored / seconds, 1),
        "input_rows_per_sec": round(input_rows / seconds, 1),
        "runs": runs,
    }


def raw_model_time(pipeline: InferencePipeline, path: Path, repeats: int) -> dict[str, Any]:
    """Seconds of each native model over every scored row of the file (median of repeats)."""
    preparing, inputs = timed(lambda: pipeline.model_inputs(pl.read_parquet(path)))
    per_model = {}
    for horizon in pipeline.config.horizons:
        for name in pipeline.config.model_names:
            key = model_key(name, horizon)
            model = pipeline._models[key]
            runs = [native_seconds(model, inputs) for _ in range(_repeats_for(model, repeats))]
            per_model[key] = round(float(np.median(runs)), 3)
    total = sum(per_model.values())
    return {
        "scored_rows": inputs.n_scored,
        "seconds_per_model": per_model,
        "total_seconds": round(total, 3),
        "rows_per_sec": round(inputs.n_scored / total, 1),
        "prepare_seconds": round(preparing, 3),
        "load_1min": load_average()[0],
    }


def _repeats_for(model, repeats: int) -> int:
    """Sequence models over a million windows take minutes: time them once more at most."""
    return min(repeats, 2) if model.is_sequence else repeats


def native_seconds(model, inputs: ModelInputs) -> float:
    """Seconds of the native call(s) alone over every scored row; inputs copied outside the timer."""
    if model.is_sequence:
        return _torch_seconds(model, inputs)
    features = np.ascontiguousarray(inputs.tabular())
    call = _tabular_call(model)
    return timed(lambda: call(features))[0]


def _tabular_call(model):
    native, params = model.native, model.params
    if model.family == "xgboost":
        return native.inplace_predict
    if model.family == "lightgbm":
        return lambda features: native.predict(features, num_threads=params["n_jobs"])
    return lambda features: native.predict_proba(features, thread_count=params["n_jobs"])


def _torch_seconds(model, inputs: ModelInputs) -> float:
    native = model.native
    total = 0.0
    with torch.inference_mode():
        for block in inputs.sequences():
            for start in range(0, len(block), SEQUENCE_BATCH):
                windows = torch.from_numpy(np.ascontiguousarray(block[start : start + SEQUENCE_BATCH], np.float32))
                total += timed(lambda: native(windows))[0]
    return total
