"""Saving and loading an InferencePipeline as a bundle (see `bundle` for the format).

Layout: config.json, scaler.json, models/<name>_h<H>/, calibrators/<name>_h<H>.json,
ensemble/meta_h<H>.json, reference/h<H>.json, evaluation.json, manifest.json.
Every component is JSON or a library's native model format; loaders are looked up by
component kind in `LOADERS`, never chosen from file contents. The loaders import their
libraries when a bundle is read, so importing this module (and the pipeline) stays cheap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pipeline_core.bundle import (
    Component,
    Manifest,
    new_manifest,
    verify_bundle,
    write_bundle,
)
from pipeline_core.components import FittedComponents
from pipeline_core.constants import CLASSES
from pipeline_core.errors import BundleError


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise BundleError(f"Bundle file {path.name} is not valid JSON: {err}.") from err


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def _scaler(path: Path, _: str):
    from pipeline_core.scaling import scaler_from_dict

    return scaler_from_dict(_read_json(path))


def _model(path: Path, family: str):
    from pipeline_core.models.registry import load_model

    return load_model(family, path)


def _calibrator(path: Path, method: str):
    from pipeline_core.calibration import calibrator_from_dict

    return calibrator_from_dict(_read_json(path), method)


def _ensemble(path: Path, _: str):
    from pipeline_core.ensemble import ensemble_from_dict

    return ensemble_from_dict(_read_json(path))


def _reference(path: Path, _: str):
    from pipeline_core.monitoring import ReferenceStats

    return ReferenceStats.from_dict(_read_json(path))


# kind -> (path, loader name) -> object
LOADERS: dict[str, Callable[[Path, str], Any]] = {
    "config": lambda path, _: _read_json(path),
    "scaler": _scaler,
    "model": _model,
    "calibrator": _calibrator,
    "ensemble": _ensemble,
    "reference": _reference,
    "evaluation": lambda path, _: _read_json(path),
}


def _write_components(pipeline, root: Path) -> list[Component]:
    components = [
        Component("config", "config", "config.json", "json"),
        Component("scaler", "scaler", "scaler.json", "robust_scaler"),
    ]
    _write_json(root / "config.json", {"config": pipeline.config.to_dict(), "metadata": pipeline.metadata})
    from pipeline_core.scaling import scaler_to_dict

    _write_json(root / "scaler.json", scaler_to_dict(pipeline.scaler))
    for key, model in pipeline.models.items():
        folder = root / "models" / key
        folder.mkdir(parents=True)
        model.save(folder)
        components.append(Component("model", key, f"models/{key}", model.family))
    for key, calibrator in pipeline.calibrators.items():
        _write_json(root / "calibrators" / f"{key}.json", calibrator.to_dict())
        components.append(Component("calibrator", key, f"calibrators/{key}.json", calibrator.method))
    for horizon, ensemble in pipeline.ensembles.items():
        _write_json(root / "ensemble" / f"meta_h{horizon}.json", ensemble.to_dict())
        components.append(Component("ensemble", f"meta_h{horizon}", f"ensemble/meta_h{horizon}.json", ensemble.method))
    for horizon, stats in pipeline.reference_stats.items():
        _write_json(root / "reference" / f"h{horizon}.json", stats.to_dict())
        components.append(Component("reference", f"h{horizon}", f"reference/h{horizon}.json", "json"))
    _write_json(root / "evaluation.json", pipeline.evaluation)
    components.append(Component("evaluation", "evaluation", "evaluation.json", "json"))
    return components


@dataclass(frozen=True)
class StoredBundle:
    """What a verified bundle holds, read with the registered loaders."""

    manifest: Manifest
    config: dict[str, Any]
    metadata: dict[str, Any]
    components: FittedComponents
    evaluation: dict[str, Any]
    reference_stats: dict[int, Any]


def save_pipeline(pipeline, path: Path) -> Manifest:
    fields = new_manifest(
        pipeline_version=path.name,
        feature_set=pipeline.config.feature_set,
        feature_columns=list(pipeline.config.feature_columns),
        required_lookback=pipeline.required_lookback,
        horizons=list(pipeline.config.horizons),
        classes=list(CLASSES),
        training_window=pipeline.metadata.get("training_window", {}),
        label_spec=pipeline.metadata.get("label_spec", {}),
        deployable=pipeline.evaluation.get("skill", {}).get("deployable"),
    )
    return write_bundle(path, lambda root: _write_components(pipeline, root), fields)


def read_bundle(path: Path) -> StoredBundle:
    """Verify every hash, then read each component with the loader its manifest names."""
    manifest = verify_bundle(path)
    loaded: dict[str, dict[str, Any]] = {}
    for component in manifest.components:
        if component.kind not in LOADERS:
            raise BundleError(f"Bundle component kind {component.kind!r} is unknown: expected one of {sorted(LOADERS)}.")
        loaded.setdefault(component.kind, {})[component.name] = LOADERS[component.kind](
            path / component.path, component.loader
        )
    stored = loaded["config"]["config"]
    components = FittedComponents(
        scaler=loaded["scaler"]["scaler"],
        models=loaded.get("model", {}),
        calibrators=loaded.get("calibrator", {}),
        ensembles={int(name.removeprefix("meta_h")): e for name, e in loaded.get("ensemble", {}).items()},
    )
    return StoredBundle(
        manifest=manifest, config=stored["config"], metadata=stored["metadata"], components=components,
        evaluation=loaded["evaluation"]["evaluation"],
        reference_stats={int(name.removeprefix("h")): r for name, r in loaded.get("reference", {}).items()},
    )
