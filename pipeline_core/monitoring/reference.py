"""ReferenceStats: everything the drift monitor needs from the reference, JSON-ready.

Built once from training/validation data and stored in the bundle, so production
monitoring never needs the training data itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline_core.errors import ConfigError, DriftInputError
from pipeline_core.monitoring.dependence import (
    MAX_AUTOCORRELATION,
    Runs,
    class_design_effect,
    in_run_order,
    inflation_grid,
    lag1_autocorrelation,
    pooled_inflation,
    runs_of,
    series_inflation_grid,
)
from pipeline_core.monitoring.inputs import CLASSES, class_labels, confidence_vector, feature_matrix, group_codes

FORMAT_VERSION = 2  # 2: every key written, the serial-dependence fields included (1 may lack them)
DEFAULT_QUANTILES = 1000


@dataclass(frozen=True, eq=False)
class DistributionSketch:
    """One reference distribution, compressed.

    Attributes:
        edges: strictly increasing interior PSI bin edges (reference quantiles).
        proportions: reference share of each bin (-inf, e1), [e1, e2), ..., [e_last, inf).
        support: up to `n_quantiles` distinct reference values, including min and max.
        count_le: reference rows <= each support value.
        count_lt: reference rows < each support value.
        size: reference rows.
        mean: reference mean.
        std: reference standard deviation.
        inflation: variance inflation tau(L) of a run of L consecutive reference rows, for
            L = 1, 2, 4, ... (see `monitoring.dependence`); [1.0] means independent rows.
        effective_size: independent rows the reference is worth, size / tau of its runs
            (None: size, as for sketches stored before serial dependence was measured).
        autocorrelation: lag-1 autocorrelation of the values within runs, clipped to
            [0, 0.99]; 0 for sketches stored before it was measured.
    """

    edges: np.ndarray = field(repr=False)
    proportions: np.ndarray = field(repr=False)
    support: np.ndarray = field(repr=False)
    count_le: np.ndarray = field(repr=False)
    count_lt: np.ndarray = field(repr=False)
    size: int
    mean: float
    std: float
    inflation: np.ndarray = field(default_factory=lambda: np.ones(1), repr=False)
    effective_size: float | None = None
    autocorrelation: float = 0.0

    @classmethod
    def from_values(
        cls, values: np.ndarray, n_bins: int, n_quantiles: int, run_lengths: np.ndarray | None = None
    ) -> DistributionSketch:
        """Sketch of finite 1-D `values`: `n_bins` quantile bins, `n_quantiles` support points.

        `values` are in time order within runs of `run_lengths` rows (default: one run),
        from which the sketch measures its serial dependence.
        """
        ordered = np.sort(values)
        m = ordered.size
        edges = np.unique(np.quantile(ordered, np.arange(1, n_bins) / n_bins))
        below = np.searchsorted(ordered, edges, side="left")
        proportions = np.diff(np.concatenate(([0], below, [m]))) / m
        positions = np.unique(np.round(np.linspace(0, m - 1, min(n_quantiles, m))).astype(np.int64))
        support = np.unique(ordered[positions])
        count_le = np.searchsorted(ordered, support, side="right")
        count_lt = np.searchsorted(ordered, support, side="left")
        lengths = np.array([m]) if run_lengths is None else np.asarray(run_lengths)
        inflation = inflation_grid(values, support, (count_le + count_lt) / (2.0 * m), lengths)
        rho = lag1_autocorrelation(values[:, None], Runs(order=None, lengths=lengths))[0]
        return cls(
            edges=edges,
            proportions=proportions,
            support=support,
            count_le=count_le,
            count_lt=count_lt,
            size=int(m),
            mean=float(np.mean(ordered)),
            std=float(np.std(ordered)),
            inflation=inflation,
            effective_size=m / pooled_inflation(inflation, lengths),
            autocorrelation=float(np.clip(rho, 0.0, MAX_AUTOCORRELATION)),
        )

    @property
    def independent_size(self) -> float:
        """Independent rows the reference is worth: `effective_size`, or `size` if unknown."""
        return float(self.size if self.effective_size is None else self.effective_size)

    def run_inflation(self, run_lengths: np.ndarray) -> float:
        """Variance inflation, under the reference's dependence, of rows in runs of these lengths."""
        return pooled_inflation(self.inflation, run_lengths)

    @property
    def psi_df(self) -> int:
        """Degrees of freedom of PSI under no drift: non-empty reference bins - 1."""
        return max(int(np.count_nonzero(self.proportions)) - 1, 1)

    def cdf(self, points: np.ndarray) -> np.ndarray:
        """Reference CDF at `points`, interpolated between support values (for plots)."""
        return np.interp(points, self.support, self.count_le / self.size, left=0.0, right=1.0)

    def quantile(self, probability: float) -> float:
        """Reference quantile, interpolated between support values (for plots)."""
        return float(np.interp(probability, self.count_le / self.size, self.support))

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": self.edges.tolist(),
            "proportions": self.proportions.tolist(),
            "support": self.support.tolist(),
            "count_le": self.count_le.tolist(),
            "count_lt": self.count_lt.tolist(),
            "size": self.size,
            "mean": self.mean,
            "std": self.std,
            "inflation": self.inflation.tolist(),
            "effective_size": self.effective_size,
            "autocorrelation": self.autocorrelation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DistributionSketch:
        sketch = cls(
            edges=np.asarray(data["edges"], dtype=np.float64),
            proportions=np.asarray(data["proportions"], dtype=np.float64),
            support=np.asarray(data["support"], dtype=np.float64),
            count_le=np.asarray(data["count_le"], dtype=np.int64),
            count_lt=np.asarray(data["count_lt"], dtype=np.int64),
            size=int(data["size"]),
            mean=float(data["mean"]),
            std=float(data["std"]),
            inflation=np.asarray(data["inflation"], dtype=np.float64),
            effective_size=None if data["effective_size"] is None else float(data["effective_size"]),
            autocorrelation=float(data["autocorrelation"]),
        )
        sketch._check()
        return sketch

    def _check(self) -> None:
        problems = []
        if self.proportions.size != self.edges.size + 1 or not np.isclose(self.proportions.sum(), 1.0):
            problems.append("proportions must have len(edges) + 1 entries summing to 1")
        if np.any(np.diff(self.edges) <= 0) or np.any(np.diff(self.support) <= 0):
            problems.append("edges and support must be strictly increasing")
        if not (self.support.size == self.count_le.size == self.count_lt.size >= 1):
            problems.append("support, count_le and count_lt must have one entry per support value")
        elif np.any(self.count_lt > self.count_le) or self.count_le[-1] != self.size:
            problems.append("count_lt <= count_le and count_le[-1] == size must hold")
        finite = np.all(np.isfinite(self.inflation))
        if self.inflation.ndim != 1 or not (self.inflation.size >= 1 and finite and np.all(self.inflation >= 1.0)):
            problems.append("inflation must be one or more finite values >= 1")
        if self.effective_size is not None and not 0.0 < self.effective_size <= self.size:
            problems.append("effective_size must be in (0, size]")
        if not 0.0 <= self.autocorrelation <= MAX_AUTOCORRELATION:
            problems.append(f"autocorrelation must be in [0, {MAX_AUTOCORRELATION}]")
        if problems:
            raise ConfigError(f"invalid reference distribution sketch: {'; '.join(problems)}")


