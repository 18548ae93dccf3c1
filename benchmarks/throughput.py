"""Batch throughput of `BatchInference.process_file`, and the same rows through the raw
native models alone (features precomputed and scaled), whose ratio is the pipeline's
own overhead.

"Raw" means the library call the model wraps, with the threads the wrapper uses:
`Booster.inplace_predict` (xgboost), `Booster.predict` (lightgbm),
`CatBoostClassifier.predict_proba`, and the torch `nn.Module` on contiguous float32
windows (copied outside the timer). Everything else a scored row costs (reading,
validation, features, scaling, window copies, calibration, ensemble, output frame,
parquet writing) is pipeline overhead.

On a shared machine the load changes from one minute to the next, so `process_file`
runs and raw-model runs alternate, and the overhead is the median of the per-pair
ratios (wall and CPU time), not a ratio of medians taken minutes apart.
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


def throughput(
    pipeline: InferencePipeline, path: Path, output: Path, repeats: int, batch_size: int, chunk_rows: int,
    batch: bool = True, raw: bool = True,
) -> dict[str, Any]:
    """`repeats` process_file runs and/or raw-model passes over the same rows, alternated."""
    horizons = list(pipeline.config.horizons)
    scorer = BatchInference(pipeline, batch_size=batch_size, chunk_rows=chunk_rows)
    inputs, preparing = None, None
    if raw:
        preparing, _, inputs = timed(lambda: pipeline.model_inputs(pl.read_parquet(path)))
    batch_runs, raw_runs, scored = [], [], 0
    for _ in range(repeats):
        if batch:
            load = load_average()[0]
            _, cpu, result = timed(lambda: scorer.process_file(path, horizon=horizons, output_path=output))
            batch_runs.append({"seconds": round(result.total_time, 4), "cpu_seconds": round(cpu, 4), "load_1min": load})
            scored = result.n_rows  # input rows, each once (result.n_samples counts rows x horizons)
        if raw:
            raw_runs.append(_raw_pass(pipeline, inputs))
    output.unlink(missing_ok=True)
    out: dict[str, Any] = {}
    if batch:
        out["batch"] = _batch_summary(batch_runs, scored, path, horizons, chunk_rows, batch_size)
    if raw:
        out["raw"] = _raw_summary(raw_runs, inputs.n_scored, preparing)
    if batch and raw:
        out["overhead"] = {
            "pair_ratios": [round(b["seconds"] / r["seconds"], 3) for b, r in zip(batch_runs, raw_runs)],
            "pair_ratios_cpu": [round(b["cpu_seconds"] / r["cpu_seconds"], 3) for b, r in zip(batch_runs, raw_runs)],
        }
        out["overhead"]["median_ratio"] = round(float(np.median(out["overhead"]["pair_ratios"])), 3)
        out["overhead"]["median_ratio_cpu"] = round(float(np.median(out["overhead"]["pair_ratios_cpu"])), 3)
    return out


def _batch_summary(runs, scored: int, path: Path, horizons, chunk_rows: int, batch_size: int) -> dict[str, Any]:
    seconds = float(np.median([run["seconds"] for run in runs]))
    cpu_seconds = float(np.median([run["cpu_seconds"] for run in runs]))
    input_rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    return {
        "input_rows": int(input_rows),
        "scored_rows": int(scored),
        "horizons": horizons,
        "chunk_rows": chunk_rows,
        "batch_size": batch_size,
        "median_seconds": round(seconds, 4),
        "min_seconds": min(run["seconds"] for run in runs),
        "rows_per_sec": round(scored / seconds, 1),
        "horizon_rows_per_sec": round(scored * len(horizons) / seconds, 1),
        "input_rows_per_sec": round(input_rows / seconds, 1),
        "median_cpu_seconds": round(cpu_seconds, 4),
        "rows_per_cpu_sec": round(scored / cpu_seconds, 1),
        "runs": runs,
    }


def _raw_pass(pipeline: InferencePipeline, inputs: ModelInputs) -> dict[str, Any]:
    """Every model of every horizon once over all scored rows: wall and CPU seconds."""
    per_model = {}
    for horizon in pipeline.config.horizons:
        for name in pipeline.config.model_names:
            key = model_key(name, horizon)
            per_model[key] = native_seconds(pipeline.models[key], inputs)
    return {
        "seconds": sum(wall for wall, _ in per_model.values()),
        "cpu_seconds": sum(cpu for _, cpu in per_model.values()),
        "per_model": per_model,
        "load_1min": load_average()[0],
    }


def _raw_summary(runs, scored: int, preparing: float) -> dict[str, Any]:
    total, total_cpu = (float(np.median([run[key] for run in runs])) for key in ("seconds", "cpu_seconds"))
    keys = list(runs[0]["per_model"])
    return {
        "scored_rows": scored,
        "seconds_per_model": {k: round(float(np.median([r["per_model"][k][0] for r in runs])), 4) for k in keys},
        "cpu_seconds_per_model": {k: round(float(np.median([r["per_model"][k][1] for r in runs])), 4) for k in keys},
        "total_seconds": round(total, 4),
        "total_cpu_seconds": round(total_cpu, 4),
        "rows_per_sec": round(scored / total, 1),
        "rows_per_cpu_sec": round(scored / total_cpu, 1),
        "prepare_seconds": round(preparing, 3),
        "runs": [{"seconds": round(r["seconds"], 4), "cpu_seconds": round(r["cpu_seconds"], 4),
                  "load_1min": r["load_1min"]} for r in runs],
    }


def native_seconds(model, inputs: ModelInputs) -> tuple[float, float]:
    """Wall and CPU seconds of the native call(s) alone over every scored row; inputs
    copied outside the timer (float32, in the layout the library reads fastest: Fortran
    order for CatBoost, C order otherwise)."""
    if model.is_sequence:
        return _torch_seconds(model, inputs)
    layout = np.asfortranarray if model.family == "catboost" else np.ascontiguousarray
    features = layout(inputs.tabular())
    call = _tabular_call(model)
    return timed(lambda: call(features))[:2]


def _tabular_call(model):
    native, params = model.native, model.params
    if model.family == "xgboost":
        return native.inplace_predict
    if model.family == "lightgbm":
        return lambda features: native.predict(features, num_threads=params["n_jobs"])
    return lambda features: native.predict_proba(features, thread_count=params["n_jobs"])


def _torch_seconds(model, inputs: ModelInputs) -> tuple[float, float]:
    native = model.native
    wall = cpu = 0.0
    with torch.inference_mode():
        for block in inputs.sequences():
            for start in range(0, len(block), SEQUENCE_BATCH):
                windows = torch.from_numpy(np.ascontiguousarray(block[start : start + SEQUENCE_BATCH], np.float32))
                seconds, cpu_seconds, _ = timed(lambda: native(windows))
                wall, cpu = wall + seconds, cpu + cpu_seconds
    return wall, cpu
