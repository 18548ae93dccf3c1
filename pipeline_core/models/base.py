"""The model protocol shared by every family, and the plumbing they all reuse.

Classes are -1 / 0 / 1. Models take `y` as class indices 0 / 1 / 2 (index 0 = -1 down,
1 = 0 flat, 2 = +1 up) and `predict_proba` returns float64 (n, 3) in that column order.

A fitted model is saved into one folder: the library's own safe format for the learned
state plus `config.json` (family, parameters, input shape, family-specific state). No
file is ever a pickle, so loading a folder never executes code from it.
"""

from __future__ import annotations

import importlib
import json
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pipeline_core.constants import N_CLASSES
from pipeline_core.errors import BundleError, ConfigError, DataValidationError, NotFittedError
from pipeline_core.models.host_load import cpus_busy_elsewhere

MODEL_FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
MAX_NAMES_SHOWN = 5
# Below this many rows a model scores on one thread: waking a thread pool costs more than
# the rows, and on a loaded host idle pool threads compete with the other stages.
SMALL_INPUT_ROWS = 2048


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def scoring_threads(n_rows: int, configured: int | None) -> int:
    """Threads to score `n_rows` with: one for small inputs, otherwise the configured
    count (all usable CPUs if None) capped at the usable CPUs that other processes are
    not using at this moment, so a model never asks for more threads than can run at
    once (the results do not depend on the thread count)."""
    if n_rows < SMALL_INPUT_ROWS:
        return 1
    cpus = usable_cpus()
    free = max(cpus - cpus_busy_elsewhere(), 1)
    return max(1, min(int(configured or cpus), free))


