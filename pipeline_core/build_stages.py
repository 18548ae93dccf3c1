"""Build stages on disk: one value per folder (a component, or a mapping of components by
name or horizon) written with the component serializers, plus the training data, with
`stage.json` listing them and every file's SHA-256, checked on read.

The training data (the Dagster build's first stage) is arrays in one `.npz` read with
`allow_pickle=False`, the rows without features as parquet, and the rest as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipeline_core.bundle import Component, relative_files, sha256_file
from pipeline_core.errors import BundleError
from pipeline_core.inputs import FeatureRows
from pipeline_core.pipeline import InferenceConfig
from pipeline_core.splits import Fold
from pipeline_core.serialization import Serializer, read_component, read_json, register, write_component, write_json
from pipeline_core.training import WINDOWS, HorizonSplit, TrainingData

STAGE_FILE = "stage.json"


def save_training_data(data: TrainingData, folder: Path) -> str:
    folder.mkdir(parents=True)
    rows = data.rows
    arrays = {
        "raw": rows.raw,
        "blocks": np.asarray(rows.blocks, dtype=np.int64).reshape(-1, 2),
        "scored": rows.scored,
        "rows": rows.rows,
        "timestamps": rows.timestamps.astype("datetime64[us]").astype(np.int64),
        "symbols": rows.symbols.astype(str),
    }
    for horizon, split in data.splits.items():
        arrays[f"h{horizon}_y"] = split.y
        arrays.update({f"h{horizon}_{name}": getattr(split, name) for name in WINDOWS})
        for k, fold in enumerate(split.folds):
            arrays.update({f"h{horizon}_fold{k}_train": fold.train, f"h{horizon}_fold{k}_val": fold.val})
    np.savez(folder / "arrays.npz", **arrays)
    rows.unscored.write_parquet(folder / "unscored.parquet")
    write_json(folder / "config.json", {
        "config": data.config.to_dict(),
        "sequence_length": rows.sequence_length,
        "horizons": list(data.splits),
        "splits": {h: {"folds": len(s.folds), "folds_note": s.folds_note, "sizes": s.sizes}
                   for h, s in data.splits.items()},
    })
    return "npz"


def load_training_data(folder: Path, _: str = "npz") -> TrainingData:
    meta = read_json(folder / "config.json")
    with np.load(folder / "arrays.npz", allow_pickle=False) as arrays:
        rows = FeatureRows(
            raw=arrays["raw"],
            blocks=[tuple(int(v) for v in block) for block in arrays["blocks"]],
            scored=arrays["scored"],
            rows=arrays["rows"],
            sequence_length=int(meta["sequence_length"]),
            timestamps=arrays["timestamps"].astype("datetime64[us]"),
            symbols=arrays["symbols"].astype(object),
            unscored=pl.read_parquet(folder / "unscored.parquet"),
        )
        splits = {int(h): _load_split(arrays, int(h), meta["splits"][str(h)]) for h in meta["horizons"]}
    return TrainingData(config=InferenceConfig.from_dict(meta["config"]), rows=rows, splits=splits)


def _load_split(arrays, horizon: int, meta: dict) -> HorizonSplit:
    folds = [Fold(arrays[f"h{horizon}_fold{k}_train"], arrays[f"h{horizon}_fold{k}_val"]) for k in range(meta["folds"])]
    windows = (arrays[f"h{horizon}_{name}"] for name in WINDOWS)
    return HorizonSplit(horizon, arrays[f"h{horizon}_y"], *windows, folds=folds,
                        folds_note=meta["folds_note"], sizes=meta["sizes"])


register("training_data", Serializer("training_data", save_training_data, load_training_data))


def write_stage(folder: Path, kind: str, value: Any) -> None:
    """One build stage's value (a component, or a mapping of components by name or horizon)
    into an empty `folder`, with its index and file hashes."""
    mapping = isinstance(value, Mapping)
    items = value.items() if mapping else [(kind, value)]
    components = [write_component(folder, kind, str(key), obj) for key, obj in items]
    keys = "int" if mapping and all(isinstance(k, int) for k in value) else "str"
    files = {rel: sha256_file(folder / rel) for rel in relative_files(folder)}
    write_json(folder / STAGE_FILE, {
        "kind": kind, "mapping": mapping, "keys": keys,
        "components": [asdict(c) for c in components], "files": files,
    })


def read_stage(folder: Path) -> Any:
    """The value `write_stage` wrote, after checking every file's hash."""
    index = read_json(folder / STAGE_FILE)
    present = set(relative_files(folder)) - {STAGE_FILE}
    listed = index["files"]
    changed = sorted(rel for rel in listed if rel not in present or sha256_file(folder / rel) != listed[rel])
    changed += sorted(present - set(listed))
    if changed:
        raise BundleError(f"Build stage {folder} changed after it was written ({changed[:5]}): materialize it again.")
    values = {c["name"]: read_component(folder, Component(**c)) for c in index["components"]}
    if not index["mapping"]:
        return values[index["kind"]]
    return {int(k) if index["keys"] == "int" else k: v for k, v in values.items()}
