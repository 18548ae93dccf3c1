"""Choosing the final combination out of sample: stacking, soft voting or the best single model.

The input is every base model's out-of-fold calibrated probabilities over the calibration
window, with the walk-forward fold of each row (time order). Each candidate is fit on the
rows of the folds before fold j and scored on fold j, for every fold after the first; the
pooled log-loss of those rows ranks them. The default is the configured method (the
profile's; "single" when the configuration uses no ensemble); "auto" takes the best. A
candidate is "clearly better" than the default when the 90% block-bootstrap interval of
its paired per-row log-loss difference lies below zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline_core.ensemble import Ensemble, SingleModelEnsemble, StackingEnsemble, VotingEnsemble
from pipeline_core.errors import DataValidationError
from pipeline_core.metrics import paired_difference_interval, row_log_loss, time_blocks

CANDIDATES = ("stacking", "voting", "single")


def create_candidate(method: str, names: list[str]) -> Ensemble:
    return {
        "stacking": lambda: StackingEnsemble(model_names=names),
        "voting": lambda: VotingEnsemble(model_names=names),
        "single": lambda: SingleModelEnsemble(model_names=names),
    }[method]()


def select_ensemble(
    oof: dict[str, np.ndarray], y: np.ndarray, fold_of_row: np.ndarray, timestamps: np.ndarray,
    default: str, horizon: int, auto: bool = False, seed: int = 0,
) -> Ensemble:
    """The chosen ensemble fitted on every out-of-fold row, with its evidence in `selection_`."""
    names = list(oof)
    row_losses, skipped = _candidate_row_losses(oof, y, fold_of_row, names)
    evidence: dict[str, Any] = {"default": default, "skipped_folds": skipped}
    if row_losses:
        pooled = {method: float(losses.mean()) for method, losses in row_losses.items()}
        best = min(pooled, key=pooled.__getitem__)
        evaluated = np.isin(fold_of_row, [f for f in np.unique(fold_of_row)[1:] if f not in skipped])
        blocks = time_blocks(timestamps[evaluated], horizon)
        interval = paired_difference_interval(row_losses[best] - row_losses[default], blocks, seed=seed)
        evidence.update(
            cv_log_loss={m: round(v, 6) for m, v in pooled.items()}, best=best,
            n_rows=int(evaluated.sum()), best_minus_default_ci=interval,
            clearly_better=best != default and interval[1] < 0,
        )
        chosen = best if auto else default
    else:
        evidence.update(cv_log_loss={}, best=None, clearly_better=False, n_rows=0, best_minus_default_ci=None)
        chosen = default
    evidence["chosen"] = chosen
    ensemble = _fit_or_fall_back(chosen, oof, y, names, evidence)
    ensemble.selection_ = evidence
    return ensemble


def _candidate_row_losses(
    oof: dict[str, np.ndarray], y: np.ndarray, fold_of_row: np.ndarray, names: list[str]
) -> tuple[dict[str, np.ndarray], list[int]]:
    """Per-row log-loss of each candidate on every fold after the first, fit on earlier folds."""
    losses = {method: [] for method in CANDIDATES}
    skipped = []
    for fold in np.unique(fold_of_row)[1:]:
        earlier, later = fold_of_row < fold, fold_of_row == fold
        try:
            predicted = {
                method: create_candidate(method, names).fit({n: p[earlier] for n, p in oof.items()}, y[earlier])
                .predict_proba({n: p[later] for n, p in oof.items()})
                for method in CANDIDATES
            }
        except DataValidationError:  # stacking needs every class among the earlier rows
            skipped.append(int(fold))
            continue
        for method, probs in predicted.items():
            losses[method].append(row_log_loss(probs, y[later]))
    if not losses["voting"]:
        return {}, skipped
    return {method: np.concatenate(parts) for method, parts in losses.items()}, skipped


def _fit_or_fall_back(chosen: str, oof, y, names, evidence: dict) -> Ensemble:
    try:
        return create_candidate(chosen, names).fit(oof, y)
    except DataValidationError as err:
        evidence["fallback"] = f"{chosen} could not be fit ({err}); voting used instead"
        evidence["chosen"] = "voting"
        return create_candidate("voting", names).fit(oof, y)
