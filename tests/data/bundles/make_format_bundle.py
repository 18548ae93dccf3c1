"""Save the tiny bundle of the current format version, and what it predicts, as test data.

Run from the repository root after bumping `pipeline_core.bundle.FORMAT_VERSION`
(the procedure is at the top of pipeline_core/bundle.py):

    python tests/data/bundles/make_format_bundle.py

It writes tests/data/bundles/format_vN/ and format_vN_expected.json; never rerun it for an
older version, whose files must stay as they were saved.
"""

from __future__ import annotations

import json
import warnings
from datetime import date
from pathlib import Path

from pipeline_core.bundle import FORMAT_VERSION
from pipeline_core.data import MarketSpec, generate_market
from pipeline_core.pipeline import InferenceConfig
from pipeline_core.training import TrainOptions, train_pipeline

HERE = Path(__file__).parent
TRAIN = MarketSpec(start=date(2024, 3, 1), days=6, symbols=2, bars_per_day=390, seed=31)
PROBE = {"start": "2024-04-01", "days": 1, "symbols": 2, "bars_per_day": 120, "seed": 32}


def main() -> None:
    target = HERE / f"format_v{FORMAT_VERSION}"
    if target.exists():
        raise SystemExit(f"{target} exists: a saved format version is never rewritten.")
    boosting = {"n_estimators": 10, "max_depth": 3, "n_jobs": 1}
    config = InferenceConfig(model_names=["xgboost", "lightgbm"], horizons=[20], ensemble_method="stacking")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline = train_pipeline(
            generate_market(TRAIN), config,
            TrainOptions(model_params={"xgboost": boosting, "lightgbm": {"n_estimators": 10, "n_jobs": 1}}),
        )
    pipeline.save(target)
    probe = generate_market(MarketSpec(**{**PROBE, "start": date.fromisoformat(PROBE["start"])}))
    probabilities = pipeline.predict(probe, horizon=20).probabilities
    expected = {"market": PROBE, "probabilities": probabilities.tolist()}
    (HERE / f"format_v{FORMAT_VERSION}_expected.json").write_text(json.dumps(expected))
    print(f"saved {target} ({len(probabilities)} expected rows)")


if __name__ == "__main__":
    main()
