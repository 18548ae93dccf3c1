"""Scores of (n, 3) class probabilities, the no-skill baselines, and block-bootstrap intervals.

Metrics: log-loss, Brier (multiclass, summed over classes), accuracy, macro-F1 and top-label
ECE. Baselines a model must beat: the class prior of the judged rows (the best constant
forecast, known only afterwards), the prior of the training rows (the constant forecast
one could have deployed), and persistence (the last realized label, which at bar t is the
label of bar t - h, mapped to probabilities through the training rows' transition
frequencies).

Rows of overlapping labels are serially dependent, so intervals come from a block
bootstrap: time is cut into blocks of consecutive timestamps (every symbol's rows at those
times together), blocks are drawn with replacement and each metric is recomputed.
"""

from __future__ import annotations

import numpy as np

from pipeline_core.calibration import ECE_BINS, expected_calibration_error
from pipeline_core.constants import N_CLASSES

METRICS = ("log_loss", "brier", "accuracy", "macro_f1", "ece")
LOWER_IS_BETTER = {"log_loss": True, "brier": True, "accuracy": False, "macro_f1": False, "ece": True}
BOOTSTRAP_SAMPLES = 200
CONFIDENCE_LEVEL = 0.9
PROBABILITY_FLOOR = 1e-15  # sklearn's log_loss clipping


