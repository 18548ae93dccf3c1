from datetime import date

import polars as pl
import pytest

from pipeline_core.data import (
    list_partition_dates,
    partition_dir,
    read_bars,
    write_daily_partitions,
    write_partition,
)
from pipeline_core.errors import DataValidationError


@pytest.fixture
def dataset(tmp_path, small_market):
    root = tmp_path / "ohlcv"
    write_daily_partitions(small_market, root)
    return root


def test_write_daily_partitions_writes_one_folder_per_date(dataset, small_market):
    assert list_partition_dates(dataset) == [date(2024, 3, d) for d in range(1, 5)]
    assert [p.name for p in partition_dir(dataset, date(2024, 3, 2)).iterdir()] == ["part-0.parquet"]


def test_read_bars_reads_the_range_plus_lookback_across_date_boundaries(dataset, small_market):
    # 120 bars a day: a lookback of 150 bars needs the whole of Mar 2 and 30 bars of Mar 1.
    bars = read_bars(dataset, date(2024, 3, 3), date(2024, 3, 4), lookback_bars=150)
    for symbol, part in bars.group_by("symbol"):
        full = small_market.filter(pl.col("symbol") == symbol[0])
        expected = full.slice(2 * 120 - 150, 150 + 2 * 120)
        assert part.equals(expected)


def test_read_bars_returns_what_history_exists_when_lookback_reaches_past_the_start(dataset):
    bars = read_bars(dataset, date(2024, 3, 2), lookback_bars=1000)
    assert bars.height == 3 * 2 * 120


def test_read_bars_fails_clearly_on_a_missing_date(dataset):
    with pytest.raises(DataValidationError, match=r"No raw bars for 1 requested date\(s\): 2024-03-09"):
        read_bars(dataset, date(2024, 3, 9))


def test_write_partition_replaces_an_earlier_write_atomically(tmp_path, small_market):
    first = small_market.head(10)
    second = small_market.tail(5)
    write_partition(first, tmp_path, date(2024, 3, 1), horizon=20)
    folder = partition_dir(tmp_path, date(2024, 3, 1), horizon=20)
    (folder / "part-stale.parquet").write_bytes(b"left over by another writer")
    path = write_partition(second, tmp_path, date(2024, 3, 1), horizon=20)
    assert path == tmp_path / "horizon=20" / "date=2024-03-01" / "part-0.parquet"
    assert sorted(p.name for p in folder.iterdir()) == ["part-0.parquet"]
    assert pl.read_parquet(path).equals(second)


def test_write_partition_leaves_nothing_behind_when_the_write_fails(tmp_path, monkeypatch, small_market):
    write_partition(small_market.head(3), tmp_path, date(2024, 3, 1))

    def broken_write(self, path, *args, **kwargs):
        open(path, "wb").write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", broken_write)
    with pytest.raises(OSError, match="disk full"):
        write_partition(small_market, tmp_path, date(2024, 3, 1))
    folder = partition_dir(tmp_path, date(2024, 3, 1))
    assert [p.name for p in folder.iterdir()] == ["part-0.parquet"]
    monkeypatch.undo()
    assert pl.read_parquet(folder / "part-0.parquet").equals(small_market.head(3))


def test_scoring_a_date_validates_each_bar_once_where_it_is_read(dataset, tiny_pipeline, tmp_path, monkeypatch):
    from pipeline_core.batch import score_date
    from pipeline_core.data import schema

    checked = []
    original = schema._validated
    monkeypatch.setattr(schema, "_validated", lambda frame, *a: checked.append(frame.height) or original(frame, *a))
    list(score_date(tiny_pipeline, dataset, tmp_path / "predictions", date(2024, 3, 3), [20]))
    day = 3 * 120  # 3 symbols x 120 bars: the scored date, then the earlier dates its lookback reads
    assert checked[0] == day and sum(checked) == day * len(checked)


def test_a_bar_in_two_date_folders_is_refused(dataset, small_market):
    stray = small_market.filter(pl.col("timestamp").dt.date() == date(2024, 3, 2)).tail(1)  # in the lookback
    write_partition(pl.concat([stray, small_market.filter(pl.col("timestamp").dt.date() == date(2024, 3, 3))]),
                    dataset, date(2024, 3, 3))
    with pytest.raises(DataValidationError, match=r"Bar SYN\d+ .* is in two date folders"):
        read_bars(dataset, date(2024, 3, 3), lookback_bars=10)


def test_a_truncated_raw_file_is_named_by_date_and_path_before_anything_is_read(dataset):
    from pipeline_core.data import require_dates

    broken = partition_dir(dataset, date(2024, 3, 3)) / "part-0.parquet"
    broken.write_bytes(broken.read_bytes()[:500])
    with pytest.raises(DataValidationError, match=rf"raw bars of 2024-03-03 are not readable parquet: {broken}"):
        require_dates(dataset, [date(2024, 3, 2), date(2024, 3, 3)])
    with pytest.raises(DataValidationError, match="2024-03-03"):
        read_bars(dataset, date(2024, 3, 3))


def test_concurrent_writes_of_one_partition_by_two_bundles_never_mix_versions_in_a_file(dataset, tiny_pipeline, tmp_path):
    """Two runs scoring the same (date, horizon) at once, with different bundles (LIVE moved
    between them): whichever rename lands last wins, and the file is one bundle's, whole."""
    from concurrent.futures import ThreadPoolExecutor

    from pipeline_core.batch import score_date
    from pipeline_core.pipeline import InferencePipeline

    other = tmp_path / "pipeline_v2"
    tiny_pipeline.save(other)
    pipelines = [tiny_pipeline, InferencePipeline.load(other)]
    out = tmp_path / "predictions"
    day = date(2024, 3, 4)
    for _ in range(2):
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda p: list(score_date(p, dataset, out, day, [20])), pipelines))
        frame = pl.read_parquet(partition_dir(out, day, 20) / "part-0.parquet")
        assert frame["bundle_version"].n_unique() == 1 and frame.height == 3 * 120
        assert [p.name for p in partition_dir(out, day, 20).iterdir()] == ["part-0.parquet"]
