"""The bundle build: raw history -> features and labels -> scaler -> base models ->
calibration-window probabilities -> calibrators -> ensembles -> deployment/bundles/pipeline_vN/ ->
promoted to LIVE.

Each stage is one `pipeline_core.training` function taking the earlier stages' values.
Values move through the `build_stages` IO manager (`stage_io_manager.py`: the bundle's own
safe formats, no pickle). Bump a stage's `code_version` when its logic changes: the UI then
marks it and everything downstream as stale.
"""

import hashlib
import time
from contextlib import contextmanager
from typing import Any

import dagster as dg
import numpy as np
from pydantic import Field

from pipeline_core.bundle import Manifest
from pipeline_core.calibration import reliability_plot_png
from pipeline_core.components import FittedComponents
from pipeline_core.constants import CLASS_NAMES, CLASSES
from pipeline_core.data import list_partition_dates, read_bars
from pipeline_core.errors import NotDeployableError
from pipeline_core.training import (
    TrainingData,
    calibration_probabilities,
    fit_base_models,
    fit_calibrators,
    fit_ensembles,
    fit_feature_scaler,
    finalize,
    prepare_training_data,
)

from inference_assets import markdown
from inference_assets.defs.stage_io_manager import stage
from inference_assets.defs.resources import BundleStoreResource, DataLakeResource, TrainingResource

GROUP = "bundle"
POOL = "training"  # one training stage at a time across runs (dagster.yaml)


def _stage(kind: str, **kwargs):
    """A bundle build stage whose value (of component `kind`) goes through the build-stage IO manager."""
    return dg.asset(group_name=GROUP, pool=POOL, io_manager_key="build_stages", metadata=stage(kind), **kwargs)


@contextmanager
def _timed(metadata: dict):
    started = time.perf_counter()
    yield
    metadata["seconds"] = round(time.perf_counter() - started, 3)


@_stage("training_data", deps=["ohlcv_bars"], code_version="2", kinds={"polars", "numpy"})
def training_data(data_lake: DataLakeResource, training: TrainingResource) -> dg.Output[TrainingData]:
    """Causal features and triple-barrier labels per horizon, with purged time windows."""
    start, end = training.window(list_partition_dates(data_lake.ohlcv_dir))
    metadata: dict[str, Any] = {"history": f"{start}..{end}"}
    with _timed(metadata):
        bars = read_bars(data_lake.ohlcv_dir, start, end)
        data = prepare_training_data(bars, training.inference_config(), training.train_options())
    balance = _class_balance(data)
    return dg.Output(data, metadata={
        **metadata,
        "bars": bars.height,
        "rows_with_features": data.rows.n_scored,
        "features": data.rows.raw.shape[1],
        "class_balance": dg.MetadataValue.md(markdown.table(balance)),
        **{f"share_{row['class']}_h{row['horizon']}": row["share"] for row in balance},
    })


@_stage("scaler", code_version="2", kinds={"scikitlearn"})
def feature_scaler(training_data: TrainingData) -> dg.Output[Any]:
    """RobustScaler fit on the training window only (JSON)."""
    metadata: dict[str, Any] = {"fit_rows": int(len(training_data.scaler_rows))}
    with _timed(metadata):
        scaler = fit_feature_scaler(training_data)
    return dg.Output(scaler, metadata=metadata)


@_stage("model", code_version="2", kinds={"xgboost", "lightgbm"})
def base_models(
    context: dg.AssetExecutionContext, training: TrainingResource, training_data: TrainingData, feature_scaler
) -> dg.Output[dict[str, Any]]:
    """One model per family and horizon, early-stopped (native model files)."""
    inputs = training_data.rows.scaled_by(feature_scaler)
    metadata: dict[str, Any] = {}
    with _timed(metadata):
        models = fit_base_models(training_data, inputs, training.train_options(), progress=context.log.info)
    return dg.Output(models, metadata={"models": ", ".join(sorted(models)), **metadata})


@_stage("array", code_version="1", kinds={"numpy"})
def calibration_window_probabilities(
    training_data: TrainingData, feature_scaler, base_models: dict[str, Any]
) -> dg.Output[dict[str, np.ndarray]]:
    """Each base model's raw probabilities on its horizon's calibration window (computed once,
    for the calibrators and the ensembles)."""
    metadata: dict[str, Any] = {}
    with _timed(metadata):
        raw = calibration_probabilities(training_data, training_data.rows.scaled_by(feature_scaler), base_models)
    return dg.Output(raw, metadata={"rows": dg.MetadataValue.json({k: len(v) for k, v in raw.items()}), **metadata})


@_stage("calibrator", code_version="2")
def calibrators(
    training_data: TrainingData, calibration_window_probabilities: dict[str, np.ndarray]
) -> dg.Output[dict[str, Any]]:
    """A calibrator per model and horizon, chosen out of sample on the calibration window (JSON)."""
    metadata: dict[str, Any] = {}
    with _timed(metadata):
        fitted = fit_calibrators(training_data, calibration_window_probabilities)
    choices = [{"model": key, "calibration": c.choice, "parameters": c.parameters(), "reason": c.selection_["reason"]}
               for key, c in sorted(fitted.items())]
    return dg.Output(fitted, metadata={"calibration": dg.MetadataValue.md(markdown.table(choices)), **metadata})


