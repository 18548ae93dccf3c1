"""XGBoost direction model: `hist` trees, multi:softprob, saved as UBJSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import xgboost as xgb

from pipeline_core.constants import N_CLASSES
from pipeline_core.models.base import BaseDirectionModel, sample_weights, scoring_threads

MODEL_FILE = "model.ubj"


class XGBoostModel(BaseDirectionModel):
    """Gradient-boosted trees on tabular features (n, n_features).

    `native` is an `xgboost.Booster` holding exactly the trees up to the best validation
    iteration; `native.inplace_predict(X)` returns float32 (n, 3) probabilities, and
    `predict_proba(X)` is that array as float64.
    """

    family: ClassVar[str] = "xgboost"
    is_sequence: ClassVar[bool] = False
    library_name: ClassVar[str] = "xgboost"
    native_files: ClassVar[tuple[str, ...]] = (MODEL_FILE,)
    default_params: ClassVar[dict[str, Any]] = {
        "n_estimators": 300,
        "learning_rate": 0.1,
        "max_depth": 6,
        "min_child_weight": 1.0,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
        "max_bin": 256,
        "early_stopping_rounds": 30,
        "class_weight": None,
        "n_jobs": 2,
        "seed": 0,
    }

    def _fit_native(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray
    ) -> tuple[xgb.Booster, dict[str, Any]]:
        p = self.params
        train = xgb.QuantileDMatrix(
            X, label=y, weight=sample_weights(y, p["class_weight"]),
            max_bin=p["max_bin"], nthread=p["n_jobs"],
        )
        val = xgb.QuantileDMatrix(
            X_val, label=y_val, weight=sample_weights(y_val, p["class_weight"]),
            ref=train, nthread=p["n_jobs"],
        )
        booster = xgb.train(
            _booster_params(p), train, num_boost_round=p["n_estimators"],
            evals=[(val, "val")], early_stopping_rounds=p["early_stopping_rounds"],
            verbose_eval=False,
        )
        best = int(booster.best_iteration)
        # Keep only the best trees, through the same bytes `save` writes, so the
        # in-memory booster is the one `load` returns.
        raw = booster[: best + 1].save_raw(raw_format="ubj")
        state = {"best_iteration": best, "n_trees_trained": int(booster.num_boosted_rounds())}
        return self._booster_from(raw), state

    def _predict_native(self, X: np.ndarray) -> np.ndarray:
        threads = scoring_threads(len(X), self.params["n_jobs"])
        if threads != getattr(self, "_nthread", None):
            self.model_.set_param({"nthread": threads})  # a runtime setting: predictions do not change
            self._nthread = threads
        return self.model_.inplace_predict(X).astype(np.float64)

    def _save_native(self, folder: Path) -> None:
        (folder / MODEL_FILE).write_bytes(self.model_.save_raw(raw_format="ubj"))  # = save_model; a short write is an OSError

    def _load_native(self, folder: Path) -> xgb.Booster:
        return self._booster_from(folder / MODEL_FILE)

    def _booster_from(self, source: bytearray | Path) -> xgb.Booster:
        booster = xgb.Booster(model_file=source if isinstance(source, bytearray) else str(source))
        booster.set_param({"nthread": self.params["n_jobs"], "verbosity": 0})
        self._nthread = self.params["n_jobs"]
        return booster


def _booster_params(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "objective": "multi:softprob",
        "num_class": N_CLASSES,
        "tree_method": "hist",
        "eval_metric": "mlogloss",
        "eta": p["learning_rate"],
        "max_depth": p["max_depth"],
        "min_child_weight": p["min_child_weight"],
        "subsample": p["subsample"],
        "colsample_bytree": p["colsample_bytree"],
        "lambda": p["reg_lambda"],
        "max_bin": p["max_bin"],
        "nthread": p["n_jobs"],
        "seed": p["seed"],
        "verbosity": 0,
    }
