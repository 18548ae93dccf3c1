"""AlertSeverity and DriftAlert: what a drift check tells its caller."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass


@functools.total_ordering
class AlertSeverity(enum.Enum):
    """INFO < WARNING < CRITICAL, so ``max(a.severity for a in alerts)`` works."""

    INFO = 1
    WARNING = 2
    CRITICAL = 3

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, AlertSeverity):
            return NotImplemented
        return self.value < other.value


@dataclass(frozen=True)
class DriftAlert:
    """One finding of a drift check.

    Attributes:
        severity: INFO, WARNING or CRITICAL.
        metric: what was tested: "feature_drift", "feature_share", "severe_features",
            "class_balance", "confidence", "accuracy", "log_loss" or "escalation".
        feature: the feature's name for "feature_drift", else None.
        statistic: the observed value that crossed ``threshold`` (see ``message`` for
            its name and the significance test behind it).
        threshold: the threshold it crossed.
        batch_size: rows in the batch (rows with known actuals for performance metrics).
        message: a sentence a person can act on.
    """

    severity: AlertSeverity
    metric: str
    feature: str | None
    statistic: float
    threshold: float
    batch_size: int
    message: str

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity.name,
            "metric": self.metric,
            "feature": self.feature,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "batch_size": self.batch_size,
            "message": self.message,
        }
