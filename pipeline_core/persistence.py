"""Saving and loading an InferencePipeline as a bundle (see `bundle` for the format).

Layout: config.json, scaler.json, models/<name>_h<H>/, calibrators/<name>_h<H>.json,
ensemble/meta_h<H>.json, reference/h<H>.json, evaluation.json, manifest.json.
Every component is written and read by its kind's serializer (`serialization`), with the
loader the manifest names, never one chosen from file contents.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from pipeline_core.serialization import read_component, write_component

BUNDLE_KINDS = ("config", "scaler", "model", "calibrator", "ensemble", "reference", "evaluation")


def _write_components(pipeline, root: Path) -> list[Component]:
    items = [
        ("config", "config", {"config": pipeline.config.to_dict(), "metadata": pipeline.metadata}),
        ("scaler", "scaler", pipeline.scaler),
        *(("model", key, model) for key, model in pipeline.models.items()),
        *(("calibrator", key, calibrator) for key, calibrator in pipeline.calibrators.items()),
        *(("ensemble", f"meta_h{h}", ensemble) for h, ensemble in pipeline.ensembles.items()),
        *(("reference", f"h{h}", stats) for h, stats in pipeline.reference_stats.items()),
        ("evaluation", "evaluation", pipeline.evaluation),
    ]
    return [write_component(root, kind, name, obj) for kind, name, obj in items]


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
        if component.kind not in BUNDLE_KINDS:
            raise BundleError(f"Bundle component kind {component.kind!r} is unknown: expected one of {list(BUNDLE_KINDS)}.")
        loaded.setdefault(component.kind, {})[component.name] = read_component(path, component)
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
