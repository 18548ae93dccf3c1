"""The skill gate: a bundle is deployable only if its final model beats the class prior.

On each horizon's test window the final model's log-loss must be strictly below that of
the class prior one could deploy instead: the class frequencies of the training window.
(The evaluation table also shows the test window's own frequencies, the best constant
forecast in hindsight; no deployed model can know them, so they inform but do not gate.)
A bundle that fails on any horizon is still saved, for inspection, but its
manifest and evaluation mark it not deployable: `train` exits non-zero, and promotion,
the `live_bundle` asset and the retraining gate refuse it unless forced (and the override
is recorded).
"""

from __future__ import annotations

from typing import Any

EXIT_NO_SKILL = 3  # `inference-pipeline train` exit code for a bundle without skill


def assess_skill(summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """{"deployable", "horizons": {h: final, prior, margin, has_skill, ...}, "reason"} from an
    evaluation summary ({"h20": {"log_loss": ..., "train_prior_log_loss": ..., "class_prior_log_loss": ...}})."""
    horizons = {}
    for name, figures in summary.items():
        final, prior = float(figures["log_loss"]), float(figures["train_prior_log_loss"])
        horizons[name] = {
            "final_log_loss": round(final, 6), "prior_log_loss": round(prior, 6),
            "margin": round(prior - final, 6), "has_skill": final < prior,
            "hindsight_prior_log_loss": round(float(figures["class_prior_log_loss"]), 6),
        }
    failing = [name for name, verdict in horizons.items() if not verdict["has_skill"]]
    if failing:
        shown = ", ".join(
            f"{name} final {horizons[name]['final_log_loss']:.4f} >= prior {horizons[name]['prior_log_loss']:.4f}"
            for name in failing
        )
        reason = f"no skill on {shown}: the final model is no better than the training window's class prior"
    else:
        reason = "the final model beats the training window's class prior on every horizon's test window"
    return {"deployable": not failing, "horizons": horizons, "reason": reason}


def format_verdict(skill: dict[str, Any]) -> str:
    """One line per horizon, then the verdict."""
    lines = [
        f"{name}: final log-loss {v['final_log_loss']:.4f} vs train prior {v['prior_log_loss']:.4f} "
        f"({'skill' if v['has_skill'] else 'NO SKILL'}, margin {v['margin']:+.4f}; "
        f"test-window prior in hindsight {v['hindsight_prior_log_loss']:.4f})"
        for name, v in skill["horizons"].items()
    ]
    lines.append(("DEPLOYABLE: " if skill["deployable"] else "NOT DEPLOYABLE: ") + skill["reason"])
    return "\n".join(lines)
