"""Imports cost what is used: the pipeline module and the CLI's help load no model library."""

import subprocess
import sys

HEAVY = ("torch", "xgboost", "lightgbm", "catboost", "sklearn")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    last = out.strip().splitlines()[-1:] or [""]
    return [m for m in last[0].split(",") if m]


def test_importing_the_pipeline_loads_no_model_library():
    assert _loaded_after("import pipeline_core.pipeline") == []


def test_cli_help_loads_no_model_library():
    code = "from pipeline_core.cli import build_parser\nbuild_parser().format_help()"
    assert _loaded_after(code) == []


def test_loading_a_bundle_imports_only_the_families_it_names(tiny_bundle):
    code = f"from pipeline_core.pipeline import InferencePipeline\nInferencePipeline.load({str(tiny_bundle)!r})"
    loaded = _loaded_after(code)
    assert "catboost" not in loaded and {"xgboost", "lightgbm", "torch"} <= set(loaded)  # tiny bundle: xgb, lgbm, gru
