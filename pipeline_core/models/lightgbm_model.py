"""LightGBM direction model: multiclass trees, saved as LightGBM's text model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np

from pipeline_core.constants import N_CLASSES
from pipeline_core.models.base import BaseDirectionModel, sample_weights, scoring_threads

MODEL_FILE = "model.txt"


class LightGBMModel(BaseDirectionModel):
    """Gradient-boosted trees on tabular features (n, n_features).

    `native` is a `lightgbm.Booster` holding exactly the trees up to the best validation
    iteration; `native.predict(X)` returns float64 (n, 3) probabilities equal to
    `predict_proba(X)`.
    """

    family: ClassVar[str] = "lightgbm"
    is_sequence: ClassVar[bool] = False
    library_name: ClassVar[str] = "lightgbm"
    native_files: ClassVar[tuple[str, ...]] = (MODEL_FILE,)
    load_errors: ClassVar[tuple[type[Exception], ...]] = (lgb.basic.LightGBMError,)
    default_params: ClassVar[dict[str, Any]] = {
        "n_estimators": 300,
        "learning_rate": 0.1,
        "num_leaves": 31,
        "max_depth": -1,
        "min_child_samples": 20,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
        "max_bin": 255,
        "early_stopping_rounds": 30,
        "class_weight": None,
        "n_jobs": 2,
        "seed": 0,
    }

    def _fit_native(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray
    ) -> tuple[lgb.Booster, dict[str, Any]]:
        p = self.params
        params = _booster_params(p)
        train = lgb.Dataset(X, label=y, weight=sample_weights(y, p["class_weight"]),
                            params=params)
        val = lgb.Dataset(X_val, label=y_val, weight=sample_weights(y_val, p["class_weight"]),
                          reference=train)
        stopper = lgb.early_stopping(p["early_stopping_rounds"], verbose=False)
        booster = lgb.train(params, train, num_boost_round=p["n_estimators"],
                            valid_sets=[val], callbacks=[stopper])
        best = int(booster.best_iteration) if booster.best_iteration > 0 else None
        # Rebuild from the same text `save` writes, so the in-memory booster is the one
        # `load` returns (the text format keeps thresholds and leaf values exactly).
        text = booster.model_to_string(num_iteration=best)
        state = {"best_iteration": best or int(booster.current_iteration())}
        return lgb.Booster(model_str=text), state

    def _predict_native(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(X, num_threads=scoring_threads(len(X), self.params["n_jobs"]))

    def _save_native(self, folder: Path) -> None:
        (folder / MODEL_FILE).write_bytes(self.model_.model_to_string().encode())  # = save_model; a short write is an OSError

    def _load_native(self, folder: Path) -> lgb.Booster:
        return lgb.Booster(model_file=folder / MODEL_FILE)


def _booster_params(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "objective": "multiclass",
        "num_class": N_CLASSES,
        "learning_rate": p["learning_rate"],
        "num_leaves": p["num_leaves"],
        "max_depth": p["max_depth"],
        "min_data_in_leaf": p["min_child_samples"],
        "bagging_fraction": p["subsample"],
        "bagging_freq": 1 if p["subsample"] < 1.0 else 0,
        "feature_fraction": p["colsample_bytree"],
        "lambda_l2": p["reg_lambda"],
        "max_bin": p["max_bin"],
        "num_threads": p["n_jobs"],
        "seed": p["seed"],
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }
