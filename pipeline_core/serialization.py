"""One safe serializer per component kind, shared by bundles and the Dagster build stages.

Every component is JSON, numpy's `.npy` read with `allow_pickle=False`, or a model
library's native format; never pickle. A component is written at its kind's path
(`models/xgboost_h20`, `calibrators/xgboost_h20.json`, ...) and recorded as a `Component`
naming the loader that reads it back. Libraries are imported when a component is read or
written, so importing this module stays cheap.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline_core.bundle import Component, Manifest
from pipeline_core.errors import BundleError

def read_json(path: Path) -> Any:
    """A component's JSON; BundleError naming the file if it is missing or not JSON."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise BundleError(f"Component file {path} is missing.") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"Component file {path} is not valid JSON: {err}.") from err


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


@dataclass(frozen=True)
class Serializer:
    """Where a kind lives (`{name}` filled in), how it is written (returning its loader
    name) and how it is read with that loader."""

    layout: str
    write: Callable[[Any, Path], str]
    read: Callable[[Path, str], Any]


def _write_plain(data: Any, path: Path) -> str:
    write_json(path, data)
    return "json"


def _read_plain(path: Path, _: str) -> Any:
    return read_json(path)


def _write_scaler(scaler, path: Path) -> str:
    from pipeline_core.scaling import scaler_to_dict

    write_json(path, scaler_to_dict(scaler))
    return "robust_scaler"


def _read_scaler(path: Path, _: str):
    from pipeline_core.scaling import scaler_from_dict

    return scaler_from_dict(read_json(path))


def _write_model(model, folder: Path) -> str:
    folder.mkdir(parents=True)
    model.save(folder)
    return model.family


def _read_model(folder: Path, family: str):
    from pipeline_core.models.registry import load_model

    return load_model(family, folder)


def _write_to_dict(obj, path: Path) -> str:
    write_json(path, obj.to_dict())
    return obj.method


def _read_calibrator(path: Path, method: str):
    from pipeline_core.calibration import calibrator_from_dict

    return calibrator_from_dict(read_json(path), method)


def _read_ensemble(path: Path, _: str):
    from pipeline_core.ensemble import ensemble_from_dict

    return ensemble_from_dict(read_json(path))


def _read_reference(path: Path, _: str):
    from pipeline_core.monitoring import ReferenceStats

    return ReferenceStats.from_dict(read_json(path))


def _write_array(array: np.ndarray, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(array), allow_pickle=False)
    return "npy"


def _read_array(path: Path, _: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise BundleError(f"Component file {path} is not a readable .npy array: {err}.") from err


SERIALIZERS: dict[str, Serializer] = {
    "config": Serializer("config.json", _write_plain, _read_plain),
    "scaler": Serializer("scaler.json", _write_scaler, _read_scaler),
    "model": Serializer("models/{name}", _write_model, _read_model),
    "calibrator": Serializer("calibrators/{name}.json", _write_to_dict, _read_calibrator),
    "ensemble": Serializer("ensemble/{name}.json", _write_to_dict, _read_ensemble),
    "reference": Serializer("reference/{name}.json", lambda stats, path: _write_plain(stats.to_dict(), path), _read_reference),
    "evaluation": Serializer("evaluation.json", _write_plain, _read_plain),
    "array": Serializer("arrays/{name}.npy", _write_array, _read_array),
    "manifest": Serializer(
        "manifest.json", lambda manifest, path: _write_plain(manifest.to_dict(), path),
        lambda path, _: Manifest.from_dict(read_json(path)),
    ),
}


def register(kind: str, serializer: Serializer) -> None:
    """Add a kind (e.g. the build stages' training data) that bundles do not hold."""
    SERIALIZERS[kind] = serializer


def _serializer(kind: str) -> Serializer:
    if kind not in SERIALIZERS:
        raise BundleError(f"Component kind {kind!r} is unknown: expected one of {sorted(SERIALIZERS)}.")
    return SERIALIZERS[kind]


def write_component(root: Path, kind: str, name: str, obj: Any) -> Component:
    """Write `obj` at its kind's place under `root`; the Component that reads it back."""
    serializer = _serializer(kind)
    rel = serializer.layout.format(name=name)
    return Component(kind, name, rel, serializer.write(obj, root / rel))


def read_component(root: Path, component: Component) -> Any:
    """Read a component with its kind's serializer and the loader it names. Errors that
    are not already BundleErrors are wrapped in one naming the file."""
    path = root / component.path
    try:
        return _serializer(component.kind).read(path, component.loader)
    except BundleError:
        raise
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise BundleError(f"Cannot read the {component.kind} component {path}: {str(err).rstrip('.')}.") from err
