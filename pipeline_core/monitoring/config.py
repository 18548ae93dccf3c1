"""DriftConfig: the tests, thresholds and alert rules of the drift monitor."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from pipeline_core.errors import ConfigError

CORRECTIONS = ("bonferroni", "bh")


@dataclass(frozen=True)
class DriftConfig:
    """How the monitor tests a batch and turns results into alerts.

    False-alarm budget: on a batch drawn from the reference distribution the chance of
    any alert is at most ``ks_alpha + prediction_alpha + performance_alpha`` (each family
    is corrected for its own number of tests), 4% with the defaults. That holds for
    independent rows, and with ``serial_correlation`` approximately for serially
    dependent rows (a scored day of minute bars) as far as the reference and the batch
    show their dependence: see ``monitoring.dependence``. The validation accuracy and
    log-loss are taken as exact; their own sampling error is not part of the budget.

    Attributes:
        n_bins: reference-quantile bins per feature for PSI (the reference statistics must
            have been built with the same number).
        psi_floor: smallest PSI that counts as a material shift.
        psi_quantile: the PSI threshold is ``max(psi_floor, (1/n + 1/m) * chi2(q, B-1))``,
            the q-quantile of PSI under no drift for a batch of n rows against m reference
            rows, so small batches are not flagged for sampling noise.
        psi_epsilon: proportion given to empty bins so PSI stays finite.
        ks_alpha: family-wise level of the per-feature two-sample KS tests.
        correction: multiple-testing correction over features, "bonferroni" or "bh"
            (Benjamini-Hochberg).
        min_batch_size: batches with fewer rows are skipped (no alert, reason reported);
            the same minimum applies to the rows with known actuals for performance.
        critical_feature_share: CRITICAL when at least this share of features drifted.
        severe_psi: PSI at or above which a drifted feature counts as severely drifted
            (about a one-standard-deviation shift of a normal feature; the usual "major
            shift" level of PSI is 0.25).
        critical_severe_features: CRITICAL also when at least this many features drifted
            severely, whatever their share: a drift confined to one family of features
            (every volatility feature when volatility jumps) is too large to wait for
            escalation, while one or two severely drifted features (a broken feature) stay
            a WARNING. None disables this rule.
        escalate_after: this many consecutive checks at WARNING or above escalate to
            CRITICAL; None disables escalation.
        prediction_alpha: level shared (Bonferroni) by the class-balance chi-square test
            and the confidence KS test.
        performance_alpha: level shared (Bonferroni) by the one-sided accuracy and
            log-loss tests against the validation figures.
        accuracy_critical_drop: CRITICAL when accuracy is significantly lower than the
            validation accuracy minus this margin.
        log_loss_critical_rise: CRITICAL when log-loss is significantly higher than the
            validation log-loss plus this margin.
        serial_correlation: every test uses effective sizes instead of row counts (runs
            of rows per group when `check` gets groups). The feature, confidence and
            class-balance tests (KS p-value, chi-square, PSI thresholds) count the batch's
            rows as n / tau, tau the variance inflation the reference measured for runs of
            the batch's lengths (for the class balance: the largest over the class
            indicators), scaled up where the batch's lag-1 autocorrelation exceeds the
            reference's (AR(1) ratio); the reference counts as its own effective size.
            The performance tests count the rows with known actuals as n / tau, tau the
            Newey-West long-run variance of the per-row correctness (log-loss) over its
            variance, measured on the batch itself. False: every row counts as an
            independent draw, which makes serially correlated batches (rolling features,
            persistent predictions, overlapping label windows) alarm on sampling noise.
        label_horizon: bars each actual looks ahead (the model's horizon): errors of rows
            closer than this share label bars, so the Newey-West lag of the performance
            tests is at least this. None: the lag is the data's own plug-in choice alone
            (Newey-West 1994). `OnlineDriftMonitor.from_bundle` fills it in from the horizon.
    """

    n_bins: int = 10
    psi_floor: float = 0.1
    psi_quantile: float = 0.99
    psi_epsilon: float = 1e-4
    ks_alpha: float = 0.02
    correction: str = "bonferroni"
    min_batch_size: int = 50
    critical_feature_share: float = 0.3
    severe_psi: float = 1.0
    critical_severe_features: int | None = 3
    escalate_after: int | None = 3
    prediction_alpha: float = 0.01
    performance_alpha: float = 0.01
    accuracy_critical_drop: float = 0.05
    log_loss_critical_rise: float = 0.1
    serial_correlation: bool = True
    label_horizon: int | None = None

    def __post_init__(self) -> None:
        _check_int("n_bins", self.n_bins, minimum=2)
        _check_int("min_batch_size", self.min_batch_size, minimum=2)
        for name in ("escalate_after", "critical_severe_features", "label_horizon"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), minimum=1)
        for name in ("ks_alpha", "prediction_alpha", "performance_alpha", "psi_quantile"):
            _check_open_unit(name, getattr(self, name))
        _check_range("critical_feature_share", self.critical_feature_share, 0.0, 1.0, low_open=True)
        _check_range("psi_epsilon", self.psi_epsilon, 0.0, 0.01, low_open=True)
        for name in ("psi_floor", "severe_psi", "accuracy_critical_drop", "log_loss_critical_rise"):
            _check_range(name, getattr(self, name), 0.0, float("inf"))
        if not isinstance(self.serial_correlation, bool):
            raise ConfigError(f"DriftConfig.serial_correlation is {self.serial_correlation!r}, expected True or False")
        if self.correction not in CORRECTIONS:
            raise ConfigError(
                f"DriftConfig.correction is {self.correction!r}, expected one of {list(CORRECTIONS)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"DriftConfig got unknown fields {unknown[:5]}; known: {sorted(known)}")
        return cls(**data)


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"DriftConfig.{name} is {value!r}, expected an integer >= {minimum}")


def _check_open_unit(name: str, value: object) -> None:
    _check_range(name, value, 0.0, 1.0, low_open=True, high_open=True)


def _check_range(
    name: str,
    value: object,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ConfigError(f"DriftConfig.{name} is {value!r}, expected a number in {left}{low}, {high}{right}")
