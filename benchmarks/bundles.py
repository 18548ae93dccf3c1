"""Bundles to benchmark: reuse a saved one per profile, or train it on generated data.

Full bundles use the production `TrainOptions()`; `--quick` ones use few boosting
rounds and epochs (fast to build, but fewer trees than production, so tree-model
inference is faster than it would be). Either way `model_sizes` reads the sizes off the
loaded models, so the report says what was actually benchmarked.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Any

from pipeline_core.data import MarketSpec, generate_market
from pipeline_core.pipeline import InferencePipeline
from pipeline_core.profiles import profile_config
from pipeline_core.training import TrainOptions, train_pipeline

# Training data: the spec's 60 days x 8 symbols; quick bundles train on less.
FULL_MARKET = MarketSpec(start=date(2024, 1, 1), days=60, symbols=8, seed=7)
QUICK_MARKET = MarketSpec(start=date(2024, 1, 1), days=20, symbols=4, seed=7)
QUICK_MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 40},
    "lightgbm": {"n_estimators": 40},
    "catboost": {"n_estimators": 40},
    "lstm": {"max_epochs": 2, "max_train_sequences": 4000, "max_val_sequences": 2000},
    "gru": {"max_epochs": 2, "max_train_sequences": 4000, "max_val_sequences": 2000},
}


def bundle_path(root: Path, profile: str, quick: bool) -> Path:
    """`<root>/<profile>/full` or `<root>/<profile>/quick` (the folder name is the version)."""
    return Path(root) / profile / ("quick" if quick else "full")


def ensure_bundle(root: Path, profile: str, quick: bool, log=print) -> tuple[InferencePipeline, dict[str, Any]]:
    """Load the profile's bundle, training and saving it first if it is not there."""
    path = bundle_path(root, profile, quick)
    info: dict[str, Any] = {"path": str(path), "quick": quick, "trained_now": False}
    if not (path / "manifest.json").is_file():
        market, options = (QUICK_MARKET, TrainOptions(model_params=QUICK_MODEL_PARAMS, max_sequence_samples=4000)) \
            if quick else (FULL_MARKET, TrainOptions())
        log(f"[bundle] training {profile} ({'quick' if quick else 'full'}) on "
            f"{market.days} days x {market.symbols} symbols -> {path}")
        started = time.perf_counter()
        pipeline = train_pipeline(generate_market(market), profile_config(profile), options,
                                  progress=lambda step: log(f"[bundle]   {profile}: {step}"))
        path.parent.mkdir(parents=True, exist_ok=True)
        pipeline.save(path)
        info.update(trained_now=True, train_seconds=round(time.perf_counter() - started, 1))
        log(f"[bundle] {profile} trained in {info['train_seconds']} s")
    pipeline = InferencePipeline.load(path)
    info["models"] = model_sizes(pipeline)
    info["required_lookback"] = pipeline.required_lookback
    return pipeline, info


def model_sizes(pipeline: InferencePipeline) -> dict[str, dict[str, Any]]:
    """What drives each model's inference cost: trees and depth, or hidden size and parameters."""
    return {key: _size(model) for key, model in sorted(pipeline.models.items())}


def _size(model) -> dict[str, Any]:
    native, params = model.native, model.params
    if model.family == "xgboost":
        rounds = int(native.num_boosted_rounds())
        return {"family": "xgboost", "rounds": rounds, "trees": rounds * 3, "max_depth": params["max_depth"]}
    if model.family == "lightgbm":
        return {"family": "lightgbm", "rounds": int(native.current_iteration()), "trees": int(native.num_trees()),
                "num_leaves": params["num_leaves"]}
    if model.family == "catboost":
        return {"family": "catboost", "rounds": int(native.tree_count_), "depth": params["depth"]}
    architecture = model.state_["architecture"]
    return {
        "family": model.family,
        "parameters": int(sum(p.numel() for p in native.parameters())),
        "sequence_length": model.sequence_length_,
        **{k: v for k, v in architecture.items() if k in ("hidden_size", "num_layers", "channels", "chunk_size")},
    }


def describe_sizes(sizes: dict[str, dict[str, Any]]) -> str:
    """One line, e.g. "xgboost_h20 58 rounds d6; lstm_h20 h32 x1 (8.6k params)"."""
    parts = []
    for key, size in sizes.items():
        family = size["family"]
        if family == "xgboost":
            parts.append(f"{key} {size['rounds']} rounds d{size['max_depth']}")
        elif family == "lightgbm":
            parts.append(f"{key} {size['rounds']} rounds {size['num_leaves']} leaves")
        elif family == "catboost":
            parts.append(f"{key} {size['rounds']} trees d{size['depth']}")
        else:
            parts.append(f"{key} hidden {size.get('hidden_size', size.get('channels'))} x{size.get('num_layers', 1)} "
                         f"({size['parameters'] / 1000:.1f}k params, seq {size['sequence_length']})")
    return "; ".join(parts)
