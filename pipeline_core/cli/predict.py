"""`inference-pipeline predict`: score a file with a bundle, with a progress bar."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline_core.cli.help import HelpFormatter, positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="score OHLCV bars (a parquet/CSV file or a date-partitioned folder) into a predictions parquet file",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--bundle", required=True, help="bundle folder (deployment/bundles/pipeline_vN)")
    parser.add_argument(
        "--input", required=True,
        help="parquet, CSV or .csv.gz file time-ordered per symbol, or a folder of date=YYYY-MM-DD partitions",
    )
    parser.add_argument("--horizon", type=int, nargs="+", help="horizons to score (bars ahead; default: every trained one)")
    parser.add_argument("--output", required=True, help="predictions parquet file to write")
    parser.add_argument("--chunk-rows", type=positive_int, default=250_000, help="input rows scored at a time")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pipeline_core.batch import BatchInference
    from pipeline_core.pipeline import InferencePipeline

    pipeline = InferencePipeline.load(args.bundle)
    batch = BatchInference(pipeline, batch_size=pipeline.config.batch_size, chunk_rows=args.chunk_rows)
    path = Path(args.input)
    total = _parquet_rows(path)
    with tqdm(total=total, unit="bar", unit_scale=True, desc="scoring") as bar:
        result = batch.process_file(path, horizon=args.horizon, output_path=args.output, progress=bar.update)
    print(
        f"scored {result.n_rows:,} rows ({result.n_unscored:,} without enough history) in "
        f"{result.total_time:.2f}s: {result.rows_per_sec:,.0f} rows/s; {result.n_samples:,} predictions "
        f"(rows x horizons, {result.horizon_rows_per_sec:,.0f}/s) -> {args.output}"
    )
    return 0


def _parquet_rows(path: Path) -> int | None:
    """Rows of a parquet file, for the progress bar; None for other inputs or an unreadable file
    (the reader then names the problem)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not (path.is_file() and path.suffix.lower() == ".parquet"):
        return None
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except pa.ArrowInvalid:
        return None
