import json
import pickle
import time

import pytest

from pipeline_core.bundle import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    BundleStore,
    rehash_bundle,
    verify_bundle,
)
from pipeline_core.cli import main
from pipeline_core.errors import BundleError, BundleFormatError, BundleIntegrityError
from pipeline_core.pipeline import InferencePipeline


def _manifest(bundle):
    return json.loads((bundle / MANIFEST_FILE).read_text())


def _write_manifest(bundle, data):
    (bundle / MANIFEST_FILE).write_text(json.dumps(data))


def test_bundle_layout_follows_the_spec_with_no_pickle(tiny_bundle):
    names = {p.relative_to(tiny_bundle).as_posix() for p in tiny_bundle.rglob("*") if p.is_file()}
    assert {"config.json", "scaler.json", "manifest.json", "evaluation.json"} <= names
    assert {"calibrators/xgboost_h20.json", "ensemble/meta_h20.json", "reference/h20.json"} <= names
    assert any(n.startswith("models/xgboost_h20/") for n in names)
    assert any(n.startswith("models/gru_h10/") for n in names)
    for path in tiny_bundle.rglob("*"):
        if path.is_file():
            assert not path.read_bytes()[:1] == b"\x80", f"{path} looks like a pickle"
    manifest = _manifest(tiny_bundle)
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["horizons"] == [10, 20] and manifest["classes"] == [-1, 0, 1]
    assert manifest["feature_columns"] and manifest["required_lookback"] > 0
    assert {"xgboost", "lightgbm", "torch", "numpy"} <= set(manifest["library_versions"])
    assert set(manifest["files"]) == names - {"manifest.json"}


def test_load_refuses_a_flipped_byte_naming_the_file(bundle_copy):
    model_file = sorted((bundle_copy / "models" / "lightgbm_h20").iterdir())[0]
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    model_file.write_bytes(bytes(data))
    relative = model_file.relative_to(bundle_copy).as_posix()
    with pytest.raises(BundleIntegrityError, match=rf"SHA-256 does not match.*{relative}"):
        InferencePipeline.load(bundle_copy)


def test_load_refuses_a_deleted_file(bundle_copy):
    (bundle_copy / "calibrators" / "gru_h10.json").unlink()
    with pytest.raises(BundleIntegrityError, match=r"1 missing files: \['calibrators/gru_h10.json'\]"):
        InferencePipeline.load(bundle_copy)


def test_load_refuses_an_extra_file(bundle_copy):
    (bundle_copy / "models" / "notes.txt").write_text("hello")
    with pytest.raises(BundleIntegrityError, match=r"files not in the manifest: \['models/notes.txt'\]"):
        InferencePipeline.load(bundle_copy)


def test_load_refuses_a_manifest_path_outside_the_bundle(bundle_copy):
    manifest = _manifest(bundle_copy)
    manifest["files"]["../x"] = "0" * 64
    _write_manifest(bundle_copy, manifest)
    with pytest.raises(BundleIntegrityError, match=r"'\.\./x' points outside the bundle"):
        InferencePipeline.load(bundle_copy)


class _Exploit:
    def __reduce__(self):
        import pathlib

        return (pathlib.Path.write_text, (pathlib.Path(MARKER), "pwned"))


MARKER = ""


def test_a_planted_pickle_is_never_unpickled(bundle_copy, tmp_path):
    global MARKER
    MARKER = str(tmp_path / "unpickled")
    (bundle_copy / "models" / "xgboost_h20.pkl").write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(BundleIntegrityError, match="files not in the manifest"):
        InferencePipeline.load(bundle_copy)
    # Even an attacker who lists it and re-hashes gets no loader that unpickles.
    manifest = _manifest(bundle_copy)
    manifest["components"].append({"kind": "model", "name": "xgboost_h20", "path": "models/xgboost_h20.pkl", "loader": "pickle"})
    _write_manifest(bundle_copy, manifest)
    rehash_bundle(bundle_copy)
    with pytest.raises(BundleError, match="models/xgboost_h20.pkl: Unknown model family 'pickle'"):
        InferencePipeline.load(bundle_copy)
    assert not (tmp_path / "unpickled").exists()


def test_load_refuses_a_newer_format_version(bundle_copy):
    manifest = _manifest(bundle_copy)
    manifest["format_version"] = FORMAT_VERSION + 1
    _write_manifest(bundle_copy, manifest)
    with pytest.raises(BundleFormatError, match="newer than this library reads.*upgrade"):
        InferencePipeline.load(bundle_copy)


