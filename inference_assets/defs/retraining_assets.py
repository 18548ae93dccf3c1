"""Retraining behind a promotion gate, launched by `drift_retraining_sensor` on CRITICAL drift.

`retrained_bundle` is one `pipeline_core.retraining.retrain_and_gate` call: a candidate
trained on the `RetrainingResource.window_days` raw dates before the holdout (the
`holdout_days` latest dates up to the drifted one), with the bundle build's own
`TrainingResource` options, saved as the next `deployment/bundles/pipeline_vN/`, audited
(lookahead, warm-up, parity) and compared with the live bundle on the holdout. LIVE moves
to it only when every audit passes and its log-loss is not worse than live's (plus the
tolerance); otherwise LIVE stays and the metadata (and `deployment/bundles/decisions/vN.json`)
say why. The candidate folder stays either way, for inspection or a later manual
`inference-pipeline bundles promote vN`.

An asset rather than an op job: each materialization leaves a real artifact (the candidate
bundle and its decision file), and the asset's history in the catalog is the timeline of
retraining decisions with both bundles' holdout metrics plotted across them.
`live_bundle` moves LIVE for the initial build (or a deliberate rebuild from the UI),
behind the skill gate only; a retraining moves it only through this fuller gate.

Scoring runs in flight are unaffected by a promotion: each scoring run pinned its bundle
in its `inference/bundle_version` tag when it started.
"""

from datetime import date

import dagster as dg
from pydantic import Field

from pipeline_core.bundle import BundleStore
from pipeline_core.data import list_partition_dates
from pipeline_core.errors import DataValidationError
from pipeline_core.retraining import DECISIONS_DIR, PromotionDecision, retrain_and_gate

from inference_assets import markdown
from inference_assets.defs.bundle_assets import POOL
from inference_assets.defs.resources import (
    BundleStoreResource,
    DataLakeResource,
    RetrainingResource,
    TrainingResource,
)
from inference_assets.defs.scoring_assets import ohlcv_bars

AUDIT_CHECK = "candidate_audits"
HEADLINE_METRICS = ("log_loss", "accuracy")


class RetrainingConfig(dg.Config):
    """What one retraining run is about (the sensor fills it in from the drift it saw)."""

    end_date: str = Field(
        default="", description="Last date of the holdout (YYYY-MM-DD); empty: the latest raw date, as the sensor asks."
    )
    horizon: int | None = Field(default=None, description="Horizon both bundles are judged on; empty: the longest.")
    drifted_date: str = Field(default="", description="The latest CRITICAL date that asked for this run (recorded only).")
    reasons: list[str] = Field(
        default=[], description="What fired: feature drift and/or realized performance (recorded only)."
    )
    drifted_partitions: list[str] = Field(
        default=[], description="The CRITICAL prediction_drift partitions that asked for this run (recorded only)."
    )


@dg.asset(
    deps=[ohlcv_bars, "live_bundle"],
    group_name="retraining",
    pool=POOL,  # one training at a time: two candidates never take the same pipeline_vN
    code_version="1",
    kinds={"folder"},
    check_specs=[
        dg.AssetCheckSpec(
            AUDIT_CHECK,
            asset="retrained_bundle",
            description="The candidate passed every audit (lookahead, warm-up, parity); WARN otherwise, LIVE stays.",
        )
    ],
)
def retrained_bundle(
    context: dg.AssetExecutionContext,
    config: RetrainingConfig,
    data_lake: DataLakeResource,
    bundles: BundleStoreResource,
    training: TrainingResource,
    retraining: RetrainingResource,
) -> dg.MaterializeResult:
    """A candidate bundle on a rolling window up to the drifted date, promoted only through the gate."""
    end = _end_date(config, data_lake)
    store = bundles.store()
    decision = retrain_and_gate(
        data_lake.ohlcv_dir, store, end, training.inference_config(), retraining.policy(),
        training.train_options(), horizon=config.horizon,
    )
    verdict = "promoted" if decision.promoted else "rejected"
    context.log.info(f"{decision.candidate} {verdict}: {'; '.join(decision.reasons)}")
    if decision.promoted:
        context.log_event(dg.AssetObservation(asset_key="live_bundle", metadata={
            "live_version": decision.candidate,
            "previous_version": decision.live_before or "none",
            "moved_by": "retrained_bundle (promotion gate passed)",
        }))
    return dg.MaterializeResult(
        metadata=_metadata(decision, verdict, store, config),
        check_results=[_audit_result(decision)],
    )


def _end_date(config: RetrainingConfig, data_lake: DataLakeResource) -> date:
    if config.end_date:
        return date.fromisoformat(config.end_date)
    available = list_partition_dates(data_lake.ohlcv_dir)
    if not available:
        raise DataValidationError(f"No raw bars under {data_lake.ohlcv_dir} to retrain on.")
    return available[-1]


def _metadata(decision: PromotionDecision, verdict: str, store: BundleStore, config: RetrainingConfig) -> dict:
    """The decision, its reasons, the audits, both bundles' holdout metrics, where it all is."""
    rollback = (
        f"inference-pipeline bundles --root {store.root} promote {decision.live_before}"
        if decision.promoted and decision.live_before
        else "nothing to roll back: LIVE did not move"
    )
    return {
        "decision": verdict,
        "promoted": decision.promoted,
        "candidate_version": decision.candidate,
        "live_before": decision.live_before or "none",
        "live_version": store.live_version() or "none",
        "reasons": dg.MetadataValue.md("\n".join(f"- {reason}" for reason in decision.reasons)),
        "audits": dg.MetadataValue.md(markdown.table(
            [{"audit": name, "passed": passed} for name, passed in decision.audits.items()]
        )),
        "metrics": dg.MetadataValue.md(markdown.table(_metric_rows(decision))),
        **{f"candidate_{name}": round(float(decision.candidate_metrics[name]), 6) for name in HEADLINE_METRICS},
        **{f"live_{name}": round(float(decision.live_metrics[name]), 6)
           for name in HEADLINE_METRICS if name in decision.live_metrics},
        "horizon": decision.horizon,
        "train_window": f"{decision.train_dates[0]}..{decision.train_dates[-1]}",
        "holdout": f"{decision.holdout_dates[0]}..{decision.holdout_dates[-1]}",
        "drifted_date": config.drifted_date or "none (launched by hand)",
        "retrain_reasons": ", ".join(config.reasons) or "none (launched by hand)",
        "drifted_partitions": ", ".join(config.drifted_partitions) or "none (launched by hand)",
        "candidate_path": dg.MetadataValue.path(str(store.path(decision.candidate))),
        "decision_path": dg.MetadataValue.path(str(store.root / DECISIONS_DIR / f"{decision.candidate}.json")),
        "rollback": rollback,
    }


def _metric_rows(decision: PromotionDecision) -> list[dict]:
    """Candidate and live figures on the holdout, one row per metric (live NaN without a live bundle)."""
    return [
        {"metric": name, "candidate": float(value), "live": float(decision.live_metrics.get(name, float("nan")))}
        for name, value in decision.candidate_metrics.items()
    ]


def _audit_result(decision: PromotionDecision) -> dg.AssetCheckResult:
    failed = sorted(name for name, passed in decision.audits.items() if not passed)
    return dg.AssetCheckResult(
        check_name=AUDIT_CHECK,
        passed=not failed,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"failed: {', '.join(failed)}" if failed else "every audit passed",
        metadata={f"audit {name}": passed for name, passed in decision.audits.items()},
    )
