"""The bundle build folder: each training stage's output, persisted without pickle.

Dagster's default IO manager pickles asset outputs; the project loads no pickle from
disk. So every bundle asset writes its own output here, in the formats the bundle uses,
and the next stage reads it back:

    build/training_data/   config.json, arrays.npz (allow_pickle=False), unscored.parquet
    build/feature_scaler/  scaler.json
    build/base_models/     index.json + <name>_h<H>/ (each model's native files + config)
    build/calibrators/     calibrators.json
    build/ensembles/       ensembles.json
    build/deployment_bundle/ bundle.json (which version the last build wrote)

Each stage folder is written to a temporary sibling and renamed into place, so a failed
stage never leaves a half-written folder, and a stage's `stage.json` records how long it
took. The serializers are `pipeline_core`'s own (to_dict / from_dict, model save / load).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipeline_core.atomic import atomic_folder
from pipeline_core.calibration import calibrator_from_dict
from pipeline_core.ensemble import ensemble_from_dict
from pipeline_core.errors import BundleError
from pipeline_core.inputs import FeatureRows
from pipeline_core.models import load_model
from pipeline_core.pipeline import InferenceConfig
from pipeline_core.scaling import scaler_from_dict, scaler_to_dict
from pipeline_core.splits import Fold
from pipeline_core.training import WINDOWS, HorizonSplit, TrainingData

STAGE_FILE = "stage.json"


class BuildFolder:
    """Stage outputs of one bundle build under `root`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------ plumbing

    def stage_dir(self, stage: str) -> Path:
        """The folder of a built stage; BundleError naming the asset to materialize otherwise."""
        folder = self.root / stage
        if not (folder / STAGE_FILE).is_file():
            raise BundleError(
                f"The {stage!r} stage has not been built: {folder} is missing. "
                f"Materialize the asset {stage!r} (or the whole bundle_job) first."
            )
        return folder

    def stage_info(self, stage: str) -> dict[str, Any]:
        return json.loads((self.stage_dir(stage) / STAGE_FILE).read_text())

    def write_stage(self, stage: str, write: Callable[[Path], None], info: dict[str, Any]) -> Path:
        """Fill a temporary folder with `write`, add stage.json, and swap it into place."""
        final = self.root / stage
        with atomic_folder(final) as staging:
            write(staging)
            _write_json(staging / STAGE_FILE, info)
        return final

    # ------------------------------------------------------------ training data

    def save_training_data(self, data: TrainingData, info: dict[str, Any]) -> Path:
        def write(folder: Path) -> None:
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
            _write_json(folder / "config.json", {
                "config": data.config.to_dict(),
                "sequence_length": rows.sequence_length,
                "horizons": list(data.splits),
                "splits": {h: {"folds": len(s.folds), "folds_note": s.folds_note, "sizes": s.sizes}
                           for h, s in data.splits.items()},
            })

        return self.write_stage("training_data", write, info)

    def load_training_data(self) -> TrainingData:
        folder = self.stage_dir("training_data")
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

    # -------------------------------------------------------- fitted components

    def save_scaler(self, scaler, info: dict[str, Any]) -> Path:
        return self.write_stage("feature_scaler", lambda f: _write_json(f / "scaler.json", scaler_to_dict(scaler)), info)

    def load_scaler(self):
        return scaler_from_dict(_read_json(self.stage_dir("feature_scaler") / "scaler.json"))

    def save_models(self, models: dict[str, Any], info: dict[str, Any]) -> Path:
        def write(folder: Path) -> None:
            for key, model in models.items():
                model.save(folder / key)
            _write_json(folder / "index.json", {key: model.family for key, model in models.items()})

        return self.write_stage("base_models", write, info)

    def load_models(self) -> dict[str, Any]:
        folder = self.stage_dir("base_models")
        return {key: load_model(family, folder / key) for key, family in _read_json(folder / "index.json").items()}

    def save_calibrators(self, calibrators: dict[str, Any], info: dict[str, Any]) -> Path:
        payload = {key: calibrator.to_dict() for key, calibrator in calibrators.items()}
        return self.write_stage("calibrators", lambda f: _write_json(f / "calibrators.json", payload), info)

    def load_calibrators(self) -> dict[str, Any]:
        payload = _read_json(self.stage_dir("calibrators") / "calibrators.json")
        return {key: calibrator_from_dict(data) for key, data in payload.items()}

    def save_ensembles(self, ensembles: dict[int, Any], info: dict[str, Any]) -> Path:
        payload = {str(h): ensemble.to_dict() for h, ensemble in ensembles.items()}
        return self.write_stage("ensembles", lambda f: _write_json(f / "ensembles.json", payload), info)

    def load_ensembles(self) -> dict[int, Any]:
        payload = _read_json(self.stage_dir("ensembles") / "ensembles.json")
        return {int(h): ensemble_from_dict(data) for h, data in payload.items()}

    # ------------------------------------------------------------------- bundle

    def save_bundle_receipt(self, receipt: dict[str, Any], info: dict[str, Any]) -> Path:
        return self.write_stage("deployment_bundle", lambda f: _write_json(f / "bundle.json", receipt), info)

    def load_bundle_receipt(self) -> dict[str, Any]:
        return _read_json(self.stage_dir("deployment_bundle") / "bundle.json")


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=str))


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _load_split(arrays, horizon: int, meta: dict[str, Any]) -> HorizonSplit:
    folds = [Fold(arrays[f"h{horizon}_fold{k}_train"], arrays[f"h{horizon}_fold{k}_val"]) for k in range(meta["folds"])]
    windows = (arrays[f"h{horizon}_{name}"] for name in WINDOWS)
    return HorizonSplit(horizon, arrays[f"h{horizon}_y"], *windows, folds=folds,
                        folds_note=meta["folds_note"], sizes=meta["sizes"])
