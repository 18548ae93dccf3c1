"""The spec's three deployment profiles, by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline_core.errors import ConfigError

if TYPE_CHECKING:
    from pipeline_core.pipeline import InferenceConfig

PROFILES = {
    # Boosting only, soft voting: the fastest bundle.
    "low-latency": dict(
        model_names=["xgboost", "lightgbm", "catboost"], horizons=[20], ensemble_method="voting"
    ),
    # Boosting plus recurrent models, logistic stacking.
    "max-accuracy": dict(
        model_names=["xgboost", "lightgbm", "lstm", "gru"], horizons=[20], ensemble_method="stacking"
    ),
    # Every horizon, individual models, no ensemble.
    "multi-horizon": dict(
        model_names=["xgboost", "lightgbm"], horizons=[5, 10, 15, 20], use_ensemble=False
    ),
}


def profile_config(name: str, **overrides) -> InferenceConfig:
    """The InferenceConfig of a named profile, with optional field overrides."""
    from pipeline_core.pipeline import InferenceConfig  # here: `train --help` needs only PROFILES
    if name not in PROFILES:
        raise ConfigError(f"Unknown profile {name!r}: expected one of {sorted(PROFILES)}.")
    return InferenceConfig(**{**PROFILES[name], **overrides})
