"""The fitted state of an InferencePipeline as one frozen value (like sklearn's fitted steps)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class FittedComponents:
    """Scaler, base models and calibrators by key ("xgboost_h20"), final combination by horizon."""

    scaler: Any
    models: Mapping[str, Any]
    calibrators: Mapping[str, Any] = field(default_factory=dict)
    ensembles: Mapping[int, Any] = field(default_factory=dict)  # absent horizon: the first model scores

    def __post_init__(self) -> None:
        for name in ("models", "calibrators", "ensembles"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
