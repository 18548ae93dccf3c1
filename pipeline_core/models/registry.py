"""Model families by name: create a fresh model or load a saved one.

A family's module (and so its library: xgboost, lightgbm, catboost, torch) is imported the
first time that family is asked for, so loading a bundle imports only what it names.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pipeline_core.errors import ConfigError
from pipeline_core.models.base import BaseDirectionModel
from pipeline_core.models.families import SEQUENCE_FAMILIES

_CLASSES = {
    "xgboost": ("xgboost_model", "XGBoostModel"),
    "lightgbm": ("lightgbm_model", "LightGBMModel"),
    "catboost": ("catboost_model", "CatBoostModel"),
    "lstm": ("recurrent", "LSTMModel"),
    "gru": ("recurrent", "GRUModel"),
    "tcn": ("tcn", "TCNModel"),
}


class _Families(Mapping):
    """family -> model class, importing each family's module on first access."""

    def __getitem__(self, family: str) -> type[BaseDirectionModel]:
        module, name = _CLASSES[family]
        return getattr(importlib.import_module(f"pipeline_core.models.{module}"), name)

    def __iter__(self) -> Iterator[str]:
        return iter(SEQUENCE_FAMILIES)

    def __len__(self) -> int:
        return len(SEQUENCE_FAMILIES)


MODEL_FAMILIES: Mapping[str, type[BaseDirectionModel]] = _Families()


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
