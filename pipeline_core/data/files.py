"""OHLCV files, read one way for every entry point (`validate_ohlcv`, so `train`, `evaluate`,
`audit` and `drift`; `BatchInference`, so `predict`): a file reads, and fails, alike everywhere.

The suffix names the format: `.parquet`, or CSV as `.csv`, `.txt` or `.csv.gz`. Batches
stream: parquet through pyarrow's batch reader, CSV through polars' batched scan with the
column types inferred from the first CSV_INFER_ROWS rows. Text in a number column within
those rows makes the column text, which the contract names; later, the parse error names
the column and the value.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_core.errors import DataValidationError

CSV_SUFFIXES = (".csv", ".txt", ".csv.gz")
CSV_INFER_ROWS = 10_000  # inferring from every row costs a minute per 300 MB of CSV
GZIP_MAGIC = b"\x1f\x8b"


def file_batches(path: str | Path, rows: int) -> Iterator[pl.DataFrame]:
    """The columns of an OHLCV file as read (not yet validated), `rows` at a time, in file
    order. DataValidationError naming the file if it is missing, of an unknown type, gzip
    bytes under a `.csv` name, empty, or unreadable."""
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise DataValidationError(f"Input file {path} does not exist." if not path.exists() else f"Input {path} is not a file.")
    if not name.endswith((".parquet", *CSV_SUFFIXES)):
        raise DataValidationError(
            f"Input file {path.name} has an unknown type: expected .parquet, .csv, .csv.gz or a folder of "
            "date=YYYY-MM-DD partitions."
        )
    if not name.endswith(".gz") and _starts_with(path, GZIP_MAGIC):
        raise DataValidationError(f"Input file {path} is gzip-compressed: name it {path.name}.gz.")
    empty = True
    try:
        for batch in _parquet(path, rows) if name.endswith(".parquet") else _csv(path, rows):
            if batch.height:
                empty = False
                yield batch
    except pl.exceptions.NoDataError as err:
        raise DataValidationError(f"Input file {path} is empty: expected a header and rows.") from err
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, pa.ArrowException) as err:
        # A corrupted file can make polars' reader panic (a BaseException), not only raise.
        reason = str(err).strip().splitlines()[0][:200]
        raise DataValidationError(f"Input file {path} cannot be read ({reason}): is it a valid {path.suffix} file?") from err
    if empty:
        raise DataValidationError(f"Input file {path} has no rows.")


def _parquet(path: Path, rows: int) -> Iterator[pl.DataFrame]:
    with path.open("rb") as handle:  # by Python: a system error (permissions) is an OSError with an errno
        try:
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=rows):
                yield pl.from_arrow(pa.Table.from_batches([batch]))
        except OSError as err:
            if err.errno is not None:
                raise
            raise pa.ArrowInvalid(str(err)) from err  # pyarrow's decoding errors are OSErrors without one


def _csv(path: Path, rows: int) -> Iterator[pl.DataFrame]:
    schema = pl.scan_csv(path, try_parse_dates=True, infer_schema_length=CSV_INFER_ROWS).collect_schema()
    yield from pl.scan_csv(path, try_parse_dates=True, schema=schema).collect_batches(chunk_size=rows)


def _starts_with(path: Path, magic: bytes) -> bool:
    with path.open("rb") as file:
        return file.read(len(magic)) == magic
