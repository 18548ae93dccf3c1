"""Retraining with a promotion gate: a candidate goes live only if it is proven and not worse.

`retrain_and_gate` trains a candidate bundle on a rolling window of raw dates ending just
before a held-out tail, saves it as the next `pipeline_vN`, audits it (lookahead, warm-up,
native parity, save/load parity) on the held-out days, compares it with the live bundle
on those days, and promotes it (an atomic swap of the LIVE pointer) only when it has skill
on its own test window (the skill gate), every audit passes and its holdout log-loss is no
worse than the live bundle's plus a tolerance. The decision and its reasons are written
next to the bundles as JSON before LIVE moves.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from pipeline_core.bundle import DECISIONS_DIR, BundleStore
from pipeline_core.constants import horizon_or_longest
from pipeline_core.data import list_partition_dates, read_bars
from pipeline_core.errors import ConfigError, InsufficientHistoryError
from pipeline_core.metrics import classification_metrics
from pipeline_core.labels import labels_to_index, triple_barrier_labels
from pipeline_core.pipeline import InferenceConfig, InferencePipeline
from pipeline_core.training import TrainOptions, train_pipeline
from pipeline_core.validation import run_audits

__all__ = ["DECISIONS_DIR", "PromotionDecision", "RetrainPolicy", "judge_candidate", "retrain_and_gate"]


@dataclass(frozen=True)
class RetrainPolicy:
    window_days: int = 20  # raw dates the candidate trains on, ending before the holdout
    holdout_days: int = 2  # most recent dates (up to the drifted date) both bundles are judged on
    tolerance: float = 0.0  # candidate log-loss may exceed the live one by at most this
    audit_samples: int = 20  # cut points per lookahead / warm-up audit

    def __post_init__(self) -> None:
        if self.window_days < 2 or self.holdout_days < 1:
            raise ConfigError(f"RetrainPolicy needs window_days >= 2 and holdout_days >= 1, got {self}.")


@dataclass
class PromotionDecision:
    candidate: str
    live_before: str | None
    promoted: bool
    reasons: list[str]
    horizon: int
    train_dates: list[str]
    holdout_dates: list[str]
    audits: dict[str, bool] = field(default_factory=dict)
    candidate_metrics: dict[str, float] = field(default_factory=dict)
    live_metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def split_dates(raw_root: str | Path, end: date, policy: RetrainPolicy) -> tuple[list[date], list[date]]:
    """The training dates and the held-out dates of a retraining that ends at `end`."""
    available = [d for d in list_partition_dates(raw_root) if d <= end]
    needed = policy.window_days + policy.holdout_days
    if len(available) < needed:
        raise InsufficientHistoryError(
            f"Retraining up to {end} needs {needed} dates of raw data under {raw_root}; found {len(available)}."
        )
    recent = available[-needed:]
    return recent[: policy.window_days], recent[policy.window_days :]


def holdout_metrics(pipeline: InferencePipeline, bars: pl.DataFrame, horizon: int, first_day: date) -> dict[str, float]:
    """Log-loss, accuracy and macro-F1 of `pipeline` on the labelled bars from `first_day` on."""
    result = pipeline.predict(bars, horizon=horizon)
    labels = triple_barrier_labels(bars, horizon).rename({"label": "actual"})
    scored = result.to_frame().join(labels, on=["timestamp", "symbol"], how="left")
    keep = (scored["timestamp"].dt.date() >= first_day) & scored["actual"].is_not_null()
    if not keep.any():
        raise InsufficientHistoryError(f"No labelled bar on or after {first_day} to judge the bundles on.")
    scored = scored.filter(keep)
    probabilities = scored.select("prob_down", "prob_flat", "prob_up").to_numpy()
    metrics = classification_metrics(probabilities, labels_to_index(scored["actual"].to_numpy()))
    return {**metrics, "n": float(scored.height)}


def retrain_and_gate(
    raw_root: str | Path,
    store: BundleStore,
    end: date,
    config: InferenceConfig,
    policy: RetrainPolicy = RetrainPolicy(),
    options: TrainOptions = TrainOptions(),
    horizon: int | None = None,
) -> PromotionDecision:
    """Train, save, audit and compare a candidate; promote it only if it passes."""
    horizon = horizon_or_longest(horizon, config.horizons)
    store.reconcile_live()  # a promotion a killed run recorded but did not carry out
    train_dates, holdout = split_dates(raw_root, end, policy)
    candidate = train_pipeline(read_bars(raw_root, train_dates[0], train_dates[-1]), config, options)
    version = store.next_version()
    candidate.save(store.path(version))
    candidate = InferencePipeline.load(store.path(version))
    decision = judge_candidate(raw_root, store, version, candidate, holdout, horizon, policy)
    decision.train_dates = [d.isoformat() for d in train_dates]
    record_decision(store, decision)  # before LIVE moves: a promotion is never unrecorded
    if decision.promoted:
        store.promote(version)
    return decision


def judge_candidate(
    raw_root, store: BundleStore, version: str, candidate: InferencePipeline, holdout: list[date],
    horizon: int, policy: RetrainPolicy,
) -> PromotionDecision:
    """Audit the loaded candidate and compare it with the live bundle on the holdout dates."""
    live_version = store.live_version()
    lookback = max(candidate.required_lookback, _live_lookback(store))
    bars = read_bars(raw_root, holdout[0], holdout[-1], lookback_bars=lookback)
    report = run_audits(candidate, bars, horizon, n_samples=policy.audit_samples)
    decision = PromotionDecision(
        candidate=version, live_before=live_version, promoted=False, reasons=[], horizon=horizon,
        train_dates=[], holdout_dates=[d.isoformat() for d in holdout],
        audits={line.name: bool(line.passed) for line in report.lines},
        candidate_metrics=holdout_metrics(candidate, bars, horizon, holdout[0]),
    )
    failed = [name for name, passed in decision.audits.items() if not passed]
    decision.reasons += [f"audit failed: {name}" for name in failed]
    if candidate.manifest is not None and candidate.manifest.deployable is False:
        decision.reasons.append(f"no skill: {candidate.evaluation['skill']['reason']}")
    if live_version is not None:
        live = InferencePipeline.load(store.path(live_version))
        decision.reasons += _older_data_reason(candidate, live)
        if horizon in live.config.horizons:
            decision.live_metrics = holdout_metrics(live, bars, horizon, holdout[0])
            worse = decision.candidate_metrics["log_loss"] - decision.live_metrics["log_loss"]
            if worse > policy.tolerance:
                decision.reasons.append(
                    f"candidate log-loss {decision.candidate_metrics['log_loss']:.4f} is worse than live "
                    f"{decision.live_metrics['log_loss']:.4f} by {worse:.4f} (> tolerance {policy.tolerance})"
                )
    decision.promoted = not decision.reasons
    if decision.promoted:
        decision.reasons.append("all audits passed and the candidate is not worse than the live bundle")
    return decision


def _older_data_reason(candidate: InferencePipeline, live: InferencePipeline) -> list[str]:
    """Retraining never goes back in time: a candidate whose data ends before the live bundle's is refused."""
    ends = candidate.manifest.data_end, live.manifest.data_end
    if None in ends or ends[0] >= ends[1]:
        return []
    return [f"trained on data ending {ends[0]}, before the live bundle's {ends[1]}: LIVE never moves back in time"]


def _live_lookback(store: BundleStore) -> int:
    version = store.live_version()
    if version is None:
        return 0
    return store.manifest(version).required_lookback


def record_decision(store: BundleStore, decision: PromotionDecision) -> Path:
    """Write the decision to `<store>/decisions/<candidate>.json` (atomically)."""
    return store.record_decision(decision.candidate, decision.to_dict())
