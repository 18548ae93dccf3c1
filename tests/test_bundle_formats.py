"""Every past bundle format version keeps loading and predicting the same.

tests/data/bundles/format_vN/ holds a tiny bundle saved by format version N, and
format_vN_expected.json what it predicted on a fixed market when it was saved.
"""

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from pipeline_core.bundle import FORMAT_VERSION
from pipeline_core.data import MarketSpec, generate_market
from pipeline_core.pipeline import InferencePipeline

BUNDLES = Path(__file__).parent / "data" / "bundles"


@pytest.mark.parametrize("version", range(1, FORMAT_VERSION + 1))
def test_a_saved_bundle_of_each_format_version_loads_and_predicts_the_same(version):
    bundle = BUNDLES / f"format_v{version}"
    expected = json.loads((BUNDLES / f"format_v{version}_expected.json").read_text())
    market = expected["market"]
    probe = generate_market(MarketSpec(**{**market, "start": date.fromisoformat(market["start"])}))
    pipeline = InferencePipeline.load(bundle)
    assert pipeline.manifest.format_version == version
    # Bit for bit on the machine that saved it; another CPU's SIMD paths (numpy's exp and log in the
    # generated market) move the last bit of a few values, so across machines: 1e-12.
    np.testing.assert_allclose(
        pipeline.predict(probe, horizon=20).probabilities, np.array(expected["probabilities"]), rtol=0, atol=1e-12
    )
