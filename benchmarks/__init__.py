"""Throughput, latency and memory benchmarks of pipeline_core (run: `make bench`).

Figures, not tests: `python -m benchmarks.run --help`. Results and the bundles it
trains live under `benchmarks/results/` (git-ignored).
"""
