"""Proofs about a pipeline: no lookahead, a sufficient declared lookback, parity.

- `LookaheadAuditor(predict_func).audit(df)`: predictions at t do not change when the
  bars after t are removed (exactly); `audit_pipeline_lookahead` runs it on a pipeline
  (`audit_pipeline_lookahead_by_horizon`: every horizon from one set of cut runs).
- `warmup_audit(pipeline, df, horizon)`: scoring from exactly the declared lookback
  equals scoring from all history (within 1e-6).
- `check_native_parity`, `compare_pipelines`, `check_roundtrip`: base models equal their
  native libraries, and a bundle after load equals the pipeline before save (exactly).
- `run_audits`: all of them as one report (what the `audit` command prints).
"""

from pipeline_core.validation.lookahead_audit import (
    LookaheadAuditor,
    LookaheadAuditResult,
    LookaheadViolation,
    audit_pipeline_lookahead,
    audit_pipeline_lookahead_by_horizon,
    pipeline_predict_func,
)
from pipeline_core.validation.parity import (
    ModelParity,
    ParityResult,
    check_native_parity,
    check_roundtrip,
    compare_pipelines,
    native_probabilities,
)
from pipeline_core.validation.report import AuditLine, AuditReport, run_audits
from pipeline_core.validation.warmup import WarmupAuditResult, WarmupDiff, warmup_audit

__all__ = [
    "AuditLine",
    "AuditReport",
    "LookaheadAuditResult",
    "LookaheadAuditor",
    "LookaheadViolation",
    "ModelParity",
    "ParityResult",
    "WarmupAuditResult",
    "WarmupDiff",
    "audit_pipeline_lookahead",
    "audit_pipeline_lookahead_by_horizon",
    "check_native_parity",
    "check_roundtrip",
    "compare_pipelines",
    "native_probabilities",
    "pipeline_predict_func",
    "run_audits",
    "warmup_audit",
]
