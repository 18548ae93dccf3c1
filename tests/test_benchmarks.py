"""Smoke test of the benchmark harness (benchmarks/) on very small sizes: every section
runs and reports; the figures themselves are not checked."""

from __future__ import annotations

import json

import pytest

from benchmarks import report, run


def test_benchmark_run_reports_every_section_on_a_tiny_bundle(tiny_bundle, tmp_path, capsys):
    output = tmp_path / "bench.json"
    run.main([
        "--bundle", str(tiny_bundle), "--rows", "2400", "--symbols", "3", "--memory-rows", "2400",
        "--repeats", "1", "--latency-repeats", "3", "--new-bars", "20", "--chunk-rows", "1000", "--check-days", "2",
        "--omp-wait-policy", "inherit", "--results-dir", str(tmp_path), "--json", str(output),
    ])

    saved = json.loads(output.read_text())
    result = saved["profiles"][tiny_bundle.name]
    assert result["batch"]["input_rows"] == 2400
    assert result["batch"]["scored_rows"] == result["raw"]["scored_rows"] > 0
    assert set(result["raw"]["seconds_per_model"]) == {"xgboost_h10", "lightgbm_h10", "gru_h10",
                                                       "xgboost_h20", "lightgbm_h20", "gru_h20"}
    assert result["latency"]["scored_bars"] == 20
    assert result["latency"]["predict"]["n"] == 3
    assert set(result["memory"]["runs"]) == {"2400"}
    run_2400 = result["memory"]["runs"]["2400"]
    assert run_2400["peak_mib"] >= run_2400["bundle_mib"] >= run_2400["imports_mib"] > 0
    assert "write parquet" in result["stages"]["stages"]
    assert len(result["overhead"]["pair_ratios"]) == 1
    assert result["headline"]["overhead_ratio"] > 0
    checks = result["checks"]
    assert checks["partitions"] == 4 and checks["scoring_seconds"] > 0  # 2 dates x horizons 10, 20
    assert set(checks["check_seconds"]) == {"no_lookahead", "parity", "throughput"}
    assert all(seconds > 0 for seconds in checks["check_seconds"].values())
    assert sum(checks["check_seconds"].values()) == pytest.approx(checks["checks_seconds"], abs=0.01)
    assert result["headline"]["checks_ratio"] == checks["checks_over_scoring"] > 0
    assert all(saved["imports"][name]["median_s"] > 0 for name in ("import pipeline_core.pipeline", "inference-pipeline --help"))
    assert len(saved["load_average"]["start"]) == 3
    assert not (tmp_path / "scratch" / f"{tiny_bundle.name}.predictions.parquet").exists()
    assert "e2e/raw" in capsys.readouterr().out


def test_benchmark_targets_report_misses_and_factors():
    figures = {"batch_rows_per_sec": 50_000.0, "predict_median_ms": 4.0, "overhead_ratio": 1.3, "memory_ratio": 2.0}

    checks = {c["target"]: c for c in report.check_targets({"low-latency": {"headline": figures}})}

    assert checks["batch >= 100,000 rows/s"]["met"] is False
    assert checks["batch >= 100,000 rows/s"]["factor"] == 0.5
    assert checks["100-bar predict median < 5 ms"]["met"] is True
    assert checks["end-to-end <= 1.3 x raw models"]["met"] is True
    assert checks["peak RSS 4M rows < 1.5 x 1M rows"]["met"] is False
    assert not any(c["profile"] != "low-latency" or "(aim)" in c["target"] for c in checks.values())
