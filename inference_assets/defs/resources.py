"""Resources: where data and bundles live, which bundle scores, check thresholds, training,
drift monitoring and retraining.

Every deployment-specific value comes from an environment variable when it is set (the UI
then shows the variable's name) and from a default that runs the embedded demo otherwise:

    INFERENCE_DATA_ROOT            data         raw bars (ohlcv/), predictions/, drift/, build/
    INFERENCE_DEPLOYMENT_ROOT      deployment/bundles   bundles pipeline_vN/, decisions/ and the LIVE pointer
    INFERENCE_BUNDLE_VERSION       (empty)      pin scoring to one bundle; empty follows LIVE
    INFERENCE_THROUGHPUT_FLOOR     10000        rows/s below which `throughput` warns
    INFERENCE_RETRAIN_WINDOW_DAYS  20           raw dates a retraining candidate trains on

Runs launched by a sensor get no launchpad config, so what a deployment tunes for them is
an environment variable here (or a default below).

Relative paths resolve against the working directory of the process, which is the
repository root for `make demo`, `make ui` and runs launched from the UI (workspace.yaml).
"""

import functools
import os
from datetime import date
from pathlib import Path

import dagster as dg
from pydantic import Field

from pipeline_core.bundle import BundleStore
from pipeline_core.errors import BundleError
from pipeline_core.features import DEFAULT_FEATURE_SET
from pipeline_core.models import model_class
from pipeline_core.monitoring import DriftConfig
from pipeline_core.pipeline import InferenceConfig, InferencePipeline
from pipeline_core.retraining import RetrainPolicy
from pipeline_core.training import TrainOptions

from inference_assets.defs.partitions import HORIZONS

BUNDLE_VERSION_TAG = "inference/bundle_version"


def env_or_default(name: str, default: str) -> str:
    """`dg.EnvVar(name)` when the variable is set, else `default`."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def env_int_or_default(name: str, default: int) -> int:
    return dg.EnvVar.int(name) if os.environ.get(name) else default


class DataLakeResource(dg.ConfigurableResource):
    """The data root: raw bars, scored predictions, drift reports and the bundle build folder."""

    root: str = Field(default="data", description="Holds ohlcv/, predictions/, drift/ and build/.")

    @property
    def ohlcv_dir(self) -> Path:
        return Path(self.root).resolve() / "ohlcv"

    @property
    def predictions_dir(self) -> Path:
        return Path(self.root).resolve() / "predictions"

    @property
    def drift_dir(self) -> Path:
        """Drift reports as JSON: drift/horizon=H/date=D/report.json."""
        return Path(self.root).resolve() / "drift"

    @property
    def realized_dir(self) -> Path:
        """Predictions with their outcomes: realized/horizon=H/date=D/part-0.parquet."""
        return Path(self.root).resolve() / "realized"

    @property
    def backtests_dir(self) -> Path:
        """Backtest reports: backtests/<month>/h<H>/ (report.md, metrics.json, trades.parquet, PNGs)."""
        return Path(self.root).resolve() / "backtests"

    @property
    def build_dir(self) -> Path:
        """Where the bundle assets persist each stage's output (JSON, npz, native models)."""
        return Path(self.root).resolve() / "build"


