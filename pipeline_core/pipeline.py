"""InferenceConfig, InferenceResult and InferencePipeline: raw OHLCV in, -1/0/1 out.

Flow: validate bars -> causal features -> scale (RobustScaler fit on train) -> base models
(tabular rows or sequences) -> per-model calibration -> ensemble -> class and confidence.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import polars as pl

from pipeline_core import persistence
from pipeline_core.bundle import Manifest
from pipeline_core.components import FittedComponents
from pipeline_core.data import validate_ohlcv
from pipeline_core.data.schema import validate_row_history
from pipeline_core.errors import ConfigError, InsufficientHistoryError
from pipeline_core.features import DEFAULT_FEATURE_SET, get_feature_set
from pipeline_core.inputs import ModelInputs, featurize, symbol_blocks
from pipeline_core.constants import CLASSES, HORIZONS, PROBABILITY_COLUMNS, horizon_or_longest
from pipeline_core.models.families import SEQUENCE_FAMILIES

ENSEMBLE_METHODS = ("stacking", "voting", "single")


def model_key(model_name: str, horizon: int) -> str:
    """The name of one fitted model or calibrator, e.g. "xgboost_h20"."""
    return f"{model_name}_h{horizon}"


@dataclass
class InferenceConfig:
    model_names: list[str]
    horizons: list[int]
    feature_columns: list[str] = field(default_factory=list)  # empty: the feature set's
    use_calibration: bool = True
    use_ensemble: bool = True
    sequence_length: int = 60
    batch_size: int = 1000
    ensemble_method: str = "stacking"
    feature_set: str = DEFAULT_FEATURE_SET

    def __post_init__(self) -> None:
        self.model_names = list(self.model_names)
        self.horizons = [int(h) for h in self.horizons]
        if not self.model_names:
            raise ConfigError("InferenceConfig.model_names is empty: name at least one model.")
        unknown = sorted(set(self.model_names) - set(SEQUENCE_FAMILIES))
        if unknown:
            raise ConfigError(f"Unknown model names {unknown[:5]}: expected some of {sorted(SEQUENCE_FAMILIES)}.")
        if len(set(self.model_names)) != len(self.model_names):
            raise ConfigError(f"InferenceConfig.model_names has duplicates: {self.model_names}.")
        if not self.horizons or not set(self.horizons) <= set(HORIZONS):
            raise ConfigError(f"Horizons {self.horizons} must be a non-empty subset of {list(HORIZONS)}.")
        if self.ensemble_method not in ENSEMBLE_METHODS:
            raise ConfigError(f"ensemble_method {self.ensemble_method!r} is not one of {list(ENSEMBLE_METHODS)}.")
        if self.sequence_length < 1 or self.batch_size < 1:
            raise ConfigError("sequence_length and batch_size must be positive.")
        columns = list(get_feature_set(self.feature_set).columns)
        if not self.feature_columns:
            self.feature_columns = columns
        elif list(self.feature_columns) != columns:
            missing = sorted(set(columns) - set(self.feature_columns))
            raise ConfigError(
                f"feature_columns do not match feature set {self.feature_set!r}: missing {missing[:5]}; "
                "leave feature_columns empty to use the feature set's own order."
            )

    @property
    def uses_sequences(self) -> bool:
        return any(SEQUENCE_FAMILIES[name] for name in self.model_names)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceConfig:
        return cls(**data)


@dataclass
class InferenceResult:
    predictions: np.ndarray  # -1, 0, 1
    probabilities: np.ndarray  # (n_samples, 3), columns [-1, 0, 1]
    confidence: np.ndarray  # max probability
    inference_time_ms: float
    model_outputs: dict[str, np.ndarray] = field(default_factory=dict)  # calibrated, every model
    final_model: str = ""  # what gave `probabilities`: a model name or "ensemble (<method>)"
    horizon: int = 0
    timestamps: np.ndarray | None = None  # of the scored rows
    symbols: np.ndarray | None = None
    unscored: pl.DataFrame | None = None  # rows without enough history: timestamp, symbol
    features: np.ndarray | None = None  # unscaled features of the scored rows (for drift)
    bundle_version: str = ""

    @property
    def n_samples(self) -> int:
        return len(self.predictions)

    def to_frame(self) -> pl.DataFrame:
        """One row per scored bar: the columns of a predictions parquet file."""
        return pl.DataFrame(
            {
                "timestamp": pl.Series(self.timestamps).dt.replace_time_zone("UTC"),
                "symbol": _strings(self.symbols),
                "horizon": np.full(self.n_samples, self.horizon, dtype=np.int32),
                "prediction": self.predictions.astype(np.int8),
                **{name: self.probabilities[:, i] for i, name in enumerate(PROBABILITY_COLUMNS)},
                "confidence": self.confidence,
                "bundle_version": pl.repeat(self.bundle_version, self.n_samples, dtype=pl.String, eager=True),
            }
        )


class InferencePipeline:
    """A fitted scaler, base models, calibrators and ensembles, scored as one unit."""

    def __init__(
        self,
        config: InferenceConfig,
        components: FittedComponents | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        evaluation: dict[str, Any] | None = None,
        reference_stats: dict[int, Any] | None = None,
        version: str = "unsaved",
        manifest=None,
    ) -> None:
        self.config = config
        self._components = components
        self.metadata = metadata or {}  # training window, label spec, ...
        self.evaluation = evaluation or {}
        self.reference_stats = reference_stats or {}  # horizon -> monitoring.ReferenceStats
        self.version = version
        self.manifest = manifest  # set by load()

    @property
    def components(self) -> FittedComponents:
        self._check_fitted()
        return self._components

    @property
    def scaler(self):
        return self.components.scaler

    @property
    def models(self) -> Mapping[str, Any]:
        """Read-only: "xgboost_h20" -> fitted base model."""
        return self.components.models

    @property
    def calibrators(self) -> Mapping[str, Any]:
        """Read-only: "xgboost_h20" -> fitted calibrator."""
        return self.components.calibrators

    @property
    def ensembles(self) -> Mapping[int, Any]:
        """Read-only: horizon -> the fitted final combination (absent: the first model scores)."""
        return self.components.ensembles

    def final_name(self, horizon: int) -> str:
        """What produces the final probabilities at `horizon`, e.g. "ensemble (stacking)" or "lightgbm"."""
        ensemble = self.ensembles.get(horizon)
        if ensemble is None:
            return self.config.model_names[0]
        if ensemble.method == "single":
            return ensemble.model_name_
        return f"ensemble ({ensemble.method})"

    @property
    def feature_set(self):
        return get_feature_set(self.config.feature_set)

    @property
    def required_lookback(self) -> int:
        """Bars of history before a bar that scoring it reads."""
        extra = self.config.sequence_length - 1 if self.config.uses_sequences else 0
        return self.feature_set.lookback + extra

    def model_inputs(self, df, *, check_input: bool = True) -> ModelInputs:
        """Scaled features and model inputs of every row with enough history. With
        `check_input=False`, `df` must be validated bars (`validate_ohlcv` or `read_bars`
        output, sorted by symbol and time): they are not checked again."""
        self._check_fitted()
        bars = validate_ohlcv(df) if check_input else df
        rows = featurize(bars, self.feature_set, self.config.sequence_length, self.config.uses_sequences)
        return rows.scaled_by(self.scaler)

    def base_model_probabilities(
        self, inputs: ModelInputs, horizon: int, positions: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Each base model's raw (uncalibrated) probabilities on the scored rows."""
        self._check_horizon(horizon)
        return {
            name: inputs.run(self.models[model_key(name, horizon)], self.config.batch_size, positions)
            for name in self.config.model_names
        }

    def predict(self, df, horizon: int | Iterable[int] | None = None, *, check_input: bool = True):
        """Score every bar of `df` that has enough history.

        An int horizon gives an InferenceResult; a list, or None for every trained horizon,
        gives {horizon: result}, computing features once for all of them. `check_input=False`
        skips validating `df` (see `model_inputs`): for bars validated where they were read.
        """
        started = time.perf_counter()
        inputs = self.model_inputs(df, check_input=check_input)
        horizons = self.config.horizons if horizon is None else horizon
        if isinstance(horizons, (int, np.integer)):
            return self._score(inputs, int(horizons), started)
        results = {}
        for h in horizons:
            results[int(h)] = self._score(inputs, int(h), started)
            started = time.perf_counter()
        return results

    def predict_single(self, df, idx: int, horizon: int | None = None) -> np.ndarray:
        """Probabilities (3,) of row `idx` of the validated (symbol, time)-sorted frame,
        from its own symbol's bars up to `idx` and no more than `required_lookback` of them
        (horizon: the longest trained one if not given). Only those bars are validated
        when `df` is a polars frame already in that order (see `validate_row_history`)."""
        horizon = horizon_or_longest(horizon, self.config.horizons)
        bars, earlier = validate_row_history(df, idx, self.required_lookback)
        if earlier < self.required_lookback:
            last = bars.row(bars.height - 1, named=True)
            raise InsufficientHistoryError(
                f"Row {idx} ({last['symbol']} {last['timestamp']}) has {earlier} earlier bars; "
                f"scoring needs {self.required_lookback}."
            )
        inputs = self.model_inputs(bars, check_input=False)
        return self.score_inputs(inputs, horizon).probabilities[-1]

    def score_inputs(
        self, inputs: ModelInputs, horizon: int, positions: np.ndarray | None = None,
        *, raw: Mapping[str, np.ndarray] | None = None,
    ) -> InferenceResult:
        """Score prepared inputs (all scored rows, or a subset of them). `raw`: the base
        models' probabilities on those rows (`base_model_probabilities`), if already computed."""
        return self._score(inputs, horizon, time.perf_counter(), positions, raw)

    def _score(
        self, inputs: ModelInputs, horizon: int, started: float, positions: np.ndarray | None = None,
        raw: Mapping[str, np.ndarray] | None = None,
    ) -> InferenceResult:
        raw = self.base_model_probabilities(inputs, horizon, positions) if raw is None else raw
        calibrated = {
            name: self.calibrators[model_key(name, horizon)].transform(probs)
            if self.config.use_calibration
            else probs
            for name, probs in raw.items()
        }
        ensemble = self.ensembles.get(horizon)
        if ensemble is not None:
            probabilities = ensemble.predict_proba([calibrated[name] for name in self.config.model_names])
        else:
            probabilities = calibrated[self.config.model_names[0]]
        return InferenceResult(
            predictions=np.asarray(CLASSES)[probabilities.argmax(axis=1)],
            probabilities=probabilities,
            confidence=probabilities.max(axis=1),
            inference_time_ms=(time.perf_counter() - started) * 1000,
            model_outputs=calibrated,
            final_model=self.final_name(horizon),
            horizon=horizon,
            timestamps=_subset(inputs.timestamps, positions),
            symbols=_subset(inputs.symbols, positions),
            unscored=inputs.unscored,
            features=_subset(inputs.features, positions),
            bundle_version=self.version,
        )

    def _check_fitted(self) -> None:
        if self._components is None:
            raise ConfigError("InferencePipeline has no fitted scaler and models: train it or load a bundle.")

    def _check_horizon(self, horizon: int) -> None:
        if horizon not in self.config.horizons:
            raise ConfigError(f"Horizon {horizon} is not in this pipeline: it was trained for {self.config.horizons}.")

    def save(self, path: str | Path) -> Manifest:
        """Write the bundle atomically (its version is the folder name); return its manifest.
        The pipeline itself is not changed."""
        self._check_fitted()
        return persistence.save_pipeline(self, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> InferencePipeline:
        """Verify every file's hash, then read the bundle."""
        bundle = persistence.read_bundle(Path(path))
        return cls(
            InferenceConfig.from_dict(bundle.config), bundle.components, metadata=bundle.metadata,
            evaluation=bundle.evaluation, reference_stats=bundle.reference_stats,
            version=bundle.manifest.pipeline_version, manifest=bundle.manifest,
        )


def _strings(values: np.ndarray) -> pl.Series:
    """A string column of runs of repeated values (symbols in symbol order): each distinct
    run converted once, then repeated (converting every Python string costs 0.2 us a row)."""
    blocks = symbol_blocks(values)
    runs = [end - start for start, end in blocks]
    names = pl.Series([values[start] for start, _ in blocks], dtype=pl.String)
    return names.gather(np.repeat(np.arange(len(blocks)), runs))


def _subset(values: np.ndarray, positions: np.ndarray | None) -> np.ndarray:
    return values if positions is None else values[positions]
