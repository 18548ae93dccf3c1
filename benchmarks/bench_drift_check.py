"""Latency of OnlineDriftMonitor.check: a 10,000-row batch, 50 features, 100,000-row reference.

Run: python benchmarks/bench_drift_check.py [--rows 10000] [--features 50] [--reference 100000]
Prints the one-off cost of building the reference statistics and the median / p90 of
`check` over repeated calls (features only; with predictions, confidences and actuals;
features with symbol groups; features with serial_correlation off, the i.i.d. baseline).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pipeline_core.monitoring import DriftConfig, OnlineDriftMonitor, ReferenceStats


def _timings(func, repeats: int) -> np.ndarray:
    func()  # warm-up (imports, caches)
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        out.append(time.perf_counter() - start)
    return np.array(out) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--reference", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--symbols", type=int, default=8, help="groups of the grouped case")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    names = [f"feature_{j}" for j in range(args.features)]
    reference = rng.standard_t(5, size=(args.reference, args.features))
    ref_pred = rng.integers(-1, 2, size=args.reference)
    ref_conf = rng.uniform(0.34, 1.0, size=args.reference)

    start = time.perf_counter()
    stats = ReferenceStats.from_data(
        reference, names, predictions=ref_pred, confidences=ref_conf, accuracy=0.5, log_loss=1.0
    )
    build_ms = (time.perf_counter() - start) * 1000.0
    monitor = OnlineDriftMonitor.from_reference(stats, DriftConfig())
    independent = OnlineDriftMonitor.from_reference(stats, DriftConfig(serial_correlation=False))
    print(f"reference stats: {args.reference} rows x {args.features} features built in {build_ms:.0f} ms, "
          f"JSON {len(monitor.to_json()) / 1e6:.2f} MB")

    batch = rng.standard_t(5, size=(args.rows, args.features))
    batch[:, 0] += 0.3
    pred = rng.integers(-1, 2, size=args.rows)
    conf = rng.uniform(0.34, 1.0, size=args.rows)
    actual = rng.integers(-1, 2, size=args.rows)
    symbols = np.repeat([f"SYM{k}" for k in range(args.symbols)], -(-args.rows // args.symbols))[: args.rows]
    cases = {
        "features only": lambda: monitor.check(batch),
        "features + predictions + confidences + actuals": lambda: monitor.check(
            batch, predictions=pred, actuals=actual, confidences=conf
        ),
        f"features, {args.symbols} symbol groups": lambda: monitor.check(batch, groups=symbols),
        "features, serial_correlation off": lambda: independent.check(batch),
    }
    for label, func in cases.items():
        ms = _timings(func, args.repeats)
        print(f"check ({args.rows} x {args.features}, {label}): median {np.median(ms):.1f} ms, "
              f"p90 {np.percentile(ms, 90):.1f} ms, min {ms.min():.1f} ms over {args.repeats} calls")


if __name__ == "__main__":
    main()
