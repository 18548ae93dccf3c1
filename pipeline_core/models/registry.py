"""Model families by name: create a fresh model or load a saved one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline_core.errors import ConfigError
from pipeline_core.models.base import BaseDirectionModel
from pipeline_core.models.catboost_model import CatBoostModel
from pipeline_core.models.lightgbm_model import LightGBMModel
from pipeline_core.models.recurrent import GRUModel, LSTMModel
from pipeline_core.models.tcn import TCNModel
from pipeline_core.models.xgboost_model import XGBoostModel

MODEL_FAMILIES: dict[str, type[BaseDirectionModel]] = {
    cls.family: cls
    for cls in (XGBoostModel, LightGBMModel, CatBoostModel, LSTMModel, GRUModel, TCNModel)
}


def model_class(family: str) -> type[BaseDirectionModel]:
    """The class registered for `family`; ConfigError naming the known ones otherwise."""
    try:
        return MODEL_FAMILIES[family]
    except (KeyError, TypeError) as err:
        raise ConfigError(
            f"Unknown model family {family!r}: expected one of {sorted(MODEL_FAMILIES)}."
        ) from err


def create_model(family: str, **params: Any) -> BaseDirectionModel:
    """An unfitted model of `family` with `params` over that family's defaults."""
    return model_class(family)(**params)


def load_model(family: str, folder: Path) -> BaseDirectionModel:
    """The `family` model saved in `folder` (BundleError if it holds something else)."""
    return model_class(family).load(Path(folder))