class BundleStoreResource(dg.ConfigurableResource):
    """The versioned bundles and which one scoring uses.

    A run resolves its bundle once and records it in the run tag `inference/bundle_version`,
    so every step of the run scores with the bundle the run started with even if another
    bundle is promoted meanwhile; new runs pick up the promotion.
    """

    deployment_root: str = Field(default="deployment/bundles", description="Holds pipeline_vN/ and LIVE.")
    bundle_version: str = Field(
        default="", description="Score with this version (e.g. v3); empty follows the LIVE pointer."
    )

    def store(self) -> BundleStore:
        return BundleStore(Path(self.deployment_root).resolve())

    def scoring_version(self) -> str:
        """The pinned version, else the one LIVE names; BundleError when there is neither."""
        if self.bundle_version:
            return self.bundle_version
        live = self.store().live_version()
        if live is None:
            raise BundleError(
                f"No live bundle under {self.store().root}: materialize the bundle assets "
                "(bundle_job) or promote a version with `inference-pipeline bundles promote vN`."
            )
        return live

    def load(self, version: str) -> InferencePipeline:
        """The bundle `version`, loaded once per process (cached by path and bundle id)."""
        store = self.store()
        return _load_bundle(str(store.path(version)), store.bundle_id(version))

    def pipeline_for_run(self, context) -> InferencePipeline:
        """The bundle of this run: its `inference/bundle_version` tag, else resolved now and tagged."""
        version = context.run.tags.get(BUNDLE_VERSION_TAG)
        if version is None:
            version = self.scoring_version()
            context.instance.add_run_tags(context.run.run_id, {BUNDLE_VERSION_TAG: version})
        return self.load(version)


@functools.lru_cache(maxsize=4)
def _load_bundle(path: str, bundle_id: str) -> InferencePipeline:
    """Keyed by bundle id too, so a bundle rewritten in place is loaded afresh."""
    return InferencePipeline.load(path)


class ScoringChecksResource(dg.ConfigurableResource):
    """Thresholds and sample sizes of the checks on scored partitions."""

    throughput_floor: int = Field(default=10_000, description="Rows/s; below it `throughput` warns.")
    lookahead_samples: int = Field(
        default=20, description="At most this many cut points per date for `no_lookahead` (all its horizons at once)."
    )
    lookahead_bars_per_cut: int = Field(
        default=4_000,
        description="`no_lookahead` takes one cut point per this many bars of a date (at least 2: the date's "
        "first scorable bar, which exposes any leak, and its last), so the audit's cost follows scoring's.",
    )
    lookahead_symbols: int = Field(
        default=50,
        description="`no_lookahead` audits at most this many symbols of a date, drawn with the seed for each date: "
        "a cut run reads every audited symbol's window, so on a wide universe the audit would otherwise cost "
        "several times the scoring; a leak in the features' code shows on every symbol.",
    )
    parity_samples: int = Field(default=500, description="Rows per partition compared by `parity`.")
    parity_tolerance: float = Field(default=1e-6, description="Max abs probability difference.")
    seed: int = 0


class TrainingResource(dg.ConfigurableResource):
    """What the bundle assets and the retraining train: models, features, ensemble, history, effort.

    The bundle always covers every scoring horizon (5, 10, 15, 20). `train_start` /
    `train_end` bound the bundle build only; a retraining takes its window from
    `RetrainingResource`.
    """

    model_names: list[str] = Field(default=["xgboost", "lightgbm"])
    feature_set: str = Field(default=DEFAULT_FEATURE_SET, description="A registered feature set (pipeline_core.features).")
    # Voting by default: on small calibration windows (the demo's, a retraining's) the stacking
    # meta-learner overfits and loses to voting out of sample (see README, What proves a model).
    ensemble_method: str = Field(default="voting", description="stacking, voting or single (the best model)")
    auto_ensemble: bool = Field(
        default=False, description="Take the combination that wins out of sample instead of ensemble_method."
    )
    max_boosting_rounds: int = Field(
        default=300, description="n_estimators of the boosting models (early stopping may stop sooner)."
    )
    stacking_folds: int = Field(
        default=4, description="Walk-forward folds in the calibration window (calibrator and ensemble choice)."
    )
    threads: int = Field(default=2, description="Threads per boosting model (the machine's cores).")
    train_start: str = Field(default="", description="First date of history (YYYY-MM-DD); empty: the first.")
    train_end: str = Field(default="", description="Last date of history (YYYY-MM-DD); empty: the last.")
    seed: int = 0

    def inference_config(self) -> InferenceConfig:
        return InferenceConfig(
            model_names=list(self.model_names), horizons=list(HORIZONS), ensemble_method=self.ensemble_method,
            feature_set=self.feature_set,
        )

    def train_options(self) -> TrainOptions:
        boosting = {
            name: {"n_estimators": self.max_boosting_rounds, "n_jobs": self.threads}
            for name in self.model_names
            if "n_estimators" in model_class(name).default_params
        }
        return TrainOptions(
            stacking_folds=self.stacking_folds, model_params=boosting, seed=self.seed, auto_ensemble=self.auto_ensemble
        )

    def window(self, available: list[date]) -> tuple[date, date]:
        """The training dates: the configured bounds, defaulting to the available history."""
        if not available:
            raise BundleError("No raw bars to train on: generate or load them first (make demo).")
        start = date.fromisoformat(self.train_start) if self.train_start else available[0]
        end = date.fromisoformat(self.train_end) if self.train_end else available[-1]
        return start, end