class BaseDirectionModel(ABC):
    """Parameters in `__init__`, learned state in `fit`, one folder on disk.

    Subclasses set `family`, `is_sequence`, `default_params` and `native_files`, and
    implement `_fit_native`, `_predict_native`, `_save_native` and `_load_native`.
    Fitted attributes: `model_` (the native object), `n_features_in_`,
    `sequence_length_` (sequence models; None for tabular ones) and `state_` (a
    JSON-serializable dict of family-specific facts such as the best iteration).
    """

    family: ClassVar[str]
    is_sequence: ClassVar[bool]
    default_params: ClassVar[dict[str, Any]]
    native_files: ClassVar[tuple[str, ...]]
    library_name: ClassVar[str]
    # What the library raises on a damaged file; `load` turns these into BundleError.
    load_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.default_params))
        if unknown:
            raise ConfigError(
                f"Unknown parameter(s) {unknown[:MAX_NAMES_SHOWN]} for the {self.family} "
                f"model: expected a subset of {sorted(self.default_params)}."
            )
        self.params = {**self.default_params, **params}

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.params.items() if self.default_params[k] != v}
        args = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"{type(self).__name__}({args})"

    def get_params(self) -> dict[str, Any]:
        """The effective parameters (defaults merged with what `__init__` received)."""
        return dict(self.params)

    # ----------------------------------------------------------------- public API
    def fit(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray
    ) -> BaseDirectionModel:
        """Fit on (X, y), early-stopping on (X_val, y_val); returns self."""
        X, y = self._validate_training_pair(X, y, "X", "y")
        X_val, y_val = self._validate_training_pair(X_val, y_val, "X_val", "y_val")
        if X_val.shape[1:] != X.shape[1:]:
            raise DataValidationError(
                f"X_val has shape {X_val.shape[1:]} per row, but X has {X.shape[1:]}: "
                "build the validation set with the same features (and sequence length)."
            )
        if len(np.unique(y)) < 2:
            raise DataValidationError(
                f"y holds a single class ({int(y[0])}): expected at least two of the class "
                "indices 0/1/2. Use a longer training window or revisit the label barriers."
            )
        model, state = self._fit_native(X, y, X_val, y_val)
        self.model_, self.state_ = model, state
        self.n_features_in_ = int(X.shape[-1])
        self.sequence_length_ = int(X.shape[1]) if self.is_sequence else None
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, float64 (n, 3), columns for classes -1 / 0 / 1."""
        self._check_is_fitted()
        X = self._validate_X(X, "X")
        if X.shape[0] == 0:
            return np.empty((0, N_CLASSES), dtype=np.float64)
        return self._predict_native(X)

    @property
    def native(self) -> Any:
        """The underlying library object; calling it directly gives `predict_proba`."""
        self._check_is_fitted()
        return self.model_

    def save(self, folder: Path) -> None:
        """Write the fitted model into `folder` (created if needed), nothing elsewhere."""
        self._check_is_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._save_native(folder)
        config = {
            "format_version": MODEL_FORMAT_VERSION,
            "family": self.family,
            "params": self.params,
            "n_features_in": self.n_features_in_,
            "sequence_length": self.sequence_length_,
            "library": {"name": self.library_name, "version": _library_version(self)},
            "state": self.state_,
        }
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))

    @classmethod
    def load(cls, folder: Path) -> BaseDirectionModel:
        """Rebuild a model saved by `save`; raises `BundleError` if the folder is unusable."""
        folder = Path(folder)
        config = read_model_config(folder)
        if config["family"] != cls.family:
            raise BundleError(
                f"{folder} holds a {config['family']!r} model, not {cls.family!r}: load it "
                f"with load_model({config['family']!r}, folder)."
            )
        missing = [name for name in cls.native_files if not (folder / name).is_file()]
        if missing:
            raise BundleError(
                f"{folder} is missing {missing}: expected {list(cls.native_files)} and "
                f"{CONFIG_FILE} as written by {cls.__name__}.save. Re-save the model."
            )
        model = cls(**config["params"])
        model.n_features_in_ = int(config["n_features_in"])
        model.sequence_length_ = config["sequence_length"]
        model.state_ = config["state"]
        try:
            model.model_ = model._load_native(folder)
        except (OSError, ValueError, RuntimeError, KeyError, TypeError, *cls.load_errors) as err:
            raise BundleError(
                f"Cannot read the {cls.family} model in {folder}: {err}. The files are "
                "damaged or were written by an incompatible version; re-save the model."
            ) from err
        return model

    # ------------------------------------------------------------ family hooks
    @abstractmethod
    def _fit_native(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray
    ) -> tuple[Any, dict[str, Any]]:
        """Train; return (native object, JSON-serializable state)."""

    @abstractmethod
    def _predict_native(self, X: np.ndarray) -> np.ndarray:
        """Probabilities for validated, non-empty X."""

    @abstractmethod
    def _save_native(self, folder: Path) -> None:
        """Write `native_files` into folder."""

    @abstractmethod
    def _load_native(self, folder: Path) -> Any:
        """Read the native object back (params, shape and state_ are already set)."""

    # -------------------------------------------------------------- validation
    def _check_is_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call fit(X, y, X_val, y_val) "
                "or load a saved model before predict_proba, native or save."
            )

    def _validate_X(self, X: np.ndarray, name: str, against_fit: bool = True) -> np.ndarray:
        """Check rank (and shape against what fit saw).

        Tabular X comes back as float32 (no copy if it already is). Sequence X is left
        as given, possibly a strided window view: converting it here would copy the
        whole (n, length, features) array, so the torch models copy per mini-batch.
        """
        X = np.asarray(X)
        rank = 3 if self.is_sequence else 2
        expected = "(n, sequence_length, n_features)" if self.is_sequence else "(n, n_features)"
        if X.ndim != rank:
            raise DataValidationError(
                f"{name} has shape {X.shape}, but the {self.family} model expects {expected}."
            )
        if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
            raise DataValidationError(
                f"{name} has dtype {X.dtype}: expected real numbers (float32 preferred)."
            )
        if against_fit:
            self._check_fitted_shape(X, name)
        return X if self.is_sequence else X.astype(np.float32, copy=False)

    def _check_fitted_shape(self, X: np.ndarray, name: str) -> None:
        n_fitted = self.n_features_in_
        if X.shape[-1] != n_fitted:
            raise DataValidationError(
                f"{name} has {X.shape[-1]} features, but the model was fitted with {n_fitted}."
            )
        length = self.sequence_length_
        if length is not None and X.shape[1] != length:
            raise DataValidationError(
                f"{name} has sequences of length {X.shape[1]}, but the model was fitted "
                f"with length {length}: build windows with the configured sequence_length."
            )

    def _validate_training_pair(
        self, X: np.ndarray, y: np.ndarray, x_name: str, y_name: str
    ) -> tuple[np.ndarray, np.ndarray]:
        X = self._validate_X(X, x_name, against_fit=False)
        y = validate_class_indices(y, y_name)
        if X.shape[0] != y.shape[0] or X.shape[0] == 0:
            raise DataValidationError(
                f"{x_name} has {X.shape[0]} rows and {y_name} has {y.shape[0]}: expected the "
                "same, non-zero number of rows."
            )
        if not self.is_sequence and np.isinf(X).any():
            raise DataValidationError(
                f"{x_name} contains infinite values: expected finite features (NaN is "
                "allowed for tree models and means 'missing')."
            )
        return X, y


def validate_class_indices(y: np.ndarray, name: str = "y") -> np.ndarray:
    """Return `y` as int64 class indices 0/1/2, or raise naming the bad values."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataValidationError(f"{name} has shape {y.shape}: expected a 1-D array.")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating) or not np.all(np.mod(y, 1) == 0):
            raise DataValidationError(
                f"{name} has dtype {y.dtype} with non-integer values: expected class "
                "indices 0/1/2."
            )
    bad = np.setdiff1d(np.unique(y), np.arange(N_CLASSES))
    if bad.size:
        raise DataValidationError(
            f"{name} contains values {bad[:MAX_NAMES_SHOWN].tolist()}: expected class indices "
            "0/1/2 (index 0 = -1 down, 1 = 0 flat, 2 = +1 up). Map labels with y + 1."
        )
    return y.astype(np.int64, copy=False)


