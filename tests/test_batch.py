from datetime import date

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from pipeline_core.batch import DICTIONARY_COLUMNS, BatchInference
from pipeline_core.data import list_partition_dates, write_daily_partitions
from pipeline_core.errors import DataValidationError

OUTPUT_COLUMNS = [
    "timestamp", "symbol", "horizon", "prediction", "prob_down", "prob_flat", "prob_up", "confidence", "bundle_version",
]


def _keyed(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("horizon", "symbol", "timestamp")


def test_process_file_in_many_chunks_equals_one_predict(tiny_pipeline, tiny_market, tmp_path):
    # Time-ordered file (symbols interleaved), as market data usually comes.
    source = tmp_path / "bars.parquet"
    tiny_market.sort("timestamp", "symbol").write_parquet(source)
    batch = BatchInference(tiny_pipeline, batch_size=256, chunk_rows=700)
    result = batch.process_file(source, horizon=[10, 20], output_path=tmp_path / "out" / "predictions.parquet")
    written = pl.read_parquet(result.output_paths[0])
    assert written.columns == OUTPUT_COLUMNS
    whole = tiny_pipeline.predict(tiny_market, horizon=None)
    expected = pl.concat([whole[10].to_frame(), whole[20].to_frame()])
    assert result.n_samples == expected.height  # predictions: rows x horizons
    assert result.n_rows == whole[20].n_samples  # input rows, each once
    assert result.rows_per_sec == pytest.approx(result.horizon_rows_per_sec / 2)
    assert result.n_unscored == 3 * tiny_pipeline.required_lookback
    got, want = _keyed(written), _keyed(expected)
    assert got.select("timestamp", "symbol", "horizon").equals(want.select("timestamp", "symbol", "horizon"))
    np.testing.assert_allclose(
        got.select("prob_down", "prob_flat", "prob_up").to_numpy(),
        want.select("prob_down", "prob_flat", "prob_up").to_numpy(),
        atol=1e-9,
    )
    assert (got["prediction"] == want["prediction"]).mean() > 0.999
    assert result.rows_per_sec > 0 and result.avg_latency_ms > 0
    assert sum(result.class_balance.values()) == pytest.approx(1.0)
    # Dictionaries only where values repeat: on the probabilities one doubled the write time.
    columns = pq.ParquetFile(result.output_paths[0]).metadata.row_group(0)
    dictionary = {columns.column(i).path_in_schema: columns.column(i).has_dictionary_page for i in range(columns.num_columns)}
    assert dictionary == {column: column in DICTIONARY_COLUMNS for column in OUTPUT_COLUMNS}


def test_process_file_reads_csv(tiny_pipeline, tiny_market, tmp_path):
    source = tmp_path / "bars.csv"
    tiny_market.head(800).write_csv(source)
    result = BatchInference(tiny_pipeline).process_file(source, horizon=20, output_path=tmp_path / "p.parquet")
    assert result.n_samples == 800 - tiny_pipeline.required_lookback


def test_process_file_refuses_out_of_order_chunks_and_leaves_no_output(tiny_pipeline, tiny_market, tmp_path):
    source = tmp_path / "bars.parquet"
    syn01 = tiny_market.filter(pl.col("symbol") == "SYN01")
    pl.concat([syn01.tail(1000), syn01.head(1000)]).write_parquet(source)
    output = tmp_path / "p.parquet"
    with pytest.raises(DataValidationError, match="not in time order for symbol 'SYN01'"):
        BatchInference(tiny_pipeline, chunk_rows=1000).process_file(source, horizon=20, output_path=output)
    assert list(tmp_path.iterdir()) == [source]


def test_process_file_without_enough_history_fails_clearly(tiny_pipeline, tiny_market, tmp_path):
    source = tmp_path / "bars.parquet"
    tiny_market.head(10).write_parquet(source)
    with pytest.raises(DataValidationError, match="No bar .* has enough history"):
        BatchInference(tiny_pipeline).process_file(source, horizon=20, output_path=tmp_path / "p.parquet")
    assert list(tmp_path.iterdir()) == [source]


def test_process_dataset_writes_one_partition_per_date_and_horizon(tiny_pipeline, tiny_market, tmp_path):
    write_daily_partitions(tiny_market, tmp_path / "raw")
    batch = BatchInference(tiny_pipeline)
    result = batch.process_dataset(
        tmp_path / "raw", tmp_path / "predictions", horizon=[10, 20], start=date(2024, 3, 3), end=date(2024, 3, 4)
    )
    assert list_partition_dates(tmp_path / "predictions", horizon=10) == [date(2024, 3, 3), date(2024, 3, 4)]
    day = pl.read_parquet(tmp_path / "predictions" / "horizon=20" / "date=2024-03-04" / "part-0.parquet")
    assert day.height == 3 * 390  # every bar of the day, its lookback read from earlier dates
    full = tiny_pipeline.predict(tiny_market, horizon=20).to_frame().filter(pl.col("timestamp").dt.date() == date(2024, 3, 4))
    np.testing.assert_allclose(day.sort("symbol", "timestamp")["prob_up"].to_numpy(), full.sort("symbol", "timestamp")["prob_up"].to_numpy(), atol=1e-9)
    assert result.n_samples == 4 * 3 * 390
    assert result.n_rows == 2 * 3 * 390


def test_process_file_scores_a_partitioned_folder_like_the_whole_file(tiny_pipeline, tiny_market, tmp_path):
    write_daily_partitions(tiny_market, tmp_path / "ohlcv")
    folder = BatchInference(tiny_pipeline).process_file(tmp_path / "ohlcv", horizon=20, output_path=tmp_path / "f.parquet")
    tiny_market.write_parquet(tmp_path / "bars.parquet")
    whole = BatchInference(tiny_pipeline).process_file(tmp_path / "bars.parquet", horizon=20, output_path=tmp_path / "w.parquet")
    assert folder.n_samples == whole.n_samples
    a, b = _keyed(pl.read_parquet(tmp_path / "f.parquet")), _keyed(pl.read_parquet(tmp_path / "w.parquet"))
    assert a["timestamp"].equals(b["timestamp"])
    np.testing.assert_allclose(a["prob_up"].to_numpy(), b["prob_up"].to_numpy(), atol=1e-9)


def test_process_file_reads_gzipped_csv_and_never_overwrites_its_input(tiny_pipeline, tiny_market, tmp_path):
    import gzip

    source = tmp_path / "bars.csv.gz"
    source.write_bytes(gzip.compress(tiny_market.head(800).write_csv().encode()))
    result = BatchInference(tiny_pipeline).process_file(source, horizon=20, output_path=tmp_path / "p.parquet")
    assert result.n_samples == 800 - tiny_pipeline.required_lookback
    before = source.read_bytes()
    with pytest.raises(DataValidationError, match="is the input"):
        BatchInference(tiny_pipeline).process_file(source, horizon=20, output_path=source)
    with pytest.raises(DataValidationError, match="must be a .parquet file"):
        BatchInference(tiny_pipeline).process_file(source, horizon=20, output_path=tmp_path / "p.csv")
    assert source.read_bytes() == before and not (tmp_path / "p.csv").exists()
