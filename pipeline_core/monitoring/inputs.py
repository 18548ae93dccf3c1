"""Validation of what enters the monitor: feature matrices, labels, confidences, probabilities.

Every problem becomes a DriftInputError that names it, before any statistic is computed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline_core.constants import CLASSES
from pipeline_core.errors import DriftInputError



def _names(items: Iterable[object], limit: int = 5) -> str:
    shown = sorted(str(item) for item in items)
    more = f" and {len(shown) - limit} more" if len(shown) > limit else ""
    return f"{shown[:limit]}{more}"


def feature_matrix(
    data: Any,
    feature_names: Sequence[str] | None,
    what: str,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """(rows x features float64 matrix, feature names) from an array or a pandas/polars frame.

    A frame's columns are selected by name (order and extra columns do not matter); an
    array must have exactly len(feature_names) columns. Missing names default to
    feature_0, feature_1, ... for arrays and to the columns for frames.
    """
    if hasattr(data, "columns") and not isinstance(data, np.ndarray):
        columns = [str(c) for c in data.columns]
        names = tuple(feature_names) if feature_names is not None else tuple(columns)
        missing = set(names) - set(columns)
        if missing:
            raise DriftInputError(f"{what} is missing feature columns {_names(missing)}")
        raw = _to_numpy(data[list(names)], what)
    else:
        raw = np.asarray(data)
        if raw.ndim != 2:
            raise DriftInputError(
                f"{what} has shape {raw.shape}, expected a 2-D array (rows, features)"
            )
        names = (
            tuple(feature_names)
            if feature_names is not None
            else tuple(f"feature_{i}" for i in range(raw.shape[1]))
        )
        if raw.shape[1] != len(names):
            raise DriftInputError(
                f"{what} has {raw.shape[1]} features, but {len(names)} are expected "
                f"(first names: {list(names[:5])})"
            )
    matrix = _as_float(raw, what)
    _require_finite(matrix, names, what)
    return matrix, names


def _to_numpy(obj: Any, what: str) -> np.ndarray:
    """A pandas/polars frame or series as numpy, with missing values as NaN."""
    try:
        return obj.to_numpy(dtype=np.float64, na_value=np.nan)  # pandas
    except TypeError:
        return np.asarray(obj.to_numpy())  # polars: nulls in float columns become NaN
    except ValueError as err:
        raise DriftInputError(f"{what} has non-numeric values; features and labels must be numbers") from err


def _as_float(raw: np.ndarray, what: str) -> np.ndarray:
    if raw.dtype.kind not in "biuf":
        try:
            return np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise DriftInputError(
                f"{what} has non-numeric values (dtype {raw.dtype}); features must be numbers"
            ) from err
    return np.asarray(raw, dtype=np.float64)


def _require_finite(matrix: np.ndarray, names: Sequence[str], what: str) -> None:
    bad = ~np.isfinite(matrix)
    if bad.any():
        bad_columns = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
        n_rows = int(bad.any(axis=1).sum())
        raise DriftInputError(
            f"{what} has NaN or infinite values in {n_rows} rows, in features "
            f"{_names(bad_columns)}; drop or impute those rows before checking drift"
        )


def class_labels(values: Any, n: int | None, what: str, allow_missing: bool = False) -> np.ndarray:
    """Labels in {-1, 0, 1} as float64; NaN marks an unknown label when `allow_missing`.

    `n` is the required length (None: any length); the same holds below.
    """
    labels = _vector(values, n, what)
    known = ~np.isnan(labels) if allow_missing else np.ones(labels.size, dtype=bool)
    invalid = ~np.isin(labels[known], CLASSES)
    if invalid.any():
        found = np.unique(labels[known][invalid])
        raise DriftInputError(
            f"{what} has values {_names(f'{v:g}' for v in found)} outside the classes {list(CLASSES)}"
            + ("" if allow_missing else " (NaN is not allowed here)")
        )
    return labels


def confidence_vector(values: Any, n: int | None) -> np.ndarray:
    """Confidences as float64, each finite and in [0, 1]."""
    conf = _vector(values, n, "confidences")
    bad = ~np.isfinite(conf) | (conf < 0.0) | (conf > 1.0)
    if bad.any():
        raise DriftInputError(
            f"confidences has {int(bad.sum())} values that are NaN or outside [0, 1]"
        )
    return conf


def probability_matrix(values: Any, n: int) -> np.ndarray:
    """Class probabilities (n rows; columns -1, 0, 1) whose rows sum to 1."""
    try:
        probs = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DriftInputError("probabilities must be numbers") from err
    if probs.shape != (n, len(CLASSES)):
        raise DriftInputError(
            f"probabilities has shape {probs.shape}, expected ({n}, {len(CLASSES)}) "
            f"(one column per class {list(CLASSES)})"
        )
    bad = ~np.isfinite(probs).all(axis=1) | (probs < 0).any(axis=1) | (np.abs(probs.sum(axis=1) - 1) > 1e-3)
    if bad.any():
        raise DriftInputError(
            f"probabilities has {int(bad.sum())} rows that are not finite, non-negative "
            "and summing to 1"
        )
    return probs


def group_codes(values: Any, n: int, what: str) -> np.ndarray:
    """Integer codes 0..k-1 of a group label per row (e.g. the symbol), any sortable labels."""
    raw = np.asarray(values.to_numpy()) if hasattr(values, "to_numpy") else np.asarray(values)
    if raw.ndim != 1 or raw.shape[0] != n:
        raise DriftInputError(f"{what} has shape {raw.shape}, expected ({n},): one group label per row")
    missing = pd.isna(raw)
    if missing.any():
        raise DriftInputError(f"{what} has {int(missing.sum())} missing labels; give every row a group")
    try:
        return np.unique(raw, return_inverse=True)[1].astype(np.int64).ravel()
    except TypeError as err:
        raise DriftInputError(f"{what} mixes label types that cannot be sorted (dtype {raw.dtype})") from err


def _vector(values: Any, n: int | None, what: str) -> np.ndarray:
    raw = _to_numpy(values, what) if hasattr(values, "to_numpy") else np.asarray(values)
    if raw.ndim != 1 or (n is not None and raw.shape[0] != n):
        expected = "a 1-D array" if n is None else f"({n},): one value per batch row"
        raise DriftInputError(f"{what} has shape {raw.shape}, expected {expected}")
    return _as_float(raw, what)