def test_load_refuses_a_folder_without_manifest(tmp_path):
    with pytest.raises(BundleIntegrityError, match="manifest.json is missing"):
        InferencePipeline.load(tmp_path)


def test_load_warns_on_a_different_library_major_version(bundle_copy):
    manifest = _manifest(bundle_copy)
    manifest["library_versions"]["xgboost"] = "0.9.0"
    _write_manifest(bundle_copy, manifest)
    with pytest.warns(UserWarning, match="saved with xgboost 0.9.0"):
        InferencePipeline.load(bundle_copy)


def test_save_is_atomic_and_keeps_the_previous_bundle_on_failure(tiny_pipeline, tmp_path, monkeypatch):
    target = tmp_path / "pipeline_v1"
    tiny_pipeline.save(target)
    before = _manifest(target)["bundle_id"]
    model = tiny_pipeline.models["gru_h20"]
    monkeypatch.setattr(type(model), "save", lambda self, folder: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        tiny_pipeline.save(target)
    assert _manifest(target)["bundle_id"] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipeline_v1"]
    verify_bundle(target)


def test_bundle_store_versions_promotion_and_rollback(skilled_pipeline, tmp_path):
    store = BundleStore(tmp_path)
    assert store.next_version() == "pipeline_v1" and store.live_version() is None
    with pytest.raises(BundleError, match="No live bundle"):
        store.live_path()
    skilled_pipeline.save(store.path(store.next_version()))
    skilled_pipeline.save(store.path(store.next_version()))
    assert store.versions() == ["pipeline_v1", "pipeline_v2"]
    store.promote("v2")
    assert store.live_path() == tmp_path / "pipeline_v2"
    store.promote("pipeline_v1")
    assert store.live_version() == "pipeline_v1"
    with pytest.raises(BundleError, match="not of the form vN"):
        store.promote("latest")
    with pytest.raises(BundleIntegrityError, match="manifest.json is missing"):
        store.promote("v7")
    assert store.live_version() == "pipeline_v1"


def test_a_cpu_only_distribution_counts_as_its_library(monkeypatch):
    from importlib import metadata

    from pipeline_core import bundle

    installed = {"xgboost-cpu": "3.2.0", "numpy": "2.0.0"}

    def version(name):
        if name not in installed:
            raise metadata.PackageNotFoundError(name)
        return installed[name]

    monkeypatch.setattr(bundle.metadata, "version", version)
    assert bundle.library_versions() == {"numpy": "2.0.0", "xgboost": "3.2.0"}


def test_a_promotion_killed_between_its_decision_and_live_is_completed_once(skilled_pipeline, tmp_path, capsys):
    """retrain_and_gate records the decision, then moves LIVE: a kill in between is finished
    by `reconcile_live` (the next retraining calls it), and a later rollback is never undone."""
    store = BundleStore(tmp_path)
    for _ in range(2):
        skilled_pipeline.save(store.path(store.next_version()))
    store.promote("v1")
    assert store.interrupted_promotion() is None and store.reconcile_live() is None
    time.sleep(0.01)
    store.record_decision("pipeline_v2", {"candidate": "pipeline_v2", "live_before": "pipeline_v1", "promoted": True})
    # killed here: LIVE still names v1
    assert store.interrupted_promotion() == "pipeline_v2"
    assert main(["bundles", "--root", str(tmp_path), "list"]) == 0
    assert "promotion of pipeline_v2 was recorded" in capsys.readouterr().err
    assert store.reconcile_live() == "pipeline_v2"
    assert store.live_version() == "pipeline_v2" and store.interrupted_promotion() is None
    time.sleep(0.01)
    store.promote("v1")  # a deliberate rollback after the decision
    assert store.interrupted_promotion() is None and store.reconcile_live() is None
    assert store.live_version() == "pipeline_v1"


def test_a_refused_candidate_leaves_live_alone(skilled_pipeline, tmp_path):
    store = BundleStore(tmp_path)
    for _ in range(2):
        skilled_pipeline.save(store.path(store.next_version()))
    store.promote("v1")
    time.sleep(0.01)
    store.record_decision("pipeline_v2", {"candidate": "pipeline_v2", "live_before": "pipeline_v1", "promoted": False})
    assert store.reconcile_live() is None and store.live_version() == "pipeline_v1"