def balanced_class_weights(y: np.ndarray) -> np.ndarray:
    """Weights n / (3 * count) per class index (0 for classes absent from y)."""
    counts = np.bincount(y, minlength=N_CLASSES).astype(np.float64)
    weights = np.zeros(N_CLASSES)
    present = counts > 0
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights


def sample_weights(y: np.ndarray, class_weight: str | None) -> np.ndarray | None:
    """Per-row weights for `class_weight` ("balanced" or None)."""
    if class_weight is None:
        return None
    if class_weight != "balanced":
        raise ConfigError(
            f"class_weight={class_weight!r} is not supported: expected 'balanced' or None."
        )
    return balanced_class_weights(y)[y]


def read_model_config(folder: Path) -> dict[str, Any]:
    """Read and check `config.json` of a saved model folder."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise BundleError(
            f"{path} does not exist: expected a model folder written by a model's save()."
        )
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise BundleError(f"{path} is not valid JSON: {err}. Re-save the model.") from err
    version = config.get("format_version")
    if not isinstance(version, int) or version > MODEL_FORMAT_VERSION:
        raise BundleError(
            f"{path} has model format version {version!r}, but this code reads versions up "
            f"to {MODEL_FORMAT_VERSION}: upgrade pipeline_core to load it."
        )
    required = {"family", "params", "n_features_in", "sequence_length", "state"}
    missing = sorted(required - set(config))
    if missing:
        raise BundleError(f"{path} lacks the field(s) {missing}: re-save the model.")
    return config


def _library_version(model: BaseDirectionModel) -> str:
    module = importlib.import_module(model.library_name)
    return str(getattr(module, "__version__", "unknown"))
