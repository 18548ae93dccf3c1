"""The feature scaler: sklearn's RobustScaler, fit on the training window, stored as JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline_core.errors import BundleError, DataValidationError

if TYPE_CHECKING:
    from sklearn.preprocessing import RobustScaler

SCALE_BLOCK_ROWS = 4096


def fit_scaler(features: np.ndarray, feature_names: list[str]) -> RobustScaler:
    """A RobustScaler fit on `features` (training rows only; the caller picks them)."""
    from sklearn.preprocessing import (
        RobustScaler,  # imported to fit or load, not to scale
    )

    if not np.isfinite(features).all():
        raise DataValidationError("Scaler input has NaN or infinite features: fit on rows with full history only.")
    # Fit in float64 so the learned centre and scale survive the JSON round trip exactly.
    scaler = RobustScaler().fit(features.astype(np.float64))
    scaler.feature_names_in_ = np.asarray(feature_names, dtype=object)
    return scaler


def scale(scaler: RobustScaler, features: np.ndarray) -> np.ndarray:
    """Scaled float32 features; checks the column count against what the scaler saw."""
    if features.shape[1] != scaler.n_features_in_:
        raise DataValidationError(
            f"X has {features.shape[1]} features, but the scaler was fitted with {scaler.n_features_in_}."
        )
    # (x - center) / scale in float64, a block of rows at a time: the same bits as the plain
    # expression, with a float64 temporary that stays in cache (half the time on 250k rows).
    scaled = np.empty(features.shape, dtype=np.float32)
    for start in range(0, len(features), SCALE_BLOCK_ROWS):
        block = np.subtract(features[start : start + SCALE_BLOCK_ROWS], scaler.center_, dtype=np.float64)
        np.divide(block, scaler.scale_, out=block)
        scaled[start : start + SCALE_BLOCK_ROWS] = block
    return scaled


def scaler_to_dict(scaler: RobustScaler) -> dict[str, Any]:
    return {
        "center": scaler.center_.tolist(),
        "scale": scaler.scale_.tolist(),
        "feature_names": [str(name) for name in scaler.feature_names_in_],
        "quantile_range": list(scaler.quantile_range),
    }


def scaler_from_dict(data: dict[str, Any]) -> RobustScaler:
    from sklearn.preprocessing import RobustScaler

    try:
        scaler = RobustScaler(quantile_range=tuple(data["quantile_range"]))
        scaler.center_ = np.asarray(data["center"], dtype=np.float64)
        scaler.scale_ = np.asarray(data["scale"], dtype=np.float64)
        scaler.feature_names_in_ = np.asarray(data["feature_names"], dtype=object)
    except (KeyError, TypeError, ValueError) as err:
        raise BundleError(f"Scaler file is malformed: {err}.") from err
    scaler.n_features_in_ = len(scaler.center_)
    return scaler
