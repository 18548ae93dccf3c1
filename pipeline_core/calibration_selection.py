"""Choosing each model's calibrator out of sample: the identity unless a method wins.

Candidates are the identity, temperature only, temperature plus class bias (bounded to
sane ranges) and one-vs-rest sigmoid (Platt) scaling. Each is fit on the earlier rows of every
walk-forward fold of the calibration window and scored on the fold's later rows. Going up
that ladder one step at a time, a method replaces the simpler choice only when its pooled
out-of-fold log-loss is lower by more than `min_gain` and the 90% block-bootstrap interval
of the paired per-row difference lies below zero: a gain within the noise of a small,
serially dependent window (such as a class bias that only learns the window's local class
mix) is not taken. Sigmoid scaling then challenges the winner of that ladder by the same
rule. A window too small for the folds keeps the identity and says why. The chosen method is then refit on the whole
window, and the evidence travels with it (`selection_`, saved in the bundle).
"""

from __future__ import annotations

import numpy as np

from pipeline_core.calibration import CHOICES, SigmoidCalibrator, TemperatureCalibrator
from pipeline_core.metrics import paired_difference_interval, row_log_loss
from pipeline_core.splits import Fold

SANE_TEMPERATURE = (0.25, 4.0)  # beyond these a window is fitting noise, not miscalibration
SANE_BIAS = 1.0  # per-class log-odds offset
MIN_GAIN = 0.002  # nats of pooled out-of-fold log-loss a method must win by


def calibrator_of(choice: str) -> TemperatureCalibrator | SigmoidCalibrator:
    """An unfitted calibrator of `choice` (one of `CHOICES`) with the sane bounds."""
    if choice == SigmoidCalibrator.choice:
        return SigmoidCalibrator()
    return TemperatureCalibrator.for_choice(choice, bounds=SANE_TEMPERATURE, bias_bound=SANE_BIAS)


def select_calibrator(
    probs: np.ndarray, y: np.ndarray, folds: list[Fold], blocks: np.ndarray | None = None,
    min_gain: float = MIN_GAIN, fallback_reason: str = "",
) -> TemperatureCalibrator | SigmoidCalibrator:
    """The calibrator that wins out of sample over `folds` (positions into probs / y), fitted
    on all rows; the identity when no fold is given (`fallback_reason` says why). `blocks`
    (a block id per row, e.g. `metrics.time_blocks`) groups dependent rows; default: none."""
    if not folds:
        chosen = calibrator_of("identity").fit(probs, y)
        chosen.selection_ = _evidence("identity", {}, [], len(y), fallback_reason or "no cross-validation folds")
        return chosen
    blocks = np.arange(len(y)) if blocks is None else blocks
    out_of_fold = np.concatenate([fold.val for fold in folds])
    losses = {choice: np.concatenate([_fold_losses(choice, probs, y, fold) for fold in folds]) for choice in CHOICES}
    choice, reason = _decide(losses, blocks[out_of_fold], min_gain)
    chosen = calibrator_of(choice).fit(probs, y)
    fold_means = {c: [float(part.mean()) for part in np.split(v, np.cumsum([len(f.val) for f in folds])[:-1])]
                  for c, v in losses.items()}
    chosen.selection_ = _evidence(choice, {c: float(v.mean()) for c, v in losses.items()}, folds, len(y), reason, fold_means)
    return chosen


def _fold_losses(choice: str, probs: np.ndarray, y: np.ndarray, fold: Fold) -> np.ndarray:
    calibrated = calibrator_of(choice).fit(probs[fold.train], y[fold.train]).transform(probs[fold.val])
    return row_log_loss(calibrated, y[fold.val])


def _decide(losses: dict[str, np.ndarray], blocks: np.ndarray, min_gain: float) -> tuple[str, str]:
    """Climb from the identity while the next method beats the current choice beyond noise;
    then let sigmoid scaling challenge the choice."""
    choice, steps = "identity", []
    for candidate in CHOICES[1:]:
        difference = losses[candidate] - losses[choice]
        low, high = paired_difference_interval(difference, blocks)
        steps.append(f"{candidate} vs {choice}: {difference.mean():+.4f} (90% CI {low:+.4f}..{high:+.4f})")
        if -difference.mean() > min_gain and high < 0:
            choice = candidate
    return choice, f"{choice}: " + "; ".join(steps) + f" (a step needs a gain > {min_gain} with the CI below 0)"


def _evidence(choice, pooled, folds, n_samples, reason, fold_losses=None) -> dict:
    return {
        "choice": choice,
        "reason": reason,
        "n_samples": int(n_samples),
        "folds": len(folds),
        "cv_log_loss": {c: round(v, 6) for c, v in pooled.items()},
        "fold_log_loss": {c: [round(v, 6) for v in losses] for c, losses in (fold_losses or {}).items()},
    }
