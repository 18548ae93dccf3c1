"""Parity: the pipeline's probabilities equal the native models', and survive save -> load.

Two checks, both exact (every bundle component is stored in a format that round-trips
bit for bit, and the tree and torch predictors are deterministic per row):

- `check_native_parity(pipeline, df, horizon)`: each base model's RAW (uncalibrated)
  probabilities through the pipeline equal calling the model's native library object
  directly on the same scaled rows / sequences: `xgboost.Booster.predict(DMatrix)`,
  `lightgbm.Booster.predict`, `CatBoostClassifier.predict_proba`, and the torch module
  itself (its forward returns softmax probabilities).
- `check_stored_predictions(pipeline, horizon, inputs, day, stored)`: a predictions file
  as written holds, for sampled bars, the class, probabilities and bundle version that
  `pipeline` gives them (what was written, not only what would be).
- `compare_pipelines(expected, actual, df, horizon)`: two pipelines (e.g. before save
  and after load) give the same scaled features, the same (calibrated) probabilities per
  model and the same final probabilities; `check_roundtrip(pipeline, df, horizon)` saves
  and reloads a pipeline in a temporary folder and compares the two.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipeline_core.constants import PROBABILITY_COLUMNS
from pipeline_core.errors import ConfigError
from pipeline_core.pipeline import model_key

MAX_SHOWN = 5


@dataclass(frozen=True)
class ModelParity:
    """One compared output: a model's raw or calibrated probabilities, or the final ones."""

    name: str  # e.g. "xgboost_h20", or "final"
    stage: str  # "native", "raw", "calibrated" or "final"
    n_rows: int
    max_abs_diff: float  # inf when the shapes or the scored rows differ

    @property
    def passed(self) -> bool:
        return self.max_abs_diff == 0.0


@dataclass(frozen=True)
class ParityResult:
    passed: bool
    checks: tuple[ModelParity, ...]
    n_rows: int
    problem: str = ""  # set when the two sides did not score the same rows

    @property
    def max_abs_diff(self) -> dict[str, float]:
        """{"<name> <stage>": max |difference|} for every compared output."""
        return {f"{c.name} {c.stage}": c.max_abs_diff for c in self.checks}

    def summary(self) -> str:
        if self.problem:
            return self.problem
        failed = [c for c in self.checks if not c.passed]
        if not failed:
            return f"{len(self.checks)} outputs identical on {self.n_rows} rows"
        shown = ", ".join(f"{c.name} {c.stage} {c.max_abs_diff:.3g}" for c in failed[:MAX_SHOWN])
        return f"{len(failed)} of {len(self.checks)} outputs differ on {self.n_rows} rows: {shown}"


# ------------------------------------------------------------------- native calls


def _xgboost(booster, X: np.ndarray, threads: int) -> np.ndarray:
    import xgboost as xgb

    return booster.predict(xgb.DMatrix(X, missing=np.nan, nthread=threads))


def _lightgbm(booster, X: np.ndarray, threads: int) -> np.ndarray:
    return booster.predict(X, num_threads=threads)


def _catboost(classifier, X: np.ndarray, threads: int) -> np.ndarray:
    return classifier.predict_proba(X, thread_count=threads)


def _torch(module, X: np.ndarray, threads: int) -> np.ndarray:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            return module(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))).numpy()
    finally:
        torch.set_num_threads(previous)


# library name -> how to call that library's object directly (X, thread count)
NATIVE_CALLS: dict[str, Callable[[Any, np.ndarray, int], np.ndarray]] = {
    "xgboost": _xgboost,
    "lightgbm": _lightgbm,
    "catboost": _catboost,
    "torch": _torch,
}


def native_probabilities(model, X: np.ndarray) -> np.ndarray:
    """`model.native` called through its own library (not `predict_proba`), as float64.

    The call uses the model's own thread count (`n_jobs`, or `num_threads` for torch):
    per-row results do not depend on it, it only avoids oversubscribing the machine.
    """
    library = getattr(model, "library_name", None)
    if library not in NATIVE_CALLS:
        raise ConfigError(
            f"No native call for the {getattr(model, 'family', type(model).__name__)} model "
            f"(library {library!r}): expected one of {sorted(NATIVE_CALLS)}."
        )
    if len(X) == 0:
        return np.empty((0, 3))
    params = getattr(model, "params", {})
    threads = int(params.get("n_jobs") or params.get("num_threads") or _default_threads(library))
    return np.asarray(NATIVE_CALLS[library](model.native, X, threads), dtype=np.float64)


def _default_threads(library: str) -> int:
    if library == "torch":
        import torch

        return torch.get_num_threads()
    return 1


# ------------------------------------------------------------------------- checks


def check_native_parity(pipeline, df: Any, horizon: int, *, inputs=None, raw=None) -> ParityResult:
    """Each base model's raw probabilities through `pipeline` vs its native object called
    directly on the pipeline's own scaled rows / sequences of `df`. Pass `inputs`
    (`pipeline.model_inputs(df)`) to check several horizons of the same rows (df is then
    unused), and `raw` (`pipeline.base_model_probabilities(inputs, horizon)`) if computed."""
    inputs = pipeline.model_inputs(df) if inputs is None else inputs
    raw = pipeline.base_model_probabilities(inputs, horizon) if raw is None else raw
    checks = []
    for name in pipeline.config.model_names:
        key = model_key(name, horizon)
        model = pipeline.models[key]
        X = _model_input(inputs, model)
        checks.append(ModelParity(key, "native", len(X), max_abs_diff(raw[name], native_probabilities(model, X))))
    return ParityResult(passed=all(c.passed for c in checks), checks=tuple(checks), n_rows=inputs.n_scored)


