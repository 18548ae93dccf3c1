"""train_pipeline(): raw OHLCV -> fitted InferencePipeline, as a chain of small stages.

Windows, in time order per horizon: train | early-stopping | calibration | test, purged by
the horizon and embargoed. Each must hold enough independent label periods (unique
timestamps / horizon) for what is fitted on it (`TrainOptions.min_label_periods`); too few
is an `InsufficientHistoryError`, except for the calibration window, whose documented
fallback is identity calibration and the configured ensemble without cross-validation.

Base models fit on train and stop early on the early-stopping window. On the calibration
window, walk-forward folds choose each model's calibrator out of sample (the identity
unless a method wins, `calibration_selection`) and give out-of-fold calibrated
probabilities, on which stacking, voting and the best single model are compared and the
final combination is fit (`ensemble_selection`). The test window is only used to evaluate
and to record the drift reference.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import polars as pl

from pipeline_core.calibration_selection import calibrator_of, select_calibrator
from pipeline_core.components import FittedComponents
from pipeline_core.data import check_bar_intervals, validate_ohlcv
from pipeline_core.ensemble_selection import select_ensemble
from pipeline_core.errors import ConfigError, InsufficientHistoryError
from pipeline_core.evaluation import evaluate_pipeline
from pipeline_core.features import get_feature_set
from pipeline_core.inputs import FeatureRows, ModelInputs, featurize
from pipeline_core.labels import label_params, labels_to_index, triple_barrier_labels
from pipeline_core.metrics import time_blocks
from pipeline_core.models import MODEL_FAMILIES, create_model
from pipeline_core.monitoring import ReferenceStats
from pipeline_core.pipeline import InferenceConfig, InferencePipeline, model_key
from pipeline_core.profiles import profile_config
from pipeline_core.scaling import fit_scaler
from pipeline_core.splits import Fold, chronological_split, walk_forward_folds

Progress = Callable[[str], None]
UNLABELLED = -1
WINDOWS = ("train", "early_stopping", "calibration", "test")
# Fewest independent label periods (unique timestamps / horizon) a window may hold.
MIN_LABEL_PERIODS = {"train": 20, "early_stopping": 3, "calibration": 12, "test": 10}


@dataclass(frozen=True)
class TrainOptions:
    train_frac: float = 0.6
    val_frac: float = 0.2  # early stopping + calibration; the rest is the test window
    early_stopping_share: float = 0.4  # of the validation window, the earlier part
    stacking_folds: int = 4  # walk-forward folds in the calibration window (calibrator and ensemble choice)
    auto_ensemble: bool = False  # take the combination that wins out of sample, not the configured one
    allow_mixed_intervals: bool = False  # train on symbols of different bar intervals
    min_label_periods: dict[str, float] = field(default_factory=lambda: dict(MIN_LABEL_PERIODS))
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
        if set(self.min_label_periods) != set(WINDOWS):
            raise ConfigError(f"min_label_periods must name exactly the windows {list(WINDOWS)}.")


@dataclass
class HorizonSplit:
    """One horizon's labels on the scored rows and its windows (positions into them)."""

    horizon: int
    y: np.ndarray  # class index 0/1/2, UNLABELLED where the label is unknown
    train: np.ndarray
    early_stopping: np.ndarray
    calibration: np.ndarray
    test: np.ndarray
    folds: list[Fold] = field(default_factory=list)  # walk-forward folds, positions into `calibration`
    folds_note: str = ""  # why there are none
    sizes: dict[str, dict[str, Any]] = field(default_factory=dict)  # per window: rows, periods, symbols

    def windows(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in WINDOWS}

    def window_bounds(self, timestamps: np.ndarray) -> dict[str, str]:
        return {
            name: f"{timestamps[idx].min()}..{timestamps[idx].max()}"
            for name, idx in self.windows().items()
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
    check_bar_intervals(bars, allow_mixed=options.allow_mixed_intervals)
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
    parts = dict(zip(WINDOWS, [split.train[known[split.train]], early, calibration, split.test[known[split.test]]]))
    sizes = {name: _window_size(rows, idx, horizon) for name, idx in parts.items()}
    _check_window_sizes(sizes, horizon, options.min_label_periods)
    _warn_on_missing_symbols(sizes, np.unique(rows.symbols), horizon)
    folds, note = _calibration_folds(rows, parts["calibration"], horizon, options)
    return HorizonSplit(horizon, y, *parts.values(), folds=folds, folds_note=note, sizes=sizes)


def _window_size(rows: FeatureRows, idx: np.ndarray, horizon: int) -> dict[str, Any]:
    times = np.unique(rows.timestamps[idx])
    return {"rows": int(len(idx)), "periods": round(len(times) / horizon, 1),
            "symbols": sorted(str(s) for s in np.unique(rows.symbols[idx]))}


def _check_window_sizes(sizes: dict[str, dict[str, Any]], horizon: int, minimum: dict[str, float]) -> None:
    """InsufficientHistoryError naming every window (but calibration, which falls back) that is too small."""
    short = {
        name: size["periods"] for name, size in sizes.items()
        if name != "calibration" and size["periods"] < minimum[name]
    }
    if short:
        raise InsufficientHistoryError(
            f"Too few labelled bars for horizon {horizon}: windows {sorted(short)} hold {short} independent "
            f"label periods (unique timestamps / horizon); they need at least "
            f"{ {name: minimum[name] for name in short} }. Window rows: "
            f"{ {name: size['rows'] for name, size in sizes.items()} }. Give more history or a shorter horizon."
        )


def _warn_on_missing_symbols(sizes: dict[str, dict[str, Any]], symbols: np.ndarray, horizon: int) -> None:
    for name, size in sizes.items():
        missing = sorted(set(str(s) for s in symbols) - set(size["symbols"]))
        if missing:
            warnings.warn(
                f"The h{horizon} {name} window holds only {len(size['symbols'])} of {len(symbols)} symbols "
                f"(missing {missing[:5]}): its figures say nothing about those symbols.",
                stacklevel=3,
            )


def _calibration_folds(
    rows: FeatureRows, calibration: np.ndarray, horizon: int, options: TrainOptions
) -> tuple[list[Fold], str]:
    """Walk-forward folds over the calibration window, or none and the reason."""
    periods = len(np.unique(rows.timestamps[calibration])) / horizon
    if periods < options.min_label_periods["calibration"]:
        return [], (
            f"calibration window holds {periods:.1f} independent label periods "
            f"(< {options.min_label_periods['calibration']}): identity calibration, no ensemble cross-validation"
        )
    try:
        folds = walk_forward_folds(
            rows.timestamps[calibration], n_folds=options.stacking_folds, horizon=horizon,
            symbols=rows.symbols[calibration],
        )
    except InsufficientHistoryError as err:
        return [], f"calibration window too small for {options.stacking_folds} folds: {err}"
    return folds, ""


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


def fit_calibrators(data: TrainingData, raw: dict[str, np.ndarray]) -> dict[str, Any]:
    """One calibrator per model and horizon, chosen out of sample on the calibration window."""
    return {
        model_key(name, h): select_calibrator(
            raw[model_key(name, h)], split.y[split.calibration], split.folds,
            blocks=time_blocks(data.rows.timestamps[split.calibration], h), fallback_reason=split.folds_note,
        )
        for h, split in data.splits.items()
        for name in data.config.model_names
    }


def fit_ensembles(
    data: TrainingData, raw: dict[str, np.ndarray], calibrators: dict[str, Any], options: TrainOptions = TrainOptions()
) -> dict[int, Any]:
    """Per horizon: the final combination of several models, chosen and fit on out-of-fold
    calibrated probabilities (the configured method, or the best with `auto_ensemble`)."""
    config = data.config
    if len(config.model_names) < 2:
        return {}
    default = config.ensemble_method if config.use_ensemble else "single"
    ensembles = {}
    for horizon, split in data.splits.items():
        oof, y, fold_of_row, positions = out_of_fold_probabilities(data, split, raw, calibrators)
        ensembles[horizon] = select_ensemble(
            oof, y, fold_of_row, data.rows.timestamps[split.calibration][positions], default, horizon,
            auto=options.auto_ensemble, seed=options.seed,
        )
    return ensembles


def out_of_fold_probabilities(
    data: TrainingData, split: HorizonSplit, raw: dict[str, np.ndarray], calibrators: dict[str, Any]
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Each model's calibrated probabilities on the calibration window, out of fold: per fold,
    its chosen calibration method refit on the earlier rows. Without folds, the fitted
    (identity) calibrators on the whole window. Returns probabilities by model, labels, the
    fold of each row and the rows' positions in the calibration window."""
    y = split.y[split.calibration]
    names = data.config.model_names
    if not split.folds:
        positions = np.arange(len(y))
        oof = {n: calibrators[model_key(n, split.horizon)].transform(raw[model_key(n, split.horizon)]) for n in names}
        return oof, y, np.zeros(len(y), dtype=np.int64), positions
    oof = {name: [] for name in names}
    for fold in split.folds:
        for name in names:
            key = model_key(name, split.horizon)
            refit = calibrator_of(calibrators[key].choice).fit(raw[key][fold.train], y[fold.train])
            oof[name].append(refit.transform(raw[key][fold.val]))
    positions = np.concatenate([fold.val for fold in split.folds])
    fold_of_row = np.concatenate([np.full(len(f.val), k) for k, f in enumerate(split.folds)])
    return {name: np.concatenate(parts) for name, parts in oof.items()}, y[positions], fold_of_row, positions


def reference_statistics(
    data: TrainingData, inputs: ModelInputs, pipeline: InferencePipeline, evaluation: dict[str, Any]
) -> dict[int, ReferenceStats]:
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
            log_loss=evaluation["summary"][f"h{horizon}"]["log_loss"],
        )
    return stats


def finalize(
    data: TrainingData, inputs: ModelInputs, components: FittedComponents, label_kwargs: dict[str, Any] | None = None
) -> InferencePipeline:
    """The fitted components as a pipeline, evaluated on the test window, with its drift
    reference: the last step of `train_pipeline` and of the Dagster bundle build alike.
    `label_kwargs` are the `triple_barrier_labels` arguments the labels were made with."""
    first = next(iter(data.splits.values()))
    metadata = {
        "training_window": first.window_bounds(data.rows.timestamps),
        "label_spec": {"method": "triple_barrier", "horizons": list(data.splits), **label_params(label_kwargs or {})},
    }
    scorer = InferencePipeline(data.config, components, metadata=metadata)
    evaluation = evaluate_pipeline(data, inputs, scorer)
    return InferencePipeline(
        data.config, components, metadata=metadata, evaluation=evaluation,
        reference_stats=reference_statistics(data, inputs, scorer, evaluation),
    )


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
    ensembles = fit_ensembles(data, raw, calibrators, options)
    return finalize(data, inputs, FittedComponents(scaler, models, calibrators, ensembles), options.label_params)
