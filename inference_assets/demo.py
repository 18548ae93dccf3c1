"""The main job on the embedded default: generate the synthetic market if it is absent."""

from __future__ import annotations

from pathlib import Path

from pipeline_core.data import MarketSpec, generate_market, list_partition_dates, write_daily_partitions

DATA_ROOT = Path("data/ohlcv")


def main() -> None:
    if list_partition_dates(DATA_ROOT):
        print(f"synthetic market already present under {DATA_ROOT}/")
    else:
        bars = generate_market(MarketSpec())
        write_daily_partitions(bars, DATA_ROOT)
        print(f"wrote {bars.height:,} bars to {DATA_ROOT}/date=YYYY-MM-DD/")


if __name__ == "__main__":
    main()
