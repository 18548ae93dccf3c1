"""TrainingData on disk (the Dagster build's first stage): arrays in one `.npz` read with
`allow_pickle=False`, the rows without features as parquet, the rest as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from pipeline_core.inputs import FeatureRows
from pipeline_core.pipeline import InferenceConfig
from pipeline_core.splits import Fold
from pipeline_core.training import WINDOWS, HorizonSplit, TrainingData


def save_training_data(data: TrainingData, folder: Path) -> None:
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
    (folder / "config.json").write_text(json.dumps({
        "config": data.config.to_dict(),
        "sequence_length": rows.sequence_length,
        "horizons": list(data.splits),
        "splits": {h: {"folds": len(s.folds), "folds_note": s.folds_note, "sizes": s.sizes}
                   for h, s in data.splits.items()},
    }, indent=1))


def load_training_data(folder: Path) -> TrainingData:
    meta = json.loads((folder / "config.json").read_text())
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
