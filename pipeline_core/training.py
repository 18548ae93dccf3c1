"""train_pipeline(): raw OHLCV -> fitted InferencePipeline, as a chain of small stages.

Windows, in time order per horizon: train | early-stopping | calibration | test, purged by
the horizon and embargoed. Base models fit on train and stop early on the early-stopping
window; calibrators fit on the calibration window; the stacking meta-learner fits on
walk-forward out-of-fold calibrated probabilities over the calibration window; the test
window is only used to evaluate and to record the drift reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import polars as pl

from pipeline_core.calibration import TemperatureCalibrator
from pipeline_core.data import validate_ohlcv
from pipeline_core.ensemble import StackingEnsemble, VotingEnsemble
from pipeline_core.errors import ConfigError, InsufficientHistoryError
from pipeline_core.evaluation import evaluate_pipeline
from pipeline_core.features import get_feature_set
from pipeline_core.inputs import FeatureRows, ModelInputs, featurize
from pipeline_core.labels import labels_to_index, triple_barrier_labels
from pipeline_core.models import MODEL_FAMILIES, create_model
from pipeline_core.monitoring import ReferenceStats
from pipeline_core.pipeline import InferenceConfig, InferencePipeline, model_key
from pipeline_core.profiles import profile_config
from pipeline_core.scaling import fit_scaler
from pipeline_core.splits import chronological_split, walk_forward_folds

Progress = Callable[[str], None]
UNLABELLED = -1


@dataclass(frozen=True)
class TrainOptions:
    train_frac: float = 0.6
    val_frac: float = 0.2  # early stopping + calibration; the rest is the test window
    early_stopping_share: float = 0.4  # of the validation window, the earlier part
    stacking_folds: int = 4
    max_sequence_samples: int | None = 40_000  # training windows for lstm/gru/tcn
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # family -> overrides
    label_params: dict[str, Any] = field(default_factory=dict)  # triple_barrier_labels kwargs
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.model_params) - set(MODEL_FAMILIES))
        if unknown:
            raise ConfigError(f"model_params names unknown families {unknown}: expected {sorted(MODEL_FAMILIES)}.")
        if not 0 < self.early_stopping_share < 1:
            raise ConfigError(f"early_stopping_share must be in (0, 1), got {self.early_stopping_share}.")


@dataclass
class HorizonSplit:
    """One horizon's labels on the scored rows and its windows (positions into them)."""

    horizon: int
    y: np.ndarray  # class index 0/1/2, UNLABELLED where the label is unknown
    train: np.ndarray
    early_stopping: np.ndarray
    calibration: np.ndarray
    test: np.ndarray

    def window_bounds(self, timestamps: np.ndarray) -> dict[str, str]:
        return {
            name: f"{timestamps[idx].min()}..{timestamps[idx].max()}"
            for name, idx in [("train", self.train), ("early_stopping", self.early_stopping),
                              ("calibration", self.calibration), ("test", self.test)]
            if len(idx)
        }


@dataclass
class TrainingData:
    config: InferenceConfig
    rows: FeatureRows
    splits: dict[int, HorizonSplit]

    @property
    def scaler_rows(self) -> np.ndarray:
        """Rows of `rows.raw` in the training window of every horizon (the scaler's)."""
        train = np.unique(np.concatenate([s.train for s in self.splits.values()]))
        return self.rows.scored[train]


def prepare_training_data(ohlcv, config: InferenceConfig, options: TrainOptions = TrainOptions()) -> TrainingData:
    """Features, labels per horizon and purged time windows."""
    bars = validate_ohlcv(ohlcv)
    rows = featurize(bars, get_feature_set(config.feature_set), config.sequence_length, config.uses_sequences)
    if rows.n_scored == 0:
        raise InsufficientHistoryError("No bar has enough history for the features: give more bars per symbol.")
    splits = {h: _split_horizon(bars, rows, h, options) for h in config.horizons}
    return TrainingData(config=config, rows=rows, splits=splits)


