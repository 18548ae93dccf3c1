"""Choosing each model's calibrator out of sample: the identity unless a method wins.

Candidates are the identity, temperature only, and temperature plus class bias, with
their parameters bounded to sane ranges. Each is fit on the earlier rows of every
walk-forward fold of the calibration window and scored on the fold's later rows. A
method replaces the identity only when its pooled out-of-fold log-loss is lower by more
than `min_gain` and it wins in at least half of the folds. A window too small for the
folds keeps the identity and says why. The chosen method is then refit on the whole
window, and the evidence travels with it (`selection_`, saved in the bundle).
"""

from __future__ import annotations

import numpy as np

from pipeline_core.calibration import CHOICES, TemperatureCalibrator
from pipeline_core.metrics import classification_metrics
from pipeline_core.splits import Fold

SANE_TEMPERATURE = (0.25, 4.0)  # beyond these a window is fitting noise, not miscalibration
SANE_BIAS = 1.0  # per-class log-odds offset
MIN_GAIN = 0.0005  # nats of pooled out-of-fold log-loss a method must win by


def calibrator_of(choice: str) -> TemperatureCalibrator:
    """An unfitted calibrator of `choice` with the sane bounds."""
    return TemperatureCalibrator.for_choice(choice, bounds=SANE_TEMPERATURE, bias_bound=SANE_BIAS)


def select_calibrator(
    probs: np.ndarray, y: np.ndarray, folds: list[Fold], min_gain: float = MIN_GAIN, fallback_reason: str = ""
) -> TemperatureCalibrator:
    """The calibrator that wins out of sample over `folds` (positions into probs / y), fitted
    on all rows; the identity when no fold is given (`fallback_reason` says why)."""
    if not folds:
        chosen = calibrator_of("identity").fit(probs, y)
        chosen.selection_ = _evidence("identity", {}, [], len(y), fallback_reason or "no cross-validation folds")
        return chosen
    fold_losses = {choice: [_fold_log_loss(choice, probs, y, fold) for fold in folds] for choice in CHOICES}
    pooled = {choice: _pooled(losses, folds) for choice, losses in fold_losses.items()}
    choice, reason = _decide(pooled, fold_losses, min_gain)
    chosen = calibrator_of(choice).fit(probs, y)
    chosen.selection_ = _evidence(choice, pooled, folds, len(y), reason, fold_losses)
    return chosen


def _fold_log_loss(choice: str, probs: np.ndarray, y: np.ndarray, fold: Fold) -> float:
    calibrated = calibrator_of(choice).fit(probs[fold.train], y[fold.train]).transform(probs[fold.val])
    return classification_metrics(calibrated, y[fold.val])["log_loss"]


def _pooled(losses: list[float], folds: list[Fold]) -> float:
    """Row-weighted mean over folds: the log-loss of all out-of-fold rows together."""
    weights = np.array([len(fold.val) for fold in folds], dtype=np.float64)
    return float(np.dot(losses, weights) / weights.sum())


def _decide(pooled: dict[str, float], fold_losses: dict[str, list[float]], min_gain: float) -> tuple[str, str]:
    best = min((c for c in CHOICES if c != "identity"), key=pooled.__getitem__)
    gain = pooled["identity"] - pooled[best]
    wins = sum(b < i for b, i in zip(fold_losses[best], fold_losses["identity"]))
    n_folds = len(fold_losses[best])
    if gain > min_gain and 2 * wins >= n_folds:
        return best, f"{best} lowers out-of-fold log-loss by {gain:.4f}, winning {wins} of {n_folds} folds"
    return "identity", f"best method {best} gains {gain:.4f} (needs > {min_gain}), winning {wins} of {n_folds} folds"


def _evidence(choice, pooled, folds, n_samples, reason, fold_losses=None) -> dict:
    return {
        "choice": choice,
        "reason": reason,
        "n_samples": int(n_samples),
        "folds": len(folds),
        "cv_log_loss": {c: round(v, 6) for c, v in pooled.items()},
        "fold_log_loss": {c: [round(v, 6) for v in losses] for c, losses in (fold_losses or {}).items()},
    }
