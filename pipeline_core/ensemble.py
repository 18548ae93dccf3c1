"""Ensembles of calibrated base-model probabilities: stacking, soft voting, or one model.

Both take the base models' (n, 3) probabilities as a list in a fixed model order, or
as a mapping name -> probabilities (then ordered by the names seen at fit, which is the
safer call). Both are saved as plain JSON (`to_dict` / `ensemble_from_dict`) and give
bit-identical probabilities after a round trip.

Each row's result depends on that row only, bit for bit: the linear maps are written as
elementwise sums in a fixed order rather than a BLAS matrix product, whose summation
order can change with the number of rows (a single row takes a different kernel). The
lookahead check compares a row scored alone with the same row scored in a partition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import TimeSeriesSplit

from pipeline_core.calibration import softmax, validate_probabilities
from pipeline_core.constants import N_CLASSES
from pipeline_core.errors import ConfigError, DataValidationError, NotFittedError
from pipeline_core.models.base import validate_class_indices

ENSEMBLE_FORMAT_VERSION = 2  # 2: the single-model method and the selection record
ProbInput = Sequence[np.ndarray] | Mapping[str, np.ndarray]


class StackingEnsemble:
    """Multinomial logistic meta-learner on the log of calibrated probabilities.

    Features are log(clip(p, eps, 1)) of every base model, concatenated in model order
    (3 per model). Fit it on time-ordered out-of-fold calibrated probabilities (the
    caller builds the folds). Prediction is softmax(features @ coef_.T + intercept_),
    computed here row by row in numpy, so a model rebuilt from JSON gives the same bits.
    `C="auto"` picks the regularisation by time-ordered cross-validation on log-loss
    (rows must be passed in time order): calibrated base models are strongly collinear
    and a weak signal needs strong shrinkage, toward plain averaging.
    Learned: `coef_` (3, 3 * n_models), `intercept_` (3,), `classes_`, `C_`, `n_models_`,
    `model_names_`.
    """

    method: ClassVar[str] = "stacking"

    def __init__(
        self, model_names: Sequence[str] | None = None, C: float | str = "auto",
        max_iter: int = 1000, eps: float = 1e-6,
    ) -> None:
        self.model_names = model_names
        self.C = C
        self.max_iter = max_iter
        self.eps = eps

    def fit(self, prob_list: ProbInput, y: np.ndarray) -> StackingEnsemble:
        """Fit the meta-learner on out-of-fold probabilities and class indices 0/1/2."""
        names, probs = _resolve_inputs(prob_list, self.model_names)
        y = validate_class_indices(y)
        _check_rows(probs, len(y))
        missing = sorted(set(range(N_CLASSES)) - set(np.unique(y).tolist()))
        if missing:
            raise DataValidationError(
                f"y lacks the class indices {missing}: the stacking meta-learner needs all "
                "three classes. Use more out-of-fold rows, or VotingEnsemble."
            )
        meta = _meta_learner(self.C, self.max_iter).fit(_stack_features(probs, self.eps), y)
        self.C_ = float(meta.C_) if self.C == "auto" else float(self.C)
        self.coef_ = meta.coef_.astype(np.float64)
        self.intercept_ = meta.intercept_.astype(np.float64)
        self.classes_ = meta.classes_.astype(np.int64)
        self.n_models_ = len(probs)
        self.model_names_ = names
        return self

    def predict_proba(self, prob_list: ProbInput) -> np.ndarray:
        """Ensemble probabilities, float64 (n, 3), columns for classes -1 / 0 / 1."""
        _check_fitted(self, "coef_")
        probs = _ordered_inputs(prob_list, self.model_names_)
        _check_rows(probs, len(probs[0]), allow_empty=True)
        features = _stack_features(probs, self.eps)
        return softmax(_row_wise_affine(features, self.coef_, self.intercept_))

    def to_dict(self) -> dict[str, Any]:
        _check_fitted(self, "coef_")
        return {
            "method": self.method,
            "format_version": ENSEMBLE_FORMAT_VERSION,
            "params": {"C": self.C, "max_iter": int(self.max_iter), "eps": float(self.eps)},
            "chosen_C": self.C_,
            "model_names": list(self.model_names_),
            "classes": self.classes_.tolist(),
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_.tolist(),
            "selection": getattr(self, "selection_", None),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StackingEnsemble:
        _check_header(data, cls.method)
        try:
            ensemble = cls(model_names=list(data["model_names"]), **data["params"])
            coef = np.asarray(data["coef"], dtype=np.float64)
            intercept = np.asarray(data["intercept"], dtype=np.float64)
            classes = np.asarray(data["classes"], dtype=np.int64)
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(
                f"Stacking ensemble dict is incomplete or malformed ({err!r}): expected "
                "params, model_names, classes, coef and intercept as written by to_dict()."
            ) from err
        n_models = len(ensemble.model_names)
        if coef.shape != (N_CLASSES, N_CLASSES * n_models) or intercept.shape != (N_CLASSES,):
            raise ConfigError(
                f"Stacking ensemble has coef {coef.shape} and intercept {intercept.shape}: "
                f"expected ({N_CLASSES}, {N_CLASSES * n_models}) and ({N_CLASSES},) for "
                f"{n_models} models."
            )
        ensemble.coef_, ensemble.intercept_, ensemble.classes_ = coef, intercept, classes
        ensemble.C_ = float(data.get("chosen_C", ensemble.C if ensemble.C != "auto" else np.nan))
        ensemble.n_models_, ensemble.model_names_ = n_models, ensemble.model_names
        return _with_selection(ensemble, data)


class VotingEnsemble:
    """Soft voting: the weighted mean of the base models' probabilities.

    `weights=None` (or all equal) is the plain mean; otherwise weights are normalised
    to sum to 1. `fit` only checks the inputs and fixes the model order (`y` unused).
    Learned: `weights_` (normalised), `n_models_`, `model_names_`.
    """

    method: ClassVar[str] = "voting"

    def __init__(
        self, weights: Sequence[float] | None = None, model_names: Sequence[str] | None = None
    ) -> None:
        self.weights = weights
        self.model_names = model_names

    def fit(self, prob_list: ProbInput, y: np.ndarray | None = None) -> VotingEnsemble:
        names, probs = _resolve_inputs(prob_list, self.model_names)
        _check_rows(probs, len(probs[0]) if y is None else len(validate_class_indices(y)))
        self.weights_ = _normalised_weights(self.weights, len(probs))
        self.n_models_ = len(probs)
        self.model_names_ = names
        return self

    def predict_proba(self, prob_list: ProbInput) -> np.ndarray:
        """Ensemble probabilities, float64 (n, 3), columns for classes -1 / 0 / 1."""
        _check_fitted(self, "weights_")
        probs = _ordered_inputs(prob_list, self.model_names_)
        _check_rows(probs, len(probs[0]), allow_empty=True)
        if np.all(self.weights_ == self.weights_[0]):
            return np.stack(probs).mean(axis=0)
        total = self.weights_[0] * probs[0]
        for weight, p in zip(self.weights_[1:], probs[1:]):
            total = total + weight * p  # elementwise, fixed order: no BLAS (see module doc)
        return total

    def to_dict(self) -> dict[str, Any]:
        _check_fitted(self, "weights_")
        return {
            "method": self.method,
            "format_version": ENSEMBLE_FORMAT_VERSION,
            "model_names": list(self.model_names_),
            "weights": None if self.weights is None else [float(w) for w in self.weights],
            "selection": getattr(self, "selection_", None),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VotingEnsemble:
        _check_header(data, cls.method)
        try:
            names = list(data["model_names"])
            ensemble = cls(weights=data["weights"], model_names=names)
        except (KeyError, TypeError) as err:
            raise ConfigError(
                f"Voting ensemble dict is incomplete ({err!r}): expected model_names and "
                "weights as written by to_dict()."
            ) from err
        ensemble.weights_ = _normalised_weights(ensemble.weights, len(names))
        ensemble.n_models_, ensemble.model_names_ = len(names), names
        return _with_selection(ensemble, data)


class SingleModelEnsemble:
    """One base model's calibrated probabilities, unchanged: the best single model.

    `fit` picks the model with the lowest log-loss on the given out-of-fold rows, unless
    `model_name` names it. Learned: `model_name_`, `model_names_`, `n_models_`.
    """

    method: ClassVar[str] = "single"

    def __init__(self, model_name: str | None = None, model_names: Sequence[str] | None = None) -> None:
        self.model_name = model_name
        self.model_names = model_names

    def fit(self, prob_list: ProbInput, y: np.ndarray | None = None) -> SingleModelEnsemble:
        names, probs = _resolve_inputs(prob_list, self.model_names)
        if self.model_name is None:
            if y is None:
                raise ConfigError("SingleModelEnsemble needs y to pick a model, or model_name.")
            y = validate_class_indices(y)
            _check_rows(probs, len(y))
            losses = [_mean_log_loss(p, y) for p in probs]
            self.model_name_ = names[int(np.argmin(losses))]
        elif self.model_name not in names:
            raise ConfigError(f"model_name {self.model_name!r} is not one of the base models {names}.")
        else:
            self.model_name_ = self.model_name
        self.n_models_, self.model_names_ = len(names), names
        return self

    def predict_proba(self, prob_list: ProbInput) -> np.ndarray:
        """The chosen model's probabilities, float64 (n, 3), columns for classes -1 / 0 / 1."""
        _check_fitted(self, "model_name_")
        probs = _ordered_inputs(prob_list, self.model_names_)
        return probs[self.model_names_.index(self.model_name_)].copy()

    def to_dict(self) -> dict[str, Any]:
        _check_fitted(self, "model_name_")
        return {
            "method": self.method,
            "format_version": ENSEMBLE_FORMAT_VERSION,
            "model_names": list(self.model_names_),
            "model_name": self.model_name_,
            "selection": getattr(self, "selection_", None),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SingleModelEnsemble:
        _check_header(data, cls.method)
        try:
            ensemble = cls(model_name=data["model_name"], model_names=list(data["model_names"]))
        except (KeyError, TypeError) as err:
            raise ConfigError(
                f"Single-model ensemble dict is incomplete ({err!r}): expected model_names and "
                "model_name as written by to_dict()."
            ) from err
        if ensemble.model_name not in ensemble.model_names:
            raise ConfigError(f"model_name {ensemble.model_name!r} is not one of {ensemble.model_names}.")
        ensemble.model_name_, ensemble.model_names_ = ensemble.model_name, ensemble.model_names
        ensemble.n_models_ = len(ensemble.model_names)
        return _with_selection(ensemble, data)


Ensemble = StackingEnsemble | VotingEnsemble | SingleModelEnsemble
ENSEMBLE_METHODS: dict[str, type[Ensemble]] = {
    StackingEnsemble.method: StackingEnsemble,
    VotingEnsemble.method: VotingEnsemble,
    SingleModelEnsemble.method: SingleModelEnsemble,
}


def create_ensemble(method: str, **params: Any) -> Ensemble:
    """An unfitted ensemble of `method` ("stacking", "voting" or "single")."""
    return _ensemble_class(method)(**params)


def ensemble_from_dict(data: dict[str, Any]) -> Ensemble:
    """Rebuild a fitted ensemble from `to_dict` output, dispatching on `data["method"]`."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"Expected an ensemble dict, got {type(data).__name__}.")
    return _ensemble_class(data.get("method")).from_dict(data)


def _ensemble_class(method: Any) -> type[Ensemble]:
    if method not in ENSEMBLE_METHODS:
        raise ConfigError(
            f"Unknown ensemble method {method!r}: expected one of {sorted(ENSEMBLE_METHODS)}."
        )
    return ENSEMBLE_METHODS[method]


def _check_header(data: dict[str, Any], method: str) -> None:
    if data.get("method") != method:
        raise ConfigError(f"Ensemble method {data.get('method')!r} is not {method!r}.")
    version = data.get("format_version")
    if not isinstance(version, int) or version > ENSEMBLE_FORMAT_VERSION:
        raise ConfigError(
            f"Ensemble format version {version!r} is not readable by this code (reads up to "
            f"{ENSEMBLE_FORMAT_VERSION}): upgrade pipeline_core."
        )


def _with_selection(ensemble: Ensemble, data: dict[str, Any]) -> Ensemble:
    """Attach the saved selection evidence (format 2), if any."""
    if data.get("selection") is not None:
        ensemble.selection_ = data["selection"]
    return ensemble


def _mean_log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-15, 1.0))))


def _check_fitted(ensemble: Any, attribute: str) -> None:
    if not hasattr(ensemble, attribute):
        raise NotFittedError(
            f"This {type(ensemble).__name__} is not fitted yet: call fit(prob_list, y) or "
            "build it with ensemble_from_dict."
        )


def _resolve_inputs(
    prob_list: ProbInput, model_names: Sequence[str] | None
) -> tuple[list[str], list[np.ndarray]]:
    """Model names and validated probabilities in model order, for `fit`."""
    if len(prob_list) == 0:
        raise DataValidationError("prob_list is empty: expected one array per base model.")
    if model_names is not None:
        names = list(model_names)
    elif isinstance(prob_list, Mapping):
        names = list(prob_list)
    else:
        names = [f"model_{i}" for i in range(len(prob_list))]
    if len(set(names)) != len(names):
        raise ConfigError(f"model_names {names} has duplicates: expected unique names.")
    if not isinstance(prob_list, Mapping) and len(names) != len(prob_list):
        raise DataValidationError(
            f"prob_list has {len(prob_list)} arrays, but model_names has {len(names)}: {names}."
        )
    return names, _ordered_inputs(prob_list, names)


def _ordered_inputs(prob_list: ProbInput, names: list[str]) -> list[np.ndarray]:
    """Validated probabilities in the fitted model order."""
    if isinstance(prob_list, Mapping):
        missing = sorted(set(names) - set(prob_list))
        extra = sorted(set(prob_list) - set(names))
        if missing or extra:
            raise DataValidationError(
                f"Probabilities are missing models {missing[:5]} and have unexpected "
                f"models {extra[:5]}: expected exactly {names}."
            )
        return [validate_probabilities(prob_list[n], f"probs[{n!r}]") for n in names]
    probs = [validate_probabilities(p, f"prob_list[{i}]") for i, p in enumerate(prob_list)]
    if len(probs) != len(names):
        raise DataValidationError(
            f"prob_list has {len(probs)} arrays, but the ensemble was fitted on "
            f"{len(names)} models {names}: pass them in that order."
        )
    return probs


def _check_rows(probs: list[np.ndarray], n_rows: int, allow_empty: bool = False) -> None:
    counts = [len(p) for p in probs]
    if any(c != n_rows for c in counts) or (n_rows == 0 and not allow_empty):
        raise DataValidationError(
            f"Base-model probabilities have row counts {counts} (y or first input: {n_rows}): "
            "expected the same, non-zero number of rows for every model."
        )


AUTO_C_GRID = np.logspace(-3, 1, 9)
AUTO_C_FOLDS = 4


def _meta_learner(C: float | str, max_iter: int):
    if C == "auto":
        return LogisticRegressionCV(
            Cs=AUTO_C_GRID, cv=TimeSeriesSplit(AUTO_C_FOLDS), scoring="neg_log_loss", max_iter=max_iter,
            l1_ratios=(0,), use_legacy_attributes=False,
        )
    if isinstance(C, str) or not C > 0:
        raise ConfigError(f"C={C!r}: expected a positive number or 'auto'.")
    return LogisticRegression(C=C, max_iter=max_iter)


def _stack_features(probs: list[np.ndarray], eps: float) -> np.ndarray:
    return np.log(np.clip(np.hstack(probs), eps, 1.0))


def _row_wise_affine(features: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """features @ coef.T + intercept, summed column by column in a fixed order."""
    logits = np.broadcast_to(intercept, (len(features), len(intercept))).copy()
    for column in range(features.shape[1]):
        logits += features[:, column, None] * coef[:, column]
    return logits


def _normalised_weights(weights: Sequence[float] | None, n_models: int) -> np.ndarray:
    if weights is None:
        return np.full(n_models, 1.0 / n_models)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_models,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ConfigError(
            f"weights={list(weights)!r}: expected {n_models} non-negative finite numbers "
            "with a positive sum (one per base model, in model order)."
        )
    return w / w.sum()