def _split_horizon(bars: pl.DataFrame, rows: FeatureRows, horizon: int, options: TrainOptions) -> HorizonSplit:
    labels = triple_barrier_labels(bars, horizon, **options.label_params)["label"].to_numpy()[rows.rows]
    known = ~np.isnan(labels.astype(np.float64))
    y = np.full(rows.n_scored, UNLABELLED, dtype=np.int64)
    y[known] = labels_to_index(labels[known].astype(np.int64))
    split = chronological_split(
        rows.timestamps, options.train_frac, options.val_frac, horizon=horizon, symbols=rows.symbols
    )
    early, calibration = _cut_validation(rows, split.val[known[split.val]], horizon, options.early_stopping_share)
    parts = [split.train[known[split.train]], early, calibration, split.test[known[split.test]]]
    if min(len(p) for p in parts) == 0:
        raise InsufficientHistoryError(
            f"Too few labelled bars for horizon {horizon}: window sizes {[len(p) for p in parts]} "
            "(train, early stopping, calibration, test). Give more history."
        )
    return HorizonSplit(horizon, y, *parts)


def _cut_validation(rows: FeatureRows, val: np.ndarray, horizon: int, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Early-stopping rows before a time cut, calibration rows from it on; early-stopping
    rows whose label window (`horizon` bars of their symbol) reaches the cut are purged."""
    times = np.unique(rows.timestamps[val])  # sorted
    cut = times[int(len(times) * share)]
    ahead = np.minimum(val + horizon, rows.n_scored - 1)
    same_symbol = rows.symbols[ahead] == rows.symbols[val]
    label_end = np.where(same_symbol, rows.timestamps[ahead], np.datetime64("NaT"))
    return val[label_end < cut], val[rows.timestamps[val] >= cut]


def fit_feature_scaler(data: TrainingData):
    """RobustScaler fit on the training window only."""
    return fit_scaler(data.rows.raw[data.scaler_rows], list(data.config.feature_columns))


def fit_base_model(
    name: str, split: HorizonSplit, inputs: ModelInputs, config: InferenceConfig, options: TrainOptions
):
    """One model for one horizon, early-stopped on the early-stopping window."""
    model = create_model(name, **options.model_params.get(name, {}))
    train = split.train
    if model.is_sequence and options.max_sequence_samples and len(train) > options.max_sequence_samples:
        rng = np.random.default_rng(options.seed)
        train = np.sort(rng.choice(train, options.max_sequence_samples, replace=False))
    stop = split.early_stopping
    return model.fit(inputs.gather(model, train), split.y[train], inputs.gather(model, stop), split.y[stop])


def fit_base_models(
    data: TrainingData, inputs: ModelInputs, options: TrainOptions = TrainOptions(), progress: Progress | None = None
) -> dict[str, Any]:
    models = {}
    for horizon, split in data.splits.items():
        for name in data.config.model_names:
            if progress:
                progress(f"fit {name} h{horizon}")
            models[model_key(name, horizon)] = fit_base_model(name, split, inputs, data.config, options)
    return models


def calibration_probabilities(
    data: TrainingData, inputs: ModelInputs, models: dict[str, Any]
) -> dict[str, np.ndarray]:
    """Each model's raw probabilities on its horizon's calibration window."""
    return {
        model_key(name, h): inputs.run(models[model_key(name, h)], data.config.batch_size, split.calibration)
        for h, split in data.splits.items()
        for name in data.config.model_names
    }


def fit_calibrators(data: TrainingData, raw: dict[str, np.ndarray]) -> dict[str, TemperatureCalibrator]:
    """One calibrator per model and horizon, on the calibration window."""
    return {
        model_key(name, h): TemperatureCalibrator().fit(raw[model_key(name, h)], split.y[split.calibration])
        for h, split in data.splits.items()
        for name in data.config.model_names
    }


def fit_ensembles(
    data: TrainingData, raw: dict[str, np.ndarray], calibrators: dict[str, Any], options: TrainOptions = TrainOptions()
) -> dict[int, Any]:
    """Per horizon: soft voting, or a stacking meta-learner on out-of-fold calibrated probabilities."""
    config = data.config
    if not config.use_ensemble or len(config.model_names) < 2:
        return {}
    if config.ensemble_method == "voting":
        return {
            h: VotingEnsemble(model_names=list(config.model_names)).fit(
                [calibrators[model_key(name, h)].transform(raw[model_key(name, h)]) for name in config.model_names]
            )
            for h in config.horizons
        }
    return {h: _fit_stacking(data, split, raw, options) for h, split in data.splits.items()}


def _fit_stacking(data: TrainingData, split: HorizonSplit, raw: dict[str, np.ndarray], options: TrainOptions):
    y = split.y[split.calibration]
    folds = walk_forward_folds(
        data.rows.timestamps[split.calibration],
        n_folds=options.stacking_folds,
        horizon=split.horizon,
        symbols=data.rows.symbols[split.calibration],
    )
    names = data.config.model_names
    oof = {name: [] for name in names}
    oof_rows = []
    for fold in folds:
        for name in names:
            probs = raw[model_key(name, split.horizon)]
            calibrator = TemperatureCalibrator().fit(probs[fold.train], y[fold.train])
            oof[name].append(calibrator.transform(probs[fold.val]))
        oof_rows.append(fold.val)
    stacked = [np.concatenate(oof[name]) for name in names]
    return StackingEnsemble(model_names=list(names)).fit(stacked, y[np.concatenate(oof_rows)])


def reference_statistics(data: TrainingData, inputs: ModelInputs, pipeline: InferencePipeline) -> dict[int, ReferenceStats]:
    """Drift reference per horizon: test-window features, predictions and performance."""
    stats = {}
    for horizon, split in data.splits.items():
        result = pipeline.score_inputs(inputs, horizon, split.test)
        stats[horizon] = ReferenceStats.from_data(
            features=inputs.features[split.test],
            feature_names=list(data.config.feature_columns),
            predictions=result.predictions,
            confidences=result.confidence,
            accuracy=float(np.mean(labels_to_index(result.predictions) == split.y[split.test])),
            groups=data.rows.symbols[split.test],
            log_loss=pipeline.evaluation.get("summary", {}).get(f"h{horizon}", {}).get("log_loss"),
        )
    return stats


def assemble_pipeline(data: TrainingData, scaler, models, calibrators, ensembles) -> InferencePipeline:
    pipeline = InferencePipeline(data.config)
    pipeline._scaler = scaler
    pipeline._models = models
    pipeline._calibrators = calibrators
    pipeline._meta_learner = ensembles
    first = next(iter(data.splits.values()))
    pipeline.metadata = {
        "training_window": first.window_bounds(data.rows.timestamps),
        "label_spec": {"method": "triple_barrier", "horizons": list(data.splits)},
    }
    return pipeline


def train_pipeline(
    ohlcv,
    config: InferenceConfig | str,
    options: TrainOptions = TrainOptions(),
    progress: Progress | None = None,
) -> InferencePipeline:
    """Train every stage on `ohlcv` and return the fitted pipeline, evaluated on the test window."""
    if isinstance(config, str):
        config = profile_config(config)
    data = prepare_training_data(ohlcv, config, options)
    scaler = fit_feature_scaler(data)
    inputs = data.rows.scaled_by(scaler)
    models = fit_base_models(data, inputs, options, progress)
    raw = calibration_probabilities(data, inputs, models)
    calibrators = fit_calibrators(data, raw)
    pipeline = assemble_pipeline(data, scaler, models, calibrators, fit_ensembles(data, raw, calibrators, options))
    pipeline.evaluation = evaluate_pipeline(data, inputs, pipeline)
    pipeline.reference_stats = reference_statistics(data, inputs, pipeline)
    return pipeline
