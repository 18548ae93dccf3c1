"""The IO manager of the bundle build: each stage's value, stored without pickle.

Dagster's default IO manager pickles; this one writes each bundle asset's output with
`pipeline_core.build_stages` (the bundle's own component formats: JSON, .npy/.npz, parquet,
native model files) to `<data root>/build/<asset>/`, atomically and hash-checked, and hands
the next stage the typed value. Within a run the value just written is handed over as is, so a
stage's inputs are read from disk only when an earlier run built them.

The asset's `stage_kind` metadata names the component kind of its value (or of each value
of a mapping).
"""

from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from pipeline_core.atomic import atomic_folder
from pipeline_core.errors import BundleError
from pipeline_core.build_stages import STAGE_FILE, read_stage, write_stage

from inference_assets.defs.resources import DataLakeResource, data_lake_resource

STAGE_KIND = "stage_kind"


def stage(kind: str) -> dict[str, str]:
    """Metadata of a bundle asset whose value is (a mapping of) `kind` components."""
    return {STAGE_KIND: kind}


class BuildStageIOManager(dg.ConfigurableIOManager):
    """Bundle build stages under the data lake's build folder, one folder per asset."""

    data_lake: DataLakeResource
    _written: dict[Path, Any] = PrivateAttr(default_factory=dict)

    def _folder(self, key: dg.AssetKey) -> Path:
        return self.data_lake.build_dir.joinpath(*key.path)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        folder = self._folder(context.asset_key)
        with atomic_folder(folder) as staging:
            write_stage(staging, context.definition_metadata[STAGE_KIND], obj)
        self._written[folder] = obj

    def load_input(self, context: dg.InputContext) -> Any:
        folder = self._folder(context.asset_key)
        if folder in self._written:
            return self._written[folder]
        if not (folder / STAGE_FILE).is_file():
            name = context.asset_key.to_user_string()
            raise BundleError(f"The {name!r} stage has not been built: {folder} is missing. "
                              f"Materialize {name!r} (or the whole bundle_job) first.")
        return read_stage(folder)


@dg.definitions
def build_stages() -> dg.Definitions:
    return dg.Definitions(resources={"build_stages": BuildStageIOManager(data_lake=data_lake_resource())})