@_stage("ensemble", code_version="2", kinds={"scikitlearn"})
def ensembles(
    training: TrainingResource, training_data: TrainingData,
    calibration_window_probabilities: dict[str, np.ndarray], calibrators: dict[str, Any],
) -> dg.Output[dict[int, Any]]:
    """Per horizon: stacking, voting or the best single model, chosen on out-of-fold calibrated probabilities (JSON)."""
    metadata: dict[str, Any] = {}
    with _timed(metadata):
        fitted = fit_ensembles(training_data, calibration_window_probabilities, calibrators, training.train_options())
    selection = [{"horizon": h, "chosen": e.method, **{f"cv {m}": v for m, v in e.selection_["cv_log_loss"].items()},
                  "clearly better": e.selection_["best"] if e.selection_["clearly_better"] else ""}
                 for h, e in sorted(fitted.items())]
    return dg.Output(fitted, metadata={
        "method": ", ".join(sorted({e.method for e in fitted.values()})) or "none",
        "selection": dg.MetadataValue.md(markdown.table(selection)),
        "horizons": ", ".join(str(h) for h in sorted(fitted)),
        **metadata,
    })


@_stage("manifest", code_version="2", kinds={"folder"})
def deployment_bundle(
    bundles: BundleStoreResource, training_data: TrainingData, feature_scaler, base_models: dict[str, Any],
    calibrators: dict[str, Any], ensembles: dict[int, Any],
) -> dg.Output[Manifest]:
    """The stages assembled, evaluated on the test window and saved as deployment/bundles/pipeline_vN/."""
    inputs = training_data.rows.scaled_by(feature_scaler)
    metadata: dict[str, Any] = {}
    with _timed(metadata):
        pipeline = finalize(training_data, inputs, FittedComponents(feature_scaler, base_models, calibrators, ensembles))
        store = bundles.store()
        path = store.path(store.next_version())
        manifest = pipeline.save(path)
    return dg.Output(manifest, metadata={
        "bundle_version": manifest.pipeline_version,
        "bundle_path": dg.MetadataValue.path(str(path)),
        "manifest_sha256": hashlib.sha256(manifest.to_json().encode()).hexdigest(),
        "evaluation": dg.MetadataValue.md(markdown.table(_evaluation_rows(pipeline.evaluation))),
        **_headline(pipeline.evaluation),
        "deployable": pipeline.evaluation["skill"]["deployable"],
        "skill": pipeline.evaluation["skill"]["reason"],
        "calibration_plot": dg.MetadataValue.md(_calibration_plots(training_data, inputs, pipeline)),
        **metadata,
    })


class PromotionConfig(dg.Config):
    """How the last build goes live."""

    force: bool = Field(
        default=False, description="Promote even a bundle marked not deployable (no skill); recorded under decisions/."
    )
    reason: str = Field(default="", description="Why a forced promotion is made (recorded).")


@dg.asset(group_name=GROUP, code_version="3")
def live_bundle(
    config: PromotionConfig, bundles: BundleStoreResource, deployment_bundle: Manifest
) -> dg.MaterializeResult:
    """The LIVE pointer, moved to the bundle the last build wrote if it is deployable (the previous stays for rollback)."""
    version = deployment_bundle.pipeline_version
    store = bundles.store()
    previous = store.live_version()
    try:
        store.promote(version, force=config.force, reason=config.reason)
    except NotDeployableError as err:
        raise dg.Failure(description=str(err), metadata={"bundle_version": version}) from err
    return dg.MaterializeResult(metadata={
        "live_version": version,
        "previous_version": previous or "none",
        "bundle_id": deployment_bundle.bundle_id,
        "forced": config.force,
        "deployable": str(deployment_bundle.deployable),
        "rollback": f"inference-pipeline bundles promote {previous}" if previous else "no earlier bundle",
    })


def _class_balance(data) -> list[dict]:
    """Share of each label class among the labelled training rows, per horizon."""
    rows = []
    for horizon, split in sorted(data.splits.items()):
        counts = np.bincount(split.y[split.train], minlength=len(CLASSES))
        for index, value in enumerate(CLASSES):
            rows.append({"horizon": horizon, "class": CLASS_NAMES[value], "share": float(counts[index] / counts.sum())})
    return rows


def _evaluation_rows(evaluation: dict) -> list[dict]:
    """The evaluation table for the UI: every row, log-loss with its 90% interval."""
    return [
        {"horizon": row["horizon"], "model": row["model"], "stage": row["stage"], "symbol": row["symbol"],
         "calibration": row.get("calibration", ""), "log_loss": row["log_loss"],
         "90% CI": "{:.4f}..{:.4f}".format(*row["log_loss_ci"]), "brier": row["brier"],
         "accuracy": row["accuracy"], "macro_f1": row["macro_f1"], "ece": row["ece"]}
        for row in evaluation["table"]
    ]


def _headline(evaluation: dict) -> dict[str, float]:
    """Test-window accuracy and log-loss of the final model per horizon (plotted across builds)."""
    return {
        f"{metric}_{name}": round(float(values[metric]), 6)
        for name, values in evaluation["summary"].items()
        for metric in ("accuracy", "log_loss")
    }


def _calibration_plots(data, inputs, pipeline) -> str:
    """Reliability diagrams on the test window, one per horizon: calibrated models and the final output."""
    images = []
    for horizon, split in sorted(data.splits.items()):
        result = pipeline.score_inputs(inputs, horizon, split.test)
        curves = {**result.model_outputs, "final": result.probabilities}
        images.append(f"**h{horizon}**\n\n" + markdown.png_image(
            reliability_plot_png(curves, split.y[split.test]), f"reliability h{horizon}"
        ))
    return "\n\n".join(images)
