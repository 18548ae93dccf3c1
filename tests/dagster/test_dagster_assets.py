"""The bundle assets and the partitioned scoring asset with its checks, via dg.materialize."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from datetime import date

import dagster as dg
import polars as pl
import pytest

from pipeline_core.bundle import MANIFEST_FILE, BundleStore
from pipeline_core.errors import BundleError

from inference_assets.defs import resources as resources_module
from inference_assets.defs.checks import scored_predictions_checks
from inference_assets.defs.partitions import ScoringPartition, range_tags
from inference_assets.defs.resources import BUNDLE_VERSION_TAG, DataLakeResource, ScoringChecksResource
from inference_assets.defs.scoring_assets import scored_predictions

from dagster_lab import BARS_PER_PARTITION, SCORED_DAYS, SCORED_HORIZONS, check_evaluations

pytestmark = pytest.mark.xdist_group("dagster")

BUNDLE_ASSETS = ["training_data", "feature_scaler", "base_models", "calibration_window_probabilities",
                 "calibrators", "ensembles", "deployment_bundle", "live_bundle"]
SAFE_SUFFIXES = {".json", ".npy", ".npz", ".parquet", ".ubj", ".txt"}


def _metadata(result, asset: str) -> dict:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return events[-1].materialization.metadata


def test_bundle_assets_build_and_promote_a_bundle(lab):
    materialized = {e.asset_key.to_user_string() for e in lab.bundle_result.get_asset_materialization_events()}
    assert materialized == set(BUNDLE_ASSETS)
    store = BundleStore(lab.deployment_root)
    assert store.live_version() == "pipeline_v1"
    bundle = _metadata(lab.bundle_result, "deployment_bundle")
    manifest = store.path("pipeline_v1") / MANIFEST_FILE
    assert bundle["manifest_sha256"].value == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert bundle["bundle_path"].value == str(store.path("pipeline_v1"))
    assert "| horizon | model | stage |" in bundle["evaluation"].value
    assert "| class prior | baseline |" in bundle["evaluation"].value
    assert "| model | calibration | parameters | reason |" in _metadata(lab.bundle_result, "calibrators")["calibration"].value
    assert "| horizon | chosen | cv stacking | cv voting | cv single |" in _metadata(lab.bundle_result, "ensembles")["selection"].value
    assert bundle["calibration_plot"].value.count("data:image/png;base64,") == 4
    assert bundle["seconds"].value > 0
    balance = _metadata(lab.bundle_result, "training_data")
    shares = [balance[f"share_{c}_h20"].value for c in ("down", "flat", "up")]
    assert sum(shares) == pytest.approx(1.0)


def test_bundle_stages_persist_no_pickle(lab):
    files = [p for p in lab.data_lake.build_dir.rglob("*") if p.is_file()]
    stages = {p.relative_to(lab.data_lake.build_dir).parts[0] for p in files}
    assert stages == set(BUNDLE_ASSETS) - {"live_bundle"}
    unsafe = sorted(str(p) for p in files if p.suffix not in SAFE_SUFFIXES or p.read_bytes()[:1] == b"\x80")
    assert unsafe == []
    # ForbiddenIOManager (dagster_lab) would have failed the run had any other asset returned a value.


def test_a_stage_built_by_an_earlier_run_is_read_back_and_a_changed_one_refused(lab, tmp_path):
    from inference_assets.defs.stage_io_manager import BuildStageIOManager

    stages = BuildStageIOManager(data_lake=lab.data_lake)
    context = dg.build_input_context(asset_key=dg.AssetKey("ensembles"))
    ensembles = stages.load_input(context)
    assert sorted(ensembles) == [5, 10, 15, 20] and all(hasattr(e, "predict_proba") for e in ensembles.values())
    copy = tmp_path / "lake"
    shutil.copytree(lab.data_lake.build_dir, copy / "build")
    [calibrator] = list((copy / "build" / "calibrators" / "calibrators").glob("*.json"))[:1]
    calibrator.write_text(calibrator.read_text().replace("temperature", "temperaturE", 1))
    changed = BuildStageIOManager(data_lake=DataLakeResource(root=str(copy)))
    with pytest.raises(BundleError, match="changed after it was written"):
        changed.load_input(dg.build_input_context(asset_key=dg.AssetKey("calibrators")))
    with pytest.raises(BundleError, match="'feature_scaler' stage has not been built"):
        BuildStageIOManager(data_lake=DataLakeResource(root=str(tmp_path / "empty"))).load_input(
            dg.build_input_context(asset_key=dg.AssetKey("feature_scaler")))


def test_bundle_assets_declare_code_versions(lab):
    graph = lab.definitions.resolve_asset_graph()
    for name in [*BUNDLE_ASSETS, "scored_predictions"]:
        assert graph.get(dg.AssetKey(name)).code_version, name


def test_scoring_writes_every_partition_with_all_rows(lab, scored_range):
    for day in SCORED_DAYS:
        for horizon in SCORED_HORIZONS:
            frame = pl.read_parquet(lab.prediction_file(day, horizon))
            assert frame.height == BARS_PER_PARTITION
            assert frame["timestamp"].dt.date().unique().to_list() == [day]
            assert frame["horizon"].unique().to_list() == [horizon]
            assert frame["bundle_version"].unique().to_list() == ["pipeline_v1"]
    assert not lab.prediction_file(SCORED_DAYS[0], 15).exists()  # outside the range


def test_scoring_records_metadata_per_partition(scored_range):
    events = scored_range.get_asset_materialization_events()
    by_partition = {e.materialization.partition: e.materialization.metadata for e in events}
    expected = {str(ScoringPartition(d, h).key) for d in SCORED_DAYS for h in SCORED_HORIZONS}
    assert set(by_partition) == expected
    for metadata in by_partition.values():
        assert metadata["rows"].value == BARS_PER_PARTITION
        assert metadata["rows_per_s"].value > 0
        assert metadata["bundle_version"].value == "pipeline_v1"
        assert 0 < metadata["mean_confidence"].value <= 1
        shares = sum(metadata[f"share_{c}"].value for c in ("down", "flat", "up"))
        assert shares == pytest.approx(1.0, abs=1e-5)  # each share is rounded to 6 digits


def test_all_checks_pass_on_every_scored_partition(scored_range):
    evaluations = check_evaluations(scored_range)
    outcomes = {(e.check_name, e.partition): e.passed for e in evaluations}
    expected = {str(ScoringPartition(d, h).key) for d in SCORED_DAYS for h in SCORED_HORIZONS}
    for check in ("no_lookahead", "parity", "throughput"):
        assert {p for c, p in outcomes if c == check} == expected
    assert all(outcomes.values()), [k for k, passed in outcomes.items() if not passed]
    assert all(e.target_materialization_data is not None for e in evaluations)


def test_scoring_run_pins_its_bundle_version(lab, scored_range):
    run = lab.instance.get_run_by_id(scored_range.run_id)
    assert run.tags[BUNDLE_VERSION_TAG] == "pipeline_v1"


def test_bundle_is_loaded_once_per_process(lab, scored_range):
    resources_module._load_bundle.cache_clear()
    result = lab.materialize(dg.AssetSelection.assets("scored_predictions"), partition_key="2024-03-08|10")
    assert result.success
    info = resources_module._load_bundle.cache_info()
    assert (info.misses, info.hits) == (1, 1)  # the asset loads it, the checks' step reuses it


def test_rematerializing_a_partition_replaces_it_with_the_same_content(lab, scored_range):
    target = lab.prediction_file(SCORED_DAYS[0], SCORED_HORIZONS[0])
    before = pl.read_parquet(target)
    result = lab.materialize(
        dg.AssetSelection.assets("scored_predictions"), partition_key=str(ScoringPartition(SCORED_DAYS[0], 5).key)
    )
    assert result.success
    assert [p.name for p in target.parent.iterdir()] == ["part-0.parquet"]
    assert pl.read_parquet(target).equals(before)


def test_missing_raw_date_fails_with_a_clear_message(lab):
    missing = date(2024, 3, 20)
    result = lab.materialize(dg.AssetSelection.assets("scored_predictions"), partition_key=f"{missing}|5")
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error.cause
    assert failure.cls_name == "DataValidationError"
    assert "No raw bars for 1 requested date(s): 2024-03-20" in failure.message
    assert not lab.prediction_file(missing, 5).parent.exists()


def test_throughput_below_the_floor_warns_without_blocking(lab, scored_range):
    result = lab.materialize(
        dg.AssetSelection.assets("scored_predictions"),
        partition_key="2024-03-08|5",
        resources={"scoring_checks": ScoringChecksResource(throughput_floor=10**9, lookahead_samples=2)},
    )
    assert result.success
    (throughput,) = [e for e in check_evaluations(result) if e.check_name == "throughput"]
    assert not throughput.passed
    assert throughput.severity == dg.AssetCheckSeverity.WARN
    assert throughput.metadata["floor_rows_per_s"].value == 10**9


def test_the_predictions_dataset_reads_with_hive_partitioning_in_pyarrow_and_polars(lab, scored_range):
    import pyarrow.dataset as ds

    root = lab.data_lake.predictions_dir
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    scanned = pl.scan_parquet(f"{root}/**/*.parquet", hive_partitioning=True).collect()
    assert table.num_rows == scanned.height >= BARS_PER_PARTITION * len(SCORED_DAYS) * len(SCORED_HORIZONS)
    assert set(scanned["horizon"].unique()) >= set(SCORED_HORIZONS)


@pytest.mark.parametrize("tamper", ["probability", "bundle_version"])
def test_parity_judges_the_stored_file_against_the_pinned_bundle(lab, scored_range, tamper):
    """A file altered after it was written, or written by another bundle, fails `parity`."""
    partition = ScoringPartition(SCORED_DAYS[0], SCORED_HORIZONS[0])
    target = lab.prediction_file(partition.day, partition.horizon)
    original = target.read_bytes()
    frame = pl.read_parquet(target)
    last = pl.int_range(pl.len()).over("symbol") == pl.len().over("symbol") - 1  # sampled: each symbol's last bars
    if tamper == "probability":
        frame = frame.with_columns(pl.when(last).then(pl.col("prob_up") + 1e-3).otherwise(pl.col("prob_up")).alias("prob_up"))
    else:
        frame = frame.with_columns(pl.lit("pipeline_v9").alias("bundle_version"))
    try:
        frame.write_parquet(target)
        parity = dg.AssetCheckKey(scored_predictions.key, "parity")
        job = dg.define_asset_job("parity_only", selection=dg.AssetSelection.checks(parity))  # the asset would rewrite
        defs = dg.Definitions(assets=[scored_predictions], asset_checks=[scored_predictions_checks], jobs=[job],
                              resources=lab.resources)
        result = defs.resolve_job_def("parity_only").execute_in_process(
            tags=range_tags(partition, partition), instance=lab.instance, raise_on_error=False
        )
        (evaluation,) = check_evaluations(result)
        assert not evaluation.passed and evaluation.partition == str(partition.key)
        assert "stored file final" in evaluation.description
        assert evaluation.metadata["max_abs_diff stored file final"].value > 1e-6
    finally:
        target.write_bytes(original)


def test_a_run_failing_part_way_records_the_partitions_it_wrote_and_only_those(lab, tmp_path):
    """The second date's bars hold a NaN close, found when that date is read: the first date's
    files are on disk and materialized, the second's neither."""
    first, second = SCORED_DAYS
    shutil.copytree(lab.data_lake.ohlcv_dir, tmp_path / "data" / "ohlcv")
    broken = tmp_path / "data" / "ohlcv" / f"date={second}" / "part-0.parquet"
    bars = pl.read_parquet(broken)
    bars.with_columns(close=pl.when(pl.int_range(pl.len()) == 7).then(float("nan")).otherwise("close")).write_parquet(broken)
    data_lake = DataLakeResource(root=str(tmp_path / "data"))
    lab = dataclasses.replace(lab, instance=dg.DagsterInstance.ephemeral())  # the shared instance keeps its statuses
    result = lab.materialize(
        dg.AssetSelection.assets("scored_predictions").without_checks(), resources={"data_lake": data_lake},
        tags=range_tags(ScoringPartition(first, 5), ScoringPartition(second, 10)),
    )
    assert not result.success
    assert "NaN" in result.get_step_failure_events()[0].step_failure_data.error.cause.message
    written = sorted(str(path.relative_to(data_lake.predictions_dir)) for path in data_lake.predictions_dir.rglob("*.parquet"))
    assert written == [f"horizon={h}/date={first}/part-0.parquet" for h in (10, 5)]
    materialized = [e.partition for e in result.get_asset_materialization_events()]
    assert sorted(materialized) == [f"{first}|10", f"{first}|5"]
    status = lab.instance.get_status_by_partition(  # what the UI shows
        dg.AssetKey("scored_predictions"), [f"{d}|{h}" for d in SCORED_DAYS for h in (5, 10)], scored_predictions.partitions_def,
    )
    MATERIALIZED, FAILED = dg.AssetPartitionStatus.MATERIALIZED, dg.AssetPartitionStatus.FAILED
    assert status == {f"{first}|5": MATERIALIZED, f"{first}|10": MATERIALIZED, f"{second}|5": FAILED, f"{second}|10": FAILED}