def classification_metrics(probabilities: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Log-loss, Brier, accuracy, macro-F1 and top-label ECE against class indices 0/1/2."""
    probabilities = _normalised(probabilities)
    losses = _row_losses(probabilities, y)
    return {
        "log_loss": float(losses["log_loss"].mean()),
        "brier": float(losses["brier"].mean()),
        "accuracy": float(losses["accuracy"].mean()),
        "macro_f1": macro_f1(probabilities.argmax(axis=1), y),
        "ece": expected_calibration_error(probabilities, y),
    }


def macro_f1(predicted: np.ndarray, y: np.ndarray) -> float:
    """Unweighted mean F1 over the three classes (a class never predicted nor seen scores 0)."""
    confusion = np.bincount(y * N_CLASSES + predicted, minlength=N_CLASSES**2).reshape(N_CLASSES, N_CLASSES)
    hits = np.diag(confusion).astype(np.float64)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    return float(np.mean(np.divide(2 * hits, denominator, out=np.zeros(N_CLASSES), where=denominator > 0)))


def block_bootstrap_intervals(
    probabilities: np.ndarray,
    y: np.ndarray,
    blocks: np.ndarray,
    n_samples: int = BOOTSTRAP_SAMPLES,
    level: float = CONFIDENCE_LEVEL,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Percentile interval of every metric, resampling whole blocks (`blocks`: a block id per row).

    Each block is reduced to the sums every metric is built from (losses, the confusion
    matrix, per-bin confidence and hits), so a resample is a sum over drawn blocks.
    """
    probabilities = _normalised(probabilities)
    _, block_index = np.unique(blocks, return_inverse=True)
    stats = _block_sums(probabilities, y, block_index)
    draws = np.random.default_rng(seed).integers(0, len(stats), (n_samples, len(stats)))
    totals = stats[draws].sum(axis=1)  # (n_samples, columns)
    values = _metrics_from_sums(totals)
    tail = (1 - level) / 2 * 100
    return {metric: np.percentile(values[metric], [tail, 100 - tail]).round(6).tolist() for metric in METRICS}


def _block_sums(probabilities: np.ndarray, y: np.ndarray, block_index: np.ndarray) -> np.ndarray:
    """Per block: n, log-loss sum, Brier sum, hits, the 3x3 confusion counts, and per
    confidence bin its count, confidence sum and hits."""
    losses = _row_losses(probabilities, y)
    confidence = probabilities.max(axis=1)
    predicted = probabilities.argmax(axis=1)
    bins = np.minimum((confidence * ECE_BINS).astype(np.int64), ECE_BINS - 1)
    columns = [np.ones(len(y)), losses["log_loss"], losses["brier"], losses["accuracy"]]
    columns += [(y * N_CLASSES + predicted == cell).astype(np.float64) for cell in range(N_CLASSES**2)]
    for b in range(ECE_BINS):
        in_bin = bins == b
        columns += [in_bin.astype(np.float64), confidence * in_bin, losses["accuracy"] * in_bin]
    n_blocks = int(block_index.max()) + 1
    return np.stack([np.bincount(block_index, weights=c, minlength=n_blocks) for c in columns], axis=1)


def _metrics_from_sums(totals: np.ndarray) -> dict[str, np.ndarray]:
    n = totals[:, 0]
    confusion = totals[:, 4 : 4 + N_CLASSES**2].reshape(-1, N_CLASSES, N_CLASSES)
    hits = np.diagonal(confusion, axis1=1, axis2=2)
    denominator = confusion.sum(axis=1) + confusion.sum(axis=2)
    f1 = np.divide(2 * hits, denominator, out=np.zeros_like(hits), where=denominator > 0)
    per_bin = totals[:, 4 + N_CLASSES**2 :].reshape(-1, ECE_BINS, 3)
    gap = np.abs(per_bin[:, :, 2] - per_bin[:, :, 1]).sum(axis=1)
    return {
        "log_loss": totals[:, 1] / n,
        "brier": totals[:, 2] / n,
        "accuracy": totals[:, 3] / n,
        "macro_f1": f1.mean(axis=1),
        "ece": gap / n,
    }


def paired_difference_interval(
    difference: np.ndarray, blocks: np.ndarray, n_samples: int = 1000, level: float = CONFIDENCE_LEVEL, seed: int = 0
) -> list[float]:
    """Block-bootstrap interval of the mean of per-row differences (e.g. of two forecasts' losses)."""
    _, block_index = np.unique(blocks, return_inverse=True)
    sums = np.bincount(block_index, weights=difference)
    counts = np.bincount(block_index)
    draws = np.random.default_rng(seed).integers(0, len(sums), (n_samples, len(sums)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    tail = (1 - level) / 2 * 100
    return np.percentile(means, [tail, 100 - tail]).round(6).tolist()


def row_log_loss(probabilities: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each row's log-loss."""
    return -np.log(np.clip(np.asarray(probabilities)[np.arange(len(y)), y], PROBABILITY_FLOOR, 1.0))


def time_blocks(timestamps: np.ndarray, block_length: int) -> np.ndarray:
    """Block id of each row: consecutive runs of `block_length` unique timestamps."""
    _, time_index = np.unique(timestamps, return_inverse=True)
    return time_index // max(int(block_length), 1)


def prior_probabilities(y_reference: np.ndarray, n_rows: int) -> np.ndarray:
    """The class frequencies of `y_reference`, repeated for `n_rows` rows."""
    prior = np.bincount(y_reference, minlength=N_CLASSES) / len(y_reference)
    return np.tile(prior, (n_rows, 1))


def persistence_probabilities(
    y_previous: np.ndarray, transitions_from: np.ndarray, transitions_to: np.ndarray
) -> np.ndarray:
    """P(label | last realized label), from transition counts (add-one smoothed); rows whose
    last label is unknown (-1) get the prior of `transitions_to`."""
    counts = np.ones((N_CLASSES, N_CLASSES))
    np.add.at(counts, (transitions_from, transitions_to), 1)
    table = counts / counts.sum(axis=1, keepdims=True)
    prior = np.bincount(transitions_to, minlength=N_CLASSES) + 1.0
    probabilities = np.tile(prior / prior.sum(), (len(y_previous), 1))
    known = y_previous >= 0
    probabilities[known] = table[y_previous[known]]
    return probabilities


def _normalised(probabilities: np.ndarray) -> np.ndarray:
    # Torch models compute in float32: renormalise so rows sum to 1 in float64.
    probabilities = np.asarray(probabilities, dtype=np.float64)
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def _row_losses(probabilities: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    rows = np.arange(len(y))
    onehot = np.zeros_like(probabilities)
    onehot[rows, y] = 1.0
    return {
        "log_loss": -np.log(np.clip(probabilities[rows, y], PROBABILITY_FLOOR, 1.0)),
        "brier": ((probabilities - onehot) ** 2).sum(axis=1),
        "accuracy": (probabilities.argmax(axis=1) == y).astype(np.float64),
    }
