"""Test-window evaluation: every model raw and calibrated, the final output, and no-skill baselines.

Rows per horizon: the baselines (the test window's class prior, the training window's
prior, persistence), each model raw and calibrated (with the calibration chosen), the
final output, and with several symbols the baselines and the final output per symbol.
Every figure has a 90% block-bootstrap interval over blocks of `horizon` timestamps.
The summary per horizon holds the final figures beside the baselines, the calibration
and ensemble choices with their cross-validation evidence, and the window sizes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline_core.metrics import (
    METRICS,
    block_bootstrap_intervals,
    classification_metrics,
    persistence_probabilities,
    prior_probabilities,
    time_blocks,
)
from pipeline_core.pipeline import model_key
from pipeline_core.skill import assess_skill

ALL_SYMBOLS = "all"
BASELINES = ("class prior", "train prior", "persistence")


def evaluate_pipeline(data, inputs, pipeline) -> dict[str, Any]:
    """{"table": one row per (horizon, model, stage, symbol), "summary": the headline per horizon}."""
    table, summary = [], {}
    for horizon, split in data.splits.items():
        rows, headline = _evaluate_horizon(data, inputs, pipeline, split)
        table.extend(rows)
        summary[f"h{horizon}"] = headline
    return {"table": table, "summary": summary, "skill": assess_skill(summary)}


def _evaluate_horizon(data, inputs, pipeline, split) -> tuple[list[dict], dict[str, Any]]:
    horizon, test = split.horizon, split.test
    y = split.y[test]
    symbols = data.rows.symbols[test]
    blocks = time_blocks(data.rows.timestamps[test], horizon)
    baselines = baseline_probabilities(data.rows.symbols, split, horizon)
    raw = pipeline.base_model_probabilities(inputs, horizon, test)
    final = pipeline.score_inputs(inputs, horizon, test).probabilities
    final_name = pipeline.final_name(horizon)
    rows = [_row(horizon, name, "baseline", probs, y, blocks) for name, probs in baselines.items()]
    choices = {}
    for name, probs in raw.items():
        rows.append(_row(horizon, name, "raw", probs, y, blocks))
        if pipeline.config.use_calibration:
            calibrator = pipeline.calibrators[model_key(name, horizon)]
            choices[name] = _calibration_record(calibrator)
            rows.append({**_row(horizon, name, "calibrated", calibrator.transform(probs), y, blocks),
                         "calibration": calibrator.choice})
    rows.append(_row(horizon, final_name, "final", final, y, blocks))
    headline = {
        **rows[-1],
        **{f"{_slug(name)}_log_loss": row["log_loss"] for name, row in zip(BASELINES, rows)},
        "prior_log_loss": rows[0]["log_loss"],
        "n_test": int(len(y)),
        "calibration": choices,
        "ensemble": _ensemble_record(pipeline, horizon),
        "windows": split.sizes,
    }
    if len(np.unique(symbols)) > 1:
        rows += _per_symbol_rows(horizon, {**baselines, final_name: final}, y, symbols, blocks, final_name)
    return rows, headline


def baseline_probabilities(symbols: np.ndarray, split, horizon: int) -> dict[str, np.ndarray]:
    """The no-skill forecasts of the test rows: class prior (test), train prior, persistence."""
    test, train = split.test, split.train
    previous = _label_before(split.y, symbols, horizon)
    known = previous[train] >= 0
    return {
        "class prior": prior_probabilities(split.y[test], len(test)),
        "train prior": prior_probabilities(split.y[train], len(test)),
        "persistence": persistence_probabilities(previous[test], previous[train][known], split.y[train][known]),
    }


def _label_before(y: np.ndarray, symbols: np.ndarray, horizon: int) -> np.ndarray:
    """The label of the bar `horizon` bars earlier of the same symbol (-1 if none): the last
    label already realized at each bar, since its window ends at that bar."""
    previous = np.full(len(y), -1, dtype=np.int64)
    same = symbols[horizon:] == symbols[:-horizon]
    previous[horizon:] = np.where(same, y[:-horizon], -1)
    return previous


def _per_symbol_rows(horizon, forecasts, y, symbols, blocks, final_name) -> list[dict]:
    rows = []
    for symbol in np.unique(symbols):
        mine = symbols == symbol
        for name, probs in forecasts.items():
            if name == "class prior":  # the symbol's own test prior: the best constant for it
                probs = prior_probabilities(y[mine], len(y))
            stage = "final" if name == final_name else "baseline"
            rows.append({**_row(horizon, name, stage, probs[mine], y[mine], blocks[mine]), "symbol": str(symbol)})
    return rows


def _row(horizon: int, model: str, stage: str, probabilities: np.ndarray, y: np.ndarray, blocks) -> dict[str, Any]:
    intervals = block_bootstrap_intervals(probabilities, y, blocks)
    return {
        "horizon": horizon, "model": model, "stage": stage, "symbol": ALL_SYMBOLS, "n": int(len(y)),
        **classification_metrics(probabilities, y),
        **{f"{metric}_ci": intervals[metric] for metric in METRICS},
    }


def _calibration_record(calibrator) -> dict[str, Any]:
    return {
        "choice": calibrator.choice,
        **calibrator.parameters(),
        "selection": getattr(calibrator, "selection_", None),
    }


def _ensemble_record(pipeline, horizon: int) -> dict[str, Any] | None:
    ensemble = pipeline.ensembles.get(horizon)
    if ensemble is None:
        return None
    return {"method": ensemble.method, "final": pipeline.final_name(horizon),
            "selection": getattr(ensemble, "selection_", None)}


def _slug(name: str) -> str:
    return name.replace(" ", "_")


def format_table(evaluation: dict[str, Any]) -> str:
    """The evaluation table as aligned text, then what was chosen and why, per horizon."""
    header = (f"{'h':>3}  {'model':<22} {'stage':<10} {'symbol':<8} {'calibration':<16} {'log_loss':>8} "
              f"{'90% CI':<15} {'brier':>6} {'accuracy':>8} {'macro_f1':>8} {'ece':>6}")
    lines = [header, "-" * len(header)]
    for row in evaluation["table"]:
        low, high = row.get("log_loss_ci", [np.nan, np.nan])
        lines.append(
            f"{row['horizon']:>3}  {row['model']:<22} {row['stage']:<10} {row.get('symbol', ALL_SYMBOLS):<8} "
            f"{row.get('calibration', ''):<16} {row['log_loss']:>8.4f} {f'{low:.4f}-{high:.4f}':<15} "
            f"{row.get('brier', np.nan):>6.4f} {row['accuracy']:>8.4f} {row['macro_f1']:>8.4f} {row['ece']:>6.3f}"
        )
    for name, summary in evaluation.get("summary", {}).items():
        lines.extend(_choices_text(name, summary))
    return "\n".join(lines)


def _choices_text(name: str, summary: dict[str, Any]) -> list[str]:
    lines = []
    for model, record in summary.get("calibration", {}).items():
        reason = (record.get("selection") or {}).get("reason", "")
        lines.append(f"{name} calibration {model}: {record['choice']} ({reason})")
    selection = (summary.get("ensemble") or {}).get("selection")
    if selection:
        scores = ", ".join(f"{m} {v:.4f}" for m, v in selection.get("cv_log_loss", {}).items()) or "not compared"
        lines.append(f"{name} final: {summary['ensemble']['final']} (cross-validated log-loss: {scores})")
        if selection.get("clearly_better"):
            lines.append(
                f"{name} note: {selection['best']} is clearly better than the default {selection['default']} "
                f"(paired difference CI {selection['best_minus_default_ci']}): train with --ensemble auto to take it."
            )
        if selection.get("fallback"):
            lines.append(f"{name} note: {selection['fallback']}")
    return lines
