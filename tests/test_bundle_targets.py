"""Saving never destroys input or a deployed bundle: where a bundle may be written."""

import shutil

import pytest

from pipeline_core.bundle import LIVE_POINTER, MANIFEST_FILE
from pipeline_core.cli import main
from pipeline_core.errors import BundleError
from pipeline_core.pipeline import InferencePipeline


@pytest.fixture
def store(tiny_bundle, tmp_path):
    """A deployment root with pipeline_v1 (LIVE) and pipeline_v2."""
    root = tmp_path / "deployment"
    for version in ("pipeline_v1", "pipeline_v2"):
        shutil.copytree(tiny_bundle, root / version)
    (root / LIVE_POINTER).write_text("pipeline_v1\n")
    return root


def _train(data, out, *extra) -> int:
    return main(["train", "--data", str(data), "--profile", "low-latency", "--out", str(out), "--allow-no-skill", *extra])


@pytest.mark.parametrize(("target", "message"), [
    ("important.csv", "is a file: a bundle is a folder"),
    ("notes", "is a folder that holds no bundle: refusing to replace it"),
    ("pipeline_v2", "already holds a bundle: pass --overwrite"),
    ("pipeline_v1", "is the live bundle (LIVE): it is never overwritten"),
])
def test_train_refuses_an_output_it_would_destroy_before_training(store, tiny_market, tmp_path, capsys, target, message):
    (store / "important.csv").write_text("a,b\n1,2\n")
    (store / "notes").mkdir()
    (store / "notes" / "todo.txt").write_text("keep me")
    data = tmp_path / "bars.parquet"
    tiny_market.write_parquet(data)
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    assert _train(data, store / target, *(["--overwrite"] if target == "pipeline_v1" else [])) == 2
    assert message in capsys.readouterr().err
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before  # nothing touched
    assert not [p for p in store.iterdir() if p.name.startswith(".")]


def test_overwrite_replaces_a_bundle_that_is_not_live(store, tiny_market, tmp_path):
    data = tmp_path / "bars.parquet"
    tiny_market.write_parquet(data)
    old_id = InferencePipeline.load(store / "pipeline_v2").manifest.bundle_id
    assert _train(data, store / "pipeline_v2", "--overwrite") == 0
    assert InferencePipeline.load(store / "pipeline_v2").manifest.bundle_id != old_id
    assert (store / LIVE_POINTER).read_text().strip() == "pipeline_v1"


def test_the_library_never_saves_over_the_live_bundle(store):
    pipeline = InferencePipeline.load(store / "pipeline_v2")
    manifest = (store / "pipeline_v1" / MANIFEST_FILE).read_bytes()
    with pytest.raises(BundleError, match="is the live bundle"):
        pipeline.save(store / "pipeline_v1")
    assert (store / "pipeline_v1" / MANIFEST_FILE).read_bytes() == manifest
    pipeline.save(store / "pipeline_v3")  # a new version is fine
    assert InferencePipeline.load(store / "pipeline_v3").manifest.pipeline_version == "pipeline_v3"


@pytest.mark.parametrize(("errno", "reason"), [(13, "Permission denied"), (28, "No space left on device")])
def test_a_refused_write_is_one_error_line_with_its_own_exit_code_and_changes_nothing(store, monkeypatch, capsys, errno, reason):
    from pipeline_core import atomic

    def refuse(path, mode=0o777, *args, **kwargs):  # root ignores chmod: the system's refusal, simulated
        raise OSError(errno, reason, str(path))

    live = (store / LIVE_POINTER).read_text()
    monkeypatch.setattr(atomic.Path, "write_text", lambda self, *a, **k: refuse(self))
    assert main(["bundles", "--root", str(store), "promote", "v2", "--force", "--reason", "test"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot write or read") and reason in err[0]
    assert (store / LIVE_POINTER).read_text() == live
    monkeypatch.undo()
    with pytest.raises(OSError):
        monkeypatch.setattr(atomic.Path, "write_text", lambda self, *a, **k: refuse(self))
        main(["--debug", "bundles", "--root", str(store), "promote", "v2", "--force", "--reason", "test"])
