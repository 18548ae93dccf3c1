"""CatBoost direction model: MultiClass oblivious trees, saved as `.cbm`."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any, ClassVar

import catboost as cb
import numpy as np

from pipeline_core.constants import N_CLASSES
from pipeline_core.models.base import BaseDirectionModel, sample_weights, scoring_threads

MODEL_FILE = "model.cbm"
FORTRAN_BLOCK_ROWS = 8192


class CatBoostModel(BaseDirectionModel):
    """Oblivious-tree boosting on tabular features (n, n_features).

    `native` is a `catboost.CatBoostClassifier` shrunk to the best validation iteration;
    `native.predict_proba(X)` returns float64 (n, 3) equal to `predict_proba(X)`.
    Training writes no files (`allow_writing_files=False`).
    """

    family: ClassVar[str] = "catboost"
    is_sequence: ClassVar[bool] = False
    library_name: ClassVar[str] = "catboost"
    native_files: ClassVar[tuple[str, ...]] = (MODEL_FILE,)
    load_errors: ClassVar[tuple[type[Exception], ...]] = (cb.CatBoostError,)
    default_params: ClassVar[dict[str, Any]] = {
        "n_estimators": 300,
        "learning_rate": 0.1,
        "depth": 6,
        "l2_leaf_reg": 3.0,
        "max_bin": 254,
        "early_stopping_rounds": 30,
        "class_weight": None,
        "n_jobs": 2,
        "seed": 0,
    }

    def _fit_native(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray
    ) -> tuple[cb.CatBoostClassifier, dict[str, Any]]:
        p = self.params
        model = cb.CatBoostClassifier(
            loss_function="MultiClass",
            class_names=list(range(N_CLASSES)),
            iterations=p["n_estimators"],
            learning_rate=p["learning_rate"],
            depth=p["depth"],
            l2_leaf_reg=p["l2_leaf_reg"],
            border_count=p["max_bin"],
            early_stopping_rounds=p["early_stopping_rounds"],
            use_best_model=True,
            thread_count=p["n_jobs"],
            random_seed=p["seed"],
            allow_writing_files=False,
            verbose=False,
        )
        val = cb.Pool(X_val, label=y_val, weight=sample_weights(y_val, p["class_weight"]))
        model.fit(X, y, sample_weight=sample_weights(y, p["class_weight"]), eval_set=val)
        state = {"best_iteration": int(model.get_best_iteration()),
                 "n_trees": int(model.tree_count_)}
        return model, state

    def _predict_native(self, X: np.ndarray) -> np.ndarray:
        # CatBoost reads a Fortran-ordered float32 array into its Pool about 5x faster than a
        # C-ordered one (0.07 vs 0.5 ms for 100 rows): the copy costs less than it saves.
        X = _fortran_float32(X)
        return self.model_.predict_proba(X, thread_count=scoring_threads(len(X), self.params["n_jobs"]))

    def _save_native(self, folder: Path) -> None:
        path = folder / MODEL_FILE
        try:
            self.model_.save_model(str(path), format="cbm")
        except cb.CatBoostError as err:  # a short write (full disk) is CatBoost's own error, naming no file
            raise OSError(errno.EIO, f"CatBoost could not write the model ({str(err).splitlines()[0]})", str(path)) from err

    def _load_native(self, folder: Path) -> cb.CatBoostClassifier:
        model = cb.CatBoostClassifier(thread_count=self.params["n_jobs"])
        model.load_model(str(folder / MODEL_FILE), format="cbm")
        return model


def _fortran_float32(X: np.ndarray) -> np.ndarray:
    """X as Fortran-ordered float32, copied a block of rows at a time: a tall array
    transposes in cache that way, 3x faster than `np.asfortranarray` (10 vs 29 ms for
    250,000 x 31)."""
    if X.dtype == np.float32 and X.flags.f_contiguous:
        return X
    out = np.empty(X.shape, dtype=np.float32, order="F")
    for start in range(0, len(X), FORTRAN_BLOCK_ROWS):
        out[start : start + FORTRAN_BLOCK_ROWS] = X[start : start + FORTRAN_BLOCK_ROWS]
    return out
