"""Direction models: one module per family, each a `BaseDirectionModel`.

Names are imported lazily (PEP 562), so `pipeline_core.models.base` (class constants,
label checks) can be used by calibration and ensembles without importing torch,
xgboost, lightgbm and catboost; the first use of a family or the registry loads them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "BaseDirectionModel": "base",
    "XGBoostModel": "xgboost_model",
    "LightGBMModel": "lightgbm_model",
    "CatBoostModel": "catboost_model",
    "LSTMModel": "recurrent",
    "GRUModel": "recurrent",
    "TCNModel": "tcn",
    "MODEL_FAMILIES": "registry",
    "create_model": "registry",
    "load_model": "registry",
    "model_class": "registry",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from pipeline_core.models.base import BaseDirectionModel
    from pipeline_core.models.catboost_model import CatBoostModel
    from pipeline_core.models.lightgbm_model import LightGBMModel
    from pipeline_core.models.recurrent import GRUModel, LSTMModel
    from pipeline_core.models.registry import (
        MODEL_FAMILIES,
        create_model,
        load_model,
        model_class,
    )
    from pipeline_core.models.tcn import TCNModel
    from pipeline_core.models.xgboost_model import XGBoostModel


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