class StrategyResource(dg.ConfigurableResource):
    """The simple strategy realized outcomes are traded with (`pipeline_core.realized`):
    long (short) on a +1 (-1) prediction whose confidence reaches `threshold`, held for the
    horizon, paying `cost_bps` per round trip; every signal its own equal-notional trade."""

    threshold: float = Field(default=0.5, description="Confidence at or above which a +1 / -1 prediction is traded.")
    cost_bps: float = Field(default=1.0, description="Cost of a trade (entry and exit together), in basis points.")


class DriftResource(dg.ConfigurableResource):
    """How `prediction_drift` judges a scored partition (the rest of DriftConfig keeps its defaults).

    A partition is CRITICAL when at least `critical_feature_share` of the features drifted
    (or several drifted severely); only CRITICAL launches a retraining.
    """

    ks_alpha: float = Field(default=DriftConfig.ks_alpha, description="Family-wise level of the per-feature KS tests.")
    critical_feature_share: float = Field(
        default=DriftConfig.critical_feature_share, description="Share of drifted features that makes a partition CRITICAL."
    )
    min_batch_size: int = Field(default=DriftConfig.min_batch_size, description="Fewer scored rows: not judged.")
    plot_top_k: int = Field(default=6, description="Features shown in the report's histogram plot.")

    def drift_config(self) -> DriftConfig:
        return DriftConfig(
            ks_alpha=self.ks_alpha, critical_feature_share=self.critical_feature_share, min_batch_size=self.min_batch_size
        )


class RetrainingResource(dg.ConfigurableResource):
    """The promotion gate of `retrained_bundle` (pipeline_core.retraining.RetrainPolicy).

    The candidate trains on `window_days` raw dates ending just before the `holdout_days`
    most recent raw dates; both bundles are judged on the holdout.
    """

    window_days: int = Field(default=20, description="Raw dates the candidate trains on.")
    holdout_days: int = Field(default=2, description="Latest raw dates both bundles are judged on.")
    tolerance: float = Field(default=0.0, description="Candidate log-loss may exceed live log-loss by at most this.")
    audit_samples: int = Field(default=20, description="Cut points per lookahead / warm-up audit of the candidate.")

    def policy(self) -> RetrainPolicy:
        return RetrainPolicy(
            window_days=self.window_days, holdout_days=self.holdout_days, tolerance=self.tolerance,
            audit_samples=self.audit_samples,
        )


def data_lake_resource() -> DataLakeResource:
    return DataLakeResource(root=env_or_default("INFERENCE_DATA_ROOT", "data"))


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "data_lake": data_lake_resource(),
            "bundles": BundleStoreResource(
                deployment_root=env_or_default("INFERENCE_DEPLOYMENT_ROOT", "deployment/bundles"),
                bundle_version=env_or_default("INFERENCE_BUNDLE_VERSION", ""),
            ),
            "scoring_checks": ScoringChecksResource(
                throughput_floor=env_int_or_default("INFERENCE_THROUGHPUT_FLOOR", 10_000)
            ),
            "training": TrainingResource(),
            "drift": DriftResource(),
            "strategy": StrategyResource(),
            "retraining": RetrainingResource(window_days=env_int_or_default("INFERENCE_RETRAIN_WINDOW_DAYS", 20)),
        }
    )
