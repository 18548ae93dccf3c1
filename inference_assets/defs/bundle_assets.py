"""The bundle build: raw history -> features and labels -> scaler -> base models ->
calibrators -> ensembles -> deployment/pipeline_vN/ -> promoted to LIVE.

Each stage is one `pipeline_core.training` function. Its output is persisted by the
stage itself in the build folder (`pipeline_core.build_folder`, no pickle), and the next stage
declares it with `deps=` and reads it from there; nothing passes through an IO manager.
Bump a stage's `code_version` when its logic changes: the UI then marks it and everything
downstream as stale.
"""

import hashlib
import time
from contextlib import contextmanager

import dagster as dg
import numpy as np
from pydantic import Field

from pipeline_core.build_folder import BuildFolder
from pipeline_core.bundle import MANIFEST_FILE
from pipeline_core.calibration import reliability_plot_png
from pipeline_core.data import list_partition_dates, read_bars
from pipeline_core.errors import NotDeployableError
from pipeline_core.constants import CLASS_NAMES, CLASSES
from pipeline_core.components import FittedComponents
from pipeline_core.training import (
    calibration_probabilities,
    fit_base_models,
    fit_calibrators,
    fit_ensembles,
    fit_feature_scaler,
    finalize,
    prepare_training_data,
)

from inference_assets import markdown
from inference_assets.defs.resources import BundleStoreResource, DataLakeResource, TrainingResource

GROUP = "bundle"
POOL = "training"  # one training stage at a time across runs (dagster.yaml)


@contextmanager
def _timed(info: dict):
    started = time.perf_counter()
    yield
    info["seconds"] = round(time.perf_counter() - started, 3)


@dg.asset(deps=["ohlcv_bars"], group_name=GROUP, pool=POOL, code_version="1", kinds={"polars", "numpy"})
def training_data(data_lake: DataLakeResource, training: TrainingResource) -> dg.MaterializeResult:
    """Causal features and triple-barrier labels per horizon, with purged time windows."""
    start, end = training.window(list_partition_dates(data_lake.ohlcv_dir))
    info = {"window": [start.isoformat(), end.isoformat()]}
    with _timed(info):
        bars = read_bars(data_lake.ohlcv_dir, start, end)
        data = prepare_training_data(bars, training.inference_config(), training.train_options())
    BuildFolder(data_lake.build_dir).save_training_data(data, info)
    balance = _class_balance(data)
    return dg.MaterializeResult(metadata={
        "history": f"{start}..{end}",
        "bars": bars.height,
        "rows_with_features": data.rows.n_scored,
        "features": data.rows.raw.shape[1],
        "class_balance": dg.MetadataValue.md(markdown.table(balance)),
        **{f"share_{row['class']}_h{row['horizon']}": row["share"] for row in balance},
        "seconds": info["seconds"],
    })


@dg.asset(deps=[training_data], group_name=GROUP, pool=POOL, code_version="1", kinds={"scikitlearn"})
def feature_scaler(data_lake: DataLakeResource) -> dg.MaterializeResult:
    """RobustScaler fit on the training window only (JSON)."""
    build = BuildFolder(data_lake.build_dir)
    data = build.load_training_data()
    info = {}
    with _timed(info):
        scaler = fit_feature_scaler(data)
    build.save_scaler(scaler, info)
    return dg.MaterializeResult(metadata={"fit_rows": int(len(data.scaler_rows)), "seconds": info["seconds"]})


@dg.asset(deps=[training_data, feature_scaler], group_name=GROUP, pool=POOL, code_version="1",
          kinds={"xgboost", "lightgbm"})
def base_models(
    context: dg.AssetExecutionContext, data_lake: DataLakeResource, training: TrainingResource
) -> dg.MaterializeResult:
    """One model per family and horizon, early-stopped (native model files)."""
    build = BuildFolder(data_lake.build_dir)
    data = build.load_training_data()
    inputs = data.rows.scaled_by(build.load_scaler())
    info = {}
    with _timed(info):
        models = fit_base_models(data, inputs, training.train_options(), progress=context.log.info)
    build.save_models(models, info)
    return dg.MaterializeResult(metadata={"models": ", ".join(sorted(models)), "seconds": info["seconds"]})


@dg.asset(deps=[training_data, feature_scaler, base_models], group_name=GROUP, pool=POOL, code_version="1")
def calibrators(data_lake: DataLakeResource) -> dg.MaterializeResult:
    """A temperature calibrator per model and horizon, fit on the calibration window (JSON)."""
    build = BuildFolder(data_lake.build_dir)
    data, models = build.load_training_data(), build.load_models()
    inputs = data.rows.scaled_by(build.load_scaler())
    info = {}
    with _timed(info):
        fitted = fit_calibrators(data, calibration_probabilities(data, inputs, models))
    build.save_calibrators(fitted, info)
    choices = [{"model": key, "calibration": c.choice, "parameters": c.parameters(), "reason": c.selection_["reason"]}
               for key, c in sorted(fitted.items())]
    return dg.MaterializeResult(metadata={
        "calibration": dg.MetadataValue.md(markdown.table(choices)),
        "seconds": info["seconds"],
    })