@dataclass(frozen=True, eq=False)
class ClassDependence:
    """Serial dependence of the reference predictions' classes, for the class-balance test.

    The predicted class of consecutive bars is persistent (the features are smooth rolling
    statistics), so a batch's class shares vary far more than its row count suggests.

    Attributes:
        inflation: per class (-1, 0, 1), the variance inflation tau(L) of its indicator
            (prediction == class) over runs of L = 1, 2, 4, ... consecutive rows.
        autocorrelation: per class, the lag-1 autocorrelation of its indicator within
            runs, clipped to [0, 0.99].
        effective_size: independent predictions the reference is worth: its predictions
            over their design effect (`dependence.class_design_effect`).
    """

    inflation: tuple[np.ndarray, ...] = field(repr=False)
    autocorrelation: tuple[float, ...]
    effective_size: float

    @classmethod
    def from_labels(cls, labels: np.ndarray, run_lengths: np.ndarray) -> ClassDependence:
        """Dependence of classes -1/0/1 in `labels`, time-ordered within runs of `run_lengths` rows."""
        indicators = (labels[:, None] == np.array(CLASSES)).astype(np.float64)
        grids = tuple(series_inflation_grid(column, run_lengths) for column in indicators.T)
        rho = lag1_autocorrelation(indicators, Runs(order=None, lengths=run_lengths))
        taus = np.array([pooled_inflation(grid, run_lengths) for grid in grids])
        return cls(
            inflation=grids,
            autocorrelation=tuple(float(r) for r in np.clip(rho, 0.0, MAX_AUTOCORRELATION)),
            effective_size=labels.size / class_design_effect(indicators.mean(axis=0), taus),
        )

    def run_inflation(self, run_lengths: np.ndarray) -> np.ndarray:
        """Per class, the variance inflation of its indicator over rows in runs of these lengths."""
        return np.array([pooled_inflation(grid, run_lengths) for grid in self.inflation])

    def to_dict(self) -> dict[str, Any]:
        return {
            "inflation": [grid.tolist() for grid in self.inflation],
            "autocorrelation": list(self.autocorrelation),
            "effective_size": self.effective_size,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassDependence:
        dependence = cls(
            inflation=tuple(np.asarray(grid, dtype=np.float64) for grid in data["inflation"]),
            autocorrelation=tuple(float(r) for r in data["autocorrelation"]),
            effective_size=float(data["effective_size"]),
        )
        dependence._check()
        return dependence

    def _check(self) -> None:
        problems = []
        grids_ok = len(self.inflation) == len(CLASSES) and all(
            grid.ndim == 1 and grid.size >= 1 and np.all(np.isfinite(grid)) and np.all(grid >= 1.0)
            for grid in self.inflation
        )
        if not grids_ok:
            problems.append(f"inflation must hold {len(CLASSES)} lists of finite values >= 1")
        rho = np.asarray(self.autocorrelation)
        if rho.size != len(CLASSES) or not np.all((rho >= 0.0) & (rho <= MAX_AUTOCORRELATION)):
            problems.append(f"autocorrelation must hold {len(CLASSES)} values in [0, {MAX_AUTOCORRELATION}]")
        if not (np.isfinite(self.effective_size) and self.effective_size > 0.0):
            problems.append("effective_size must be a positive number")
        if problems:
            raise ConfigError(f"invalid reference class dependence: {'; '.join(problems)}")


@dataclass(frozen=True, eq=False)
class ReferenceStats:
    """Reference statistics of one model/horizon.

    Attributes:
        feature_names: ordered feature names.
        features: one DistributionSketch per feature.
        n_bins: PSI bins requested per feature (fewer remain where quantiles tie).
        n_quantiles: support points requested per sketch. The KS statistic is exact at
            these points and underestimates the full-reference statistic by at most about
            1/n_quantiles, so the compression can only lower the false-alarm rate.
        class_proportions: share of reference predictions in classes -1, 0, 1, or None.
        n_predictions: reference predictions behind `class_proportions`.
        confidence: sketch of the reference confidences, or None.
        accuracy: validation accuracy, or None.
        log_loss: validation log-loss (natural log), or None.
        class_dependence: serial dependence of the reference predictions' classes, or
            None: the predictions count as independent (as for reference stats stored
            before it was measured).
    """

    feature_names: tuple[str, ...]
    features: tuple[DistributionSketch, ...] = field(repr=False)
    n_bins: int
    n_quantiles: int
    class_proportions: tuple[float, ...] | None = None
    n_predictions: int | None = None
    confidence: DistributionSketch | None = field(default=None, repr=False)
    accuracy: float | None = None
    log_loss: float | None = None
    class_dependence: ClassDependence | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if len(self.feature_names) != len(self.features) or not self.features:
            raise ConfigError(
                f"ReferenceStats has {len(self.feature_names)} feature names and "
                f"{len(self.features)} sketches; expected the same, non-zero number"
            )
        if len(set(self.feature_names)) != len(self.feature_names):
            raise ConfigError("ReferenceStats.feature_names has duplicate names")
        if (self.class_proportions is None) != (self.n_predictions is None):
            raise ConfigError("class_proportions and n_predictions must be given together")
        if self.class_proportions is not None and (
            len(self.class_proportions) != len(CLASSES) or not np.isclose(sum(self.class_proportions), 1.0)
        ):
            raise ConfigError(f"class_proportions must be {len(CLASSES)} shares summing to 1")
        if self.class_dependence is not None and not (
            self.n_predictions is not None and self.class_dependence.effective_size <= self.n_predictions
        ):
            raise ConfigError("class_dependence needs class_proportions, and its effective_size <= n_predictions")
        if self.accuracy is not None and not 0.0 <= self.accuracy <= 1.0:
            raise ConfigError(f"reference accuracy is {self.accuracy}, expected a value in [0, 1]")
        if self.log_loss is not None and not (np.isfinite(self.log_loss) and self.log_loss >= 0.0):
            raise ConfigError(f"reference log_loss is {self.log_loss}, expected a finite value >= 0")

    @property
    def n_reference(self) -> int:
        """Reference rows behind the feature sketches."""
        return self.features[0].size

    @property
    def independent_predictions(self) -> float | None:
        """Independent predictions the reference is worth: the class dependence's effective
        size, or `n_predictions` when it is unknown (None without predictions)."""
        if self.class_dependence is not None:
            return self.class_dependence.effective_size
        return None if self.n_predictions is None else float(self.n_predictions)

    @classmethod
    def from_data(
        cls,
        features: Any,
        feature_names: Sequence[str] | None = None,
        predictions: Any = None,
        confidences: Any = None,
        accuracy: float | None = None,
        log_loss: float | None = None,
        n_bins: int = 10,
        n_quantiles: int = DEFAULT_QUANTILES,
        groups: Any = None,
    ) -> ReferenceStats:
        """Reference statistics from a feature matrix or frame and optional model outputs.

        `predictions` (classes -1/0/1) and `confidences` are the model's outputs on the
        same rows; `accuracy` and `log_loss` are its validation figures. `groups` (e.g. the
        symbol of each row) lets the sketches and the class dependence measure serial
        dependence within each group's rows, which must be in time order; without it the
        rows (and the predictions, in their order) are taken as one time-ordered run (fine
        for rows sorted by symbol then time, not for rows interleaved across symbols).
        """
        if n_bins < 2 or n_quantiles < 2:
            raise ConfigError(f"n_bins={n_bins} and n_quantiles={n_quantiles} must both be >= 2")
        matrix, names = feature_matrix(features, feature_names, what="reference features")
        m = matrix.shape[0]
        if m < 2:
            raise DriftInputError(f"reference features has {m} rows, expected at least 2")
        runs = runs_of(None if groups is None else group_codes(groups, m, "reference groups"), m)
        sketches = tuple(
            DistributionSketch.from_values(col, n_bins, n_quantiles, runs.lengths)
            for col in in_run_order(matrix, runs).T
        )
        proportions, n_predictions, class_dependence = _class_balance(predictions, None if groups is None else runs)
        confidence = None
        if confidences is not None:
            confidence = _confidence_sketch(confidences, None if groups is None else runs, n_bins, n_quantiles)
        return cls(
            feature_names=names,
            features=sketches,
            n_bins=n_bins,
            n_quantiles=n_quantiles,
            class_proportions=proportions,
            n_predictions=n_predictions,
            confidence=confidence,
            accuracy=None if accuracy is None else float(accuracy),
            log_loss=None if log_loss is None else float(log_loss),
            class_dependence=class_dependence,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "feature_names": list(self.feature_names),
            "features": [sketch.to_dict() for sketch in self.features],
            "n_bins": self.n_bins,
            "n_quantiles": self.n_quantiles,
            "class_proportions": None if self.class_proportions is None else list(self.class_proportions),
            "n_predictions": self.n_predictions,
            "confidence": None if self.confidence is None else self.confidence.to_dict(),
            "accuracy": self.accuracy,
            "log_loss": self.log_loss,
            "class_dependence": None if self.class_dependence is None else self.class_dependence.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReferenceStats:
        version = data.get("format_version") if isinstance(data, dict) else None
        if version not in (1, FORMAT_VERSION):
            raise ConfigError(
                f"reference stats have format_version {version!r}, this code reads 1 to "
                f"{FORMAT_VERSION}; rebuild them with ReferenceStats.from_data or upgrade"
            )
        try:
            if version == 1:
                data = _reference_v1_to_v2(data)
            confidence = data["confidence"]
            proportions = data["class_proportions"]
            dependence = data["class_dependence"]
            return cls(
                feature_names=tuple(data["feature_names"]),
                features=tuple(DistributionSketch.from_dict(s) for s in data["features"]),
                n_bins=int(data["n_bins"]),
                n_quantiles=int(data["n_quantiles"]),
                class_proportions=None if proportions is None else tuple(float(p) for p in proportions),
                n_predictions=data["n_predictions"],
                confidence=None if confidence is None else DistributionSketch.from_dict(confidence),
                accuracy=data["accuracy"],
                log_loss=data["log_loss"],
                class_dependence=None if dependence is None else ClassDependence.from_dict(dependence),
            )
        except (KeyError, TypeError) as err:
            raise ConfigError(f"reference stats are incomplete or malformed: {err!r}") from err


def _reference_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Format 1 may lack the serial-dependence fields: then no dependence was measured
    (inflation 1, autocorrelation 0, effective size unknown, no class dependence)."""
    def sketch(values: dict[str, Any] | None) -> dict[str, Any] | None:
        if values is None:
            return None
        return {"inflation": [1.0], "effective_size": None, "autocorrelation": 0.0, **values}

    return {
        **data,
        "format_version": 2,
        "features": [sketch(values) for values in data["features"]],
        "confidence": sketch(data["confidence"]),
        "class_dependence": data.get("class_dependence"),
    }


def _confidence_sketch(confidences: Any, runs: Runs | None, n_bins: int, n_quantiles: int) -> DistributionSketch:
    """Sketch of the reference confidences; with groups they are on the feature rows and share their runs."""
    values = confidence_vector(confidences, None if runs is None else int(runs.lengths.sum()))
    if values.size < 2:
        raise DriftInputError("reference confidences need at least 2 values")
    if runs is None:
        return DistributionSketch.from_values(values, n_bins, n_quantiles)
    return DistributionSketch.from_values(in_run_order(values, runs), n_bins, n_quantiles, runs.lengths)


def _class_balance(
    predictions: Any, runs: Runs | None
) -> tuple[tuple[float, ...] | None, int | None, ClassDependence | None]:
    """Class shares, count and serial dependence of the reference predictions; with groups
    they are on the feature rows and share their runs, without them they are one run."""
    if predictions is None:
        return None, None, None
    labels = class_labels(predictions, None if runs is None else int(runs.lengths.sum()), "reference predictions")
    if labels.size == 0:
        raise DriftInputError("reference predictions is empty")
    counts = np.array([np.count_nonzero(labels == c) for c in CLASSES])
    if runs is None:
        runs = Runs(order=None, lengths=np.array([labels.size]))
    dependence = ClassDependence.from_labels(in_run_order(labels, runs), runs.lengths)
    return tuple(float(x) for x in counts / labels.size), int(labels.size), dependence
