"""Test-window evaluation: every model raw and calibrated, the ensemble, and the class prior."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss

from pipeline_core.calibration import expected_calibration_error
from pipeline_core.pipeline import model_key

LABELS = [0, 1, 2]


def classification_metrics(probabilities: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy, log-loss, macro-F1 and top-label ECE of (n, 3) probabilities against class indices."""
    # Torch models compute in float32: renormalise so sklearn sees rows summing to 1 in float64.
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    predicted = probabilities.argmax(axis=1)
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "log_loss": float(log_loss(y, probabilities, labels=LABELS)),
        "macro_f1": float(f1_score(y, predicted, labels=LABELS, average="macro", zero_division=0)),
        "ece": float(expected_calibration_error(probabilities, y)),
    }


def evaluate_pipeline(data, inputs, pipeline) -> dict[str, Any]:
    """{"table": one row per (horizon, model, stage), "summary": the headline per horizon}."""
    table, summary = [], {}
    for horizon, split in data.splits.items():
        y = split.y[split.test]
        prior = np.bincount(split.y[split.train], minlength=3) / len(split.train)
        rows = [_row(horizon, "class prior", "baseline", np.tile(prior, (len(y), 1)), y)]
        raw = pipeline.base_model_probabilities(inputs, horizon, split.test)
        for name, probs in raw.items():
            rows.append(_row(horizon, name, "raw", probs, y))
            if pipeline.config.use_calibration:
                calibrated = pipeline._calibrators[model_key(name, horizon)].transform(probs)
                rows.append(_row(horizon, name, "calibrated", calibrated, y))
        final = pipeline.score_inputs(inputs, horizon, split.test).probabilities
        headline = _headline_name(pipeline.config)
        rows.append(_row(horizon, headline, "final", final, y))
        table.extend(rows)
        summary[f"h{horizon}"] = {**rows[-1], "prior_log_loss": rows[0]["log_loss"], "n_test": int(len(y))}
    return {"table": table, "summary": summary}


def _headline_name(config) -> str:
    if config.use_ensemble and len(config.model_names) > 1:
        return f"ensemble ({config.ensemble_method})"
    return config.model_names[0]


def _row(horizon: int, model: str, stage: str, probabilities: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    return {"horizon": horizon, "model": model, "stage": stage, **classification_metrics(probabilities, y)}


def format_table(evaluation: dict[str, Any]) -> str:
    """The evaluation table as aligned text (CLI) or markdown-ish rows."""
    header = f"{'h':>3}  {'model':<22} {'stage':<11} {'accuracy':>8} {'log_loss':>8} {'macro_f1':>8} {'ece':>6}"
    lines = [header, "-" * len(header)]
    for row in evaluation["table"]:
        lines.append(
            f"{row['horizon']:>3}  {row['model']:<22} {row['stage']:<11} {row['accuracy']:>8.4f} "
            f"{row['log_loss']:>8.4f} {row['macro_f1']:>8.4f} {row['ece']:>6.3f}"
        )
    return "\n".join(lines)
