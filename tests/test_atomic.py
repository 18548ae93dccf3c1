import pytest

from pipeline_core.atomic import atomic_folder, atomic_path, atomic_write_text


def test_atomic_write_text_replaces_an_earlier_file(tmp_path):
    target = tmp_path / "sub" / "pointer"
    atomic_write_text(target, "v1")
    assert atomic_write_text(target, "v2") == target
    assert target.read_text() == "v2"
    assert [p.name for p in target.parent.iterdir()] == ["pointer"]


def test_atomic_path_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "part-0.parquet"
    target.write_text("before")
    with pytest.raises(OSError, match="disk full"):
        with atomic_path(target) as temporary:
            temporary.write_text("half a file")
            raise OSError("disk full")
    assert target.read_text() == "before"
    assert [p.name for p in tmp_path.iterdir()] == ["part-0.parquet"]


def test_atomic_folder_replaces_an_existing_folder(tmp_path):
    final = tmp_path / "stage"
    with atomic_folder(final) as staging:
        (staging / "old.json").write_text("1")
    with atomic_folder(final) as staging:
        (staging / "new.json").write_text("2")
    assert [p.name for p in final.iterdir()] == ["new.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["stage"]


def test_atomic_folder_keeps_the_previous_folder_and_cleans_up_on_failure(tmp_path):
    final = tmp_path / "stage"
    with atomic_folder(final) as staging:
        (staging / "kept.json").write_text("1")
    with pytest.raises(ValueError, match="bad stage"):
        with atomic_folder(final) as staging:
            (staging / "partial.json").write_text("2")
            raise ValueError("bad stage")
    assert [p.name for p in final.iterdir()] == ["kept.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["stage"]


def test_a_failed_write_removes_the_folders_it_created(tmp_path):
    target = tmp_path / "new" / "deeper" / "file.parquet"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_replacing_another_is_swapped_in_without_a_moment_where_it_is_missing(tmp_path, monkeypatch):
    from pipeline_core import atomic

    final = tmp_path / "pipeline_v1"
    final.mkdir()
    (final / "model.json").write_text("old")

    def no_rename(*args):  # the only way `final` could go missing is a rename away from it
        raise AssertionError(f"os.rename{args}: the folder would be missing until the next rename")

    monkeypatch.setattr(atomic.os, "rename", no_rename)
    with atomic.atomic_folder(final) as staging:
        (staging / "model.json").write_text("new")
    assert (final / "model.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipeline_v1"]  # the old folder is gone


def test_stale_temporaries_of_killed_writes_are_swept_by_the_next_write_and_fresh_ones_kept(tmp_path):
    import os
    import time

    import polars as pl

    folder = tmp_path / "horizon=5" / "date=2024-03-07"
    folder.mkdir(parents=True)
    stale = [folder / f".part-0.parquet.{'a' * 32}.tmp", folder / f".pipeline_v2.tmp-{'b' * 32}",
             folder / f".pipeline_v1.old-{'c' * 32}"]
    stale[0].write_bytes(b"half a parquet")
    for staging in stale[1:]:
        staging.mkdir()
        (staging / "model.json").write_text("{}")
    fresh = folder / f".part-1.parquet.{'d' * 32}.tmp"
    fresh.write_bytes(b"a write in progress")
    hours_ago = time.time() - 2 * 3600
    for path in stale:
        os.utime(path, (hours_ago, hours_ago))
    keep = folder / ".notes.tmp"  # not a name this module writes
    keep.write_text("mine")
    os.utime(keep, (hours_ago, hours_ago))

    pl.DataFrame({"horizon": [5]}).write_parquet(tmp_path / "x.parquet")
    with atomic_path(folder / "part-0.parquet") as temporary:
        temporary.write_bytes((tmp_path / "x.parquet").read_bytes())
    assert sorted(p.name for p in folder.iterdir()) == sorted([".notes.tmp", fresh.name, "part-0.parquet"])