def check_stored_predictions(
    pipeline, horizon: int, inputs, day: date, stored: pl.DataFrame, *, raw=None
) -> ModelParity:
    """A predictions file as written against `pipeline`'s own scoring of the sampled `inputs`
    (from the base models' `raw` probabilities, if given): each sampled bar of `day` must be
    in the file, from this bundle version, with the same class; the difference of the final
    probabilities, inf when a row is missing or differs."""
    scored = pipeline.score_inputs(inputs, horizon, raw=raw)
    expected = scored.to_frame().filter(pl.col("timestamp").dt.date() == day)
    joined = expected.join(stored, on=["symbol", "timestamp"], how="left", suffix="_stored")
    found = joined.drop_nulls("prediction_stored")
    same = (
        found.height == expected.height > 0
        and (found["prediction"] == found["prediction_stored"]).all()
        and (found["bundle_version"] == found["bundle_version_stored"]).all()
    )
    diff = max(float((found[c] - found[f"{c}_stored"]).abs().max()) for c in PROBABILITY_COLUMNS) if same else np.inf
    return ModelParity("stored file", "final", expected.height, diff)


def compare_pipelines(expected, actual, df: Any, horizon: int) -> ParityResult:
    """`actual` (e.g. the bundle after load) scores `df` exactly as `expected` (before save):
    scaled features, each model's output (calibrated when the pipeline calibrates) and the
    final probabilities and classes. When a model's output differs, the raw (uncalibrated)
    probabilities are compared too, to tell a changed model from a changed calibrator."""
    inputs_e, inputs_a = expected.model_inputs(df), actual.model_inputs(df)
    problem = _row_mismatch(inputs_e, inputs_a, expected.config.model_names, actual.config.model_names)
    if problem:
        return ParityResult(passed=False, checks=(), n_rows=inputs_e.n_scored, problem=problem)
    result_e, result_a = expected.score_inputs(inputs_e, horizon), actual.score_inputs(inputs_a, horizon)
    n = inputs_e.n_scored
    stage = "calibrated" if expected.config.use_calibration else "raw"
    checks = [ModelParity("scaled features", "input", n, max_abs_diff(inputs_e.scaled, inputs_a.scaled))]
    for name in expected.config.model_names:
        diff = max_abs_diff(result_e.model_outputs[name], result_a.model_outputs[name])
        checks.append(ModelParity(model_key(name, horizon), stage, n, diff))
    if stage == "calibrated" and not all(c.passed for c in checks[1:]):
        checks += _raw_checks(expected, actual, inputs_e, inputs_a, horizon)
    final = max_abs_diff(result_e.probabilities, result_a.probabilities)
    if not np.array_equal(result_e.predictions, result_a.predictions):
        final = float("inf")
    checks.append(ModelParity("final", "final", n, final))
    return ParityResult(passed=all(c.passed for c in checks), checks=tuple(checks), n_rows=n)


def _raw_checks(expected, actual, inputs_e, inputs_a, horizon: int) -> list[ModelParity]:
    raw_e = expected.base_model_probabilities(inputs_e, horizon)
    raw_a = actual.base_model_probabilities(inputs_a, horizon)
    return [
        ModelParity(model_key(name, horizon), "raw", inputs_e.n_scored, max_abs_diff(raw_e[name], raw_a[name]))
        for name in expected.config.model_names
    ]


def check_roundtrip(pipeline, df: Any, horizon: int) -> ParityResult:
    """Save `pipeline` to a temporary folder, load it back, and compare the two on `df`."""
    with tempfile.TemporaryDirectory(prefix="parity-") as folder:
        path = Path(folder) / "pipeline_roundtrip"
        pipeline.save(path)
        reloaded = type(pipeline).load(path)
    return compare_pipelines(pipeline, reloaded, df, horizon)


def max_abs_diff(expected: np.ndarray, actual: np.ndarray) -> float:
    """max |expected - actual|; NaN in both places counts as equal, shape mismatch as inf."""
    expected, actual = np.asarray(expected, np.float64), np.asarray(actual, np.float64)
    if expected.shape != actual.shape:
        return float("inf")
    if expected.size == 0:
        return 0.0
    both_nan = np.isnan(expected) & np.isnan(actual)
    diff = np.where(both_nan, 0.0, np.abs(expected - actual))
    return float(np.where(np.isnan(diff), np.inf, diff).max())


def _model_input(inputs, model) -> np.ndarray:
    """The exact array the pipeline feeds `model`: scaled rows, or all sequence windows."""
    if not model.is_sequence:
        return inputs.tabular()
    blocks = inputs.sequences()
    if not blocks:
        return np.empty((0, inputs.rows.sequence_length, inputs.scaled.shape[1]), np.float32)
    return np.concatenate(blocks)


def _row_mismatch(inputs_e, inputs_a, names_e: list[str], names_a: list[str]) -> str:
    if names_e != names_a:
        return f"The pipelines hold different models: {names_e} vs {names_a}."
    same_rows = np.array_equal(inputs_e.timestamps, inputs_a.timestamps) and np.array_equal(
        inputs_e.symbols, inputs_a.symbols
    )
    if not same_rows:
        return f"The pipelines score different rows: {inputs_e.n_scored} vs {inputs_a.n_scored}."
    return ""