@dg.asset(deps=[training_data, feature_scaler, base_models, calibrators], group_name=GROUP, pool=POOL,
          code_version="1", kinds={"scikitlearn"})
def ensembles(data_lake: DataLakeResource, training: TrainingResource) -> dg.MaterializeResult:
    """Per horizon: a stacking meta-learner on out-of-fold calibrated probabilities, or voting (JSON)."""
    build = BuildFolder(data_lake.build_dir)
    data, models = build.load_training_data(), build.load_models()
    inputs = data.rows.scaled_by(build.load_scaler())
    info = {}
    with _timed(info):
        raw = calibration_probabilities(data, inputs, models)
        fitted = fit_ensembles(data, raw, build.load_calibrators(), training.train_options())
    build.save_ensembles(fitted, info)
    selection = [{"horizon": h, "chosen": e.method, **{f"cv {m}": v for m, v in e.selection_["cv_log_loss"].items()},
                  "clearly better": e.selection_["best"] if e.selection_["clearly_better"] else ""}
                 for h, e in sorted(fitted.items())]
    return dg.MaterializeResult(metadata={
        "method": ", ".join(sorted({e.method for e in fitted.values()})) or "none",
        "selection": dg.MetadataValue.md(markdown.table(selection)),
        "horizons": ", ".join(str(h) for h in sorted(fitted)),
        "seconds": info["seconds"],
    })


@dg.asset(deps=[training_data, feature_scaler, base_models, calibrators, ensembles], group_name=GROUP,
          pool=POOL, code_version="1", kinds={"folder"})
def deployment_bundle(data_lake: DataLakeResource, bundles: BundleStoreResource) -> dg.MaterializeResult:
    """The stages assembled, evaluated on the test window and saved as deployment/pipeline_vN/."""
    build = BuildFolder(data_lake.build_dir)
    data = build.load_training_data()
    scaler = build.load_scaler()
    inputs = data.rows.scaled_by(scaler)
    info = {}
    with _timed(info):
        components = FittedComponents(scaler, build.load_models(), build.load_calibrators(), build.load_ensembles())
        pipeline = finalize(data, inputs, components)
        store = bundles.store()
        path = store.path(store.next_version())
        version = pipeline.save(path).pipeline_version
    digest = hashlib.sha256((path / MANIFEST_FILE).read_bytes()).hexdigest()
    build.save_bundle_receipt({"version": version, "path": str(path), "sha256": digest}, info)
    stages = ["training_data", "feature_scaler", "base_models", "calibrators", "ensembles"]
    training_seconds = sum(build.stage_info(stage)["seconds"] for stage in stages) + info["seconds"]
    return dg.MaterializeResult(metadata={
        "bundle_version": version,
        "bundle_path": dg.MetadataValue.path(str(path)),
        "manifest_sha256": digest,
        "training_seconds": round(training_seconds, 1),
        "evaluation": dg.MetadataValue.md(markdown.table(_evaluation_rows(pipeline.evaluation))),
        **_headline(pipeline.evaluation),
        "deployable": pipeline.evaluation["skill"]["deployable"],
        "skill": pipeline.evaluation["skill"]["reason"],
        "calibration_plot": dg.MetadataValue.md(_calibration_plots(data, inputs, pipeline)),
    })


class PromotionConfig(dg.Config):
    """How the last build goes live."""

    force: bool = Field(
        default=False, description="Promote even a bundle marked not deployable (no skill); recorded under decisions/."
    )
    reason: str = Field(default="", description="Why a forced promotion is made (recorded).")


@dg.asset(deps=[deployment_bundle], group_name=GROUP, code_version="2")
def live_bundle(config: PromotionConfig, data_lake: DataLakeResource, bundles: BundleStoreResource) -> dg.MaterializeResult:
    """The LIVE pointer, moved to the bundle the last build wrote if it is deployable (the previous stays for rollback)."""
    receipt = BuildFolder(data_lake.build_dir).load_bundle_receipt()
    store = bundles.store()
    previous = store.live_version()
    try:
        store.promote(receipt["version"], force=config.force, reason=config.reason)
    except NotDeployableError as err:
        raise dg.Failure(description=str(err), metadata={"bundle_version": receipt["version"]}) from err
    return dg.MaterializeResult(metadata={
        "live_version": receipt["version"],
        "previous_version": previous or "none",
        "manifest_sha256": receipt["sha256"],
        "forced": config.force,
        "deployable": str(store.manifest(receipt["version"]).deployable),
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
