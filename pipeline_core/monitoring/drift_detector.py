"""OnlineDriftMonitor: checks scored batches against reference statistics, batch after batch."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline_core.errors import ConfigError
from pipeline_core.monitoring.alerts import AlertSeverity, DriftAlert
from pipeline_core.monitoring.checks import feature_drift, performance_drift, prediction_drift
from pipeline_core.monitoring.config import DriftConfig
from pipeline_core.monitoring.dependence import runs_of
from pipeline_core.monitoring.inputs import (
    class_labels,
    confidence_vector,
    feature_matrix,
    group_codes,
    probability_matrix,
)
from pipeline_core.monitoring.reference import ReferenceStats
from pipeline_core.monitoring.report import DriftReport

logger = logging.getLogger(__name__)

STATE_FORMAT_VERSION = 1


class OnlineDriftMonitor:
    """Feature, prediction and performance drift of scored batches, with escalation.

    Build it from reference data (as in the spec), from stored ReferenceStats
    (`from_reference`), from a loaded pipeline (`from_bundle`) or from a saved state
    (`from_json`). `check` judges one batch and returns its alerts; the full report of
    the latest check is `last_report`.

    Escalation: each judged batch whose alerts reach WARNING extends a streak, any other
    judged batch ends it; from `config.escalate_after` consecutive such batches on, a
    batch at WARNING gets an extra CRITICAL "escalation" alert. A skipped batch (fewer
    than `config.min_batch_size` rows) leaves the streak as it was.

    Serial dependence: rows of a scored partition are not independent draws (rolling
    features of consecutive bars, volatility regimes, persistent predicted classes,
    overlapping label windows). With `config.serial_correlation` (the default) every test
    counts the batch and the reference by their effective sizes (`monitoring.dependence`,
    `DriftConfig.serial_correlation`). Pass the symbol of each row as
    `groups` to `check` / `evaluate` (and `reference_groups` here, or `groups` to
    `ReferenceStats.from_data`) so dependence is measured within each symbol's rows; the
    rows of each symbol must be in time order.

    Args:
        reference_data: reference features (array, pandas or polars frame), or a
            ReferenceStats.
        config: tests, thresholds and alert rules; DriftConfig() by default.
        feature_names: feature order of array inputs (defaults to frame columns, or
            feature_0, feature_1, ...).
        reference_predictions: the model's classes (-1/0/1) on the reference rows.
        reference_confidences: the model's confidences on the reference rows.
        reference_accuracy: validation accuracy.
        reference_log_loss: validation log-loss.
        reference_groups: group (e.g. symbol) of each reference row, see
            `ReferenceStats.from_data`.
    """

    def __init__(
        self,
        reference_data: Any,
        config: DriftConfig | None = None,
        feature_names: Sequence[str] | None = None,
        reference_predictions: Any = None,
        reference_confidences: Any = None,
        reference_accuracy: float | None = None,
        reference_log_loss: float | None = None,
        reference_groups: Any = None,
    ) -> None:
        self.config = config if config is not None else DriftConfig()
        if isinstance(reference_data, ReferenceStats):
            extras = (
                reference_predictions,
                reference_confidences,
                reference_accuracy,
                reference_log_loss,
                reference_groups,
            )
            if any(extra is not None for extra in extras):
                raise ConfigError(
                    "reference_predictions/confidences/accuracy/log_loss/groups cannot be added to "
                    "existing ReferenceStats; pass them to ReferenceStats.from_data instead"
                )
            if feature_names is not None and tuple(feature_names) != reference_data.feature_names:
                raise ConfigError("feature_names differ from the ReferenceStats feature names")
            self.reference_stats = reference_data
        else:
            self.reference_stats = ReferenceStats.from_data(
                reference_data,
                feature_names=feature_names,
                predictions=reference_predictions,
                confidences=reference_confidences,
                accuracy=reference_accuracy,
                log_loss=reference_log_loss,
                n_bins=self.config.n_bins,
                groups=reference_groups,
            )
        if self.reference_stats.n_bins != self.config.n_bins:
            raise ConfigError(
                f"config.n_bins is {self.config.n_bins} but the reference stats were built with "
                f"{self.reference_stats.n_bins} bins; rebuild them or use n_bins={self.reference_stats.n_bins}"
            )
        self.warning_streak = 0
        self.n_checks = 0
        self.last_report: DriftReport | None = None

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.reference_stats.feature_names

    @classmethod
    def from_reference(cls, stats: ReferenceStats, config: DriftConfig | None = None) -> OnlineDriftMonitor:
        """A monitor over stored reference statistics."""
        return cls(stats, config=config)

    @classmethod
    def from_bundle(cls, pipeline: Any, horizon: int, config: DriftConfig | None = None) -> OnlineDriftMonitor:
        """A monitor over `pipeline.reference_stats[horizon]` (ReferenceStats or its dict).

        The config's `label_horizon`, when not set, becomes `horizon`.
        """
        by_horizon = getattr(pipeline, "reference_stats", None)
        if not isinstance(by_horizon, Mapping):
            raise ConfigError(
                f"{type(pipeline).__name__} has no reference_stats mapping; rebuild the bundle "
                "with drift reference statistics"
            )
        stats = _by_horizon(by_horizon, horizon)
        if isinstance(stats, Mapping):
            stats = ReferenceStats.from_dict(dict(stats))
        if not isinstance(stats, ReferenceStats):
            raise ConfigError(f"reference_stats[{horizon}] is a {type(stats).__name__}, expected ReferenceStats")
        config = config if config is not None else DriftConfig()
        if config.label_horizon is None:
            config = dataclasses.replace(config, label_horizon=int(horizon))
        return cls(stats, config=config)

    def evaluate(
        self,
        features: Any,
        predictions: Any = None,
        actuals: Any = None,
        confidences: Any = None,
        probabilities: Any = None,
        groups: Any = None,
    ) -> DriftReport:
        """The drift report of one batch, without touching the escalation state.

        `groups` (e.g. the symbol of each row, any sortable labels) makes the serial
        dependence be measured within each group's rows, taken to be in time order;
        without it all rows are one time-ordered run.

        Raises DriftInputError on a batch that does not match the reference (missing
        feature columns, a wrong number of columns, NaN, labels outside -1/0/1, lengths
        or group labels that differ). A batch with
        fewer than `config.min_batch_size` rows (an empty one included) is not judged:
        the report has no alerts and says why in `skipped_reason`.
        """
        matrix, _ = feature_matrix(features, self.feature_names, what="batch features")
        n = matrix.shape[0]
        runs = runs_of(None if groups is None else group_codes(groups, n, "groups"), n)
        preds = None if predictions is None else class_labels(predictions, n, "predictions")
        truth = None if actuals is None else class_labels(actuals, n, "actuals", allow_missing=True)
        probs = None if probabilities is None else probability_matrix(probabilities, n)
        conf = None if confidences is None else confidence_vector(confidences, n)
        if conf is None and probs is not None:
            conf = probs.max(axis=1)
        if n < self.config.min_batch_size:
            reason = f"batch has {n} rows, fewer than min_batch_size={self.config.min_batch_size}; not judged"
            logger.info("drift check skipped: %s", reason)
            return DriftReport(batch_size=n, skipped_reason=reason, reference=self.reference_stats)
        rows, alerts, notes = feature_drift(self.reference_stats, matrix, runs, self.config)
        metrics = []
        for more_rows, more_alerts, more_notes in (
            prediction_drift(self.reference_stats, preds, conf, runs, self.config),
            performance_drift(self.reference_stats, preds, probs, truth, runs, self.config),
        ):
            metrics += more_rows
            alerts += more_alerts
            notes += more_notes
        return DriftReport(
            batch_size=n,
            features=tuple(rows),
            metrics=tuple(metrics),
            alerts=tuple(alerts),
            drifted_share=sum(row.drifted for row in rows) / len(rows),
            notes=tuple(notes),
            reference=self.reference_stats,
            current=matrix,
        )

    def check(
        self,
        features: Any,
        predictions: Any = None,
        actuals: Any = None,
        confidences: Any = None,
        probabilities: Any = None,
        groups: Any = None,
    ) -> list[DriftAlert]:
        """Judge one batch, update the escalation state and return its alerts.

        `actuals` may hold NaN for rows whose label is not known yet; `probabilities`
        (columns -1, 0, 1) enable the log-loss test and stand in for `confidences`;
        `groups` is the group (symbol) of each row, see `evaluate`.
        The full report is kept as `last_report`.
        """
        report = self.evaluate(features, predictions, actuals, confidences, probabilities, groups)
        if report.skipped_reason is None:
            report = self._escalate(report)
            self.n_checks += 1
        self.last_report = report
        return list(report.alerts)

    def _escalate(self, report: DriftReport) -> DriftReport:
        level = report.severity
        self.warning_streak = self.warning_streak + 1 if level is not None and level >= AlertSeverity.WARNING else 0
        limit = self.config.escalate_after
        if limit is None or self.warning_streak < limit or level != AlertSeverity.WARNING:
            return report
        warnings = sorted({a.feature or a.metric for a in report.alerts if a.severity == AlertSeverity.WARNING})
        alert = DriftAlert(
            severity=AlertSeverity.CRITICAL,
            metric="escalation",
            feature=None,
            statistic=float(self.warning_streak),
            threshold=float(limit),
            batch_size=report.batch_size,
            message=(
                f"{self.warning_streak} consecutive checks at WARNING or above (escalate_after={limit}); "
                f"this batch warns on {warnings[:5]}; batch of {report.batch_size} rows"
            ),
        )
        return dataclasses.replace(report, alerts=report.alerts + (alert,))

    def reset(self) -> None:
        """Forget the escalation streak and the last report."""
        self.warning_streak = 0
        self.last_report = None

    def to_json(self) -> str:
        """Reference stats, config and escalation state as JSON (the last report is not kept)."""
        return json.dumps(
            {
                "format_version": STATE_FORMAT_VERSION,
                "config": self.config.to_dict(),
                "reference": self.reference_stats.to_dict(),
                "state": {"warning_streak": self.warning_streak, "n_checks": self.n_checks},
            },
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str) -> OnlineDriftMonitor:
        """Restore a monitor saved with `to_json`, escalation state included."""
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as err:
            raise ConfigError(f"drift monitor state is not valid JSON: {err}") from err
        version = data.get("format_version") if isinstance(data, dict) else None
        if version != STATE_FORMAT_VERSION:
            raise ConfigError(
                f"drift monitor state has format_version {version!r}, this code reads {STATE_FORMAT_VERSION}"
            )
        try:
            monitor = cls(ReferenceStats.from_dict(data["reference"]), config=DriftConfig.from_dict(data["config"]))
            monitor.warning_streak = int(data["state"]["warning_streak"])
            monitor.n_checks = int(data["state"]["n_checks"])
        except (KeyError, TypeError) as err:
            raise ConfigError(f"drift monitor state is incomplete or malformed ({err!r})") from err
        return monitor


def _by_horizon(by_horizon: Mapping, horizon: int) -> Any:
    for key in (horizon, str(horizon)):
        if key in by_horizon:
            return by_horizon[key]
    if isinstance(horizon, str) and horizon.isdigit() and int(horizon) in by_horizon:
        return by_horizon[int(horizon)]
    raise ConfigError(
        f"no drift reference statistics for horizon {horizon!r}; available: {sorted(map(str, by_horizon))}"
    )
