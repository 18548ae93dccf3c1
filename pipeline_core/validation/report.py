"""All audits of one pipeline on one frame, as one report (what the CLI prints)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pipeline_core.data import validate_ohlcv
from pipeline_core.validation.lookahead_audit import LookaheadAuditResult, audit_pipeline_lookahead
from pipeline_core.validation.parity import ParityResult, check_native_parity, check_roundtrip
from pipeline_core.validation.warmup import WarmupAuditResult, warmup_audit


@dataclass(frozen=True)
class AuditLine:
    """One row of the report table."""

    name: str
    passed: bool
    detail: str
    seconds: float


@dataclass(frozen=True)
class AuditReport:
    lookahead: LookaheadAuditResult
    warmup: WarmupAuditResult
    native_parity: ParityResult
    roundtrip_parity: ParityResult
    lines: tuple[AuditLine, ...]

    @property
    def passed(self) -> bool:
        return all(line.passed for line in self.lines)

    def table(self) -> str:
        """A fixed-width text table: audit, result, seconds, detail."""
        width = max(len(line.name) for line in self.lines)
        rows = [f"{'audit':<{width}}  result  seconds  detail"]
        for line in self.lines:
            verdict = "PASS" if line.passed else "FAIL"
            rows.append(f"{line.name:<{width}}  {verdict:<6}  {line.seconds:7.2f}  {line.detail}")
        return "\n".join(rows)


def run_audits(
    pipeline, df: Any, horizon: int, *, n_samples: int = 50, seed: int = 0, full_prefix: bool = False
) -> AuditReport:
    """Lookahead, warm-up, native parity and save/load round-trip parity of `pipeline`
    scoring `df` at `horizon` (see each audit's module for what it proves)."""
    bars = validate_ohlcv(df)
    lookahead, t_lookahead = _timed(
        audit_pipeline_lookahead, pipeline, bars, horizon, n_samples=n_samples, seed=seed, full_prefix=full_prefix
    )
    warmup, t_warmup = _timed(warmup_audit, pipeline, bars, horizon, n_samples=n_samples, seed=seed)
    native, t_native = _timed(check_native_parity, pipeline, bars, horizon)
    roundtrip, t_roundtrip = _timed(check_roundtrip, pipeline, bars, horizon)
    lines = (
        AuditLine("lookahead", lookahead.passed, lookahead.summary(), t_lookahead),
        AuditLine("warm-up", warmup.passed, warmup.summary(), t_warmup),
        AuditLine("parity: native models", native.passed, native.summary(), t_native),
        AuditLine("parity: save -> load", roundtrip.passed, roundtrip.summary(), t_roundtrip),
    )
    return AuditReport(lookahead, warmup, native, roundtrip, lines)


def _timed(func, *args, **kwargs):
    started = time.perf_counter()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - started
