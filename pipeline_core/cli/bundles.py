"""`inference-pipeline bundles`: list versions with their metrics, promote one (rollback)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from pipeline_core.cli.help import HelpFormatter
from pipeline_core.errors import BundleError, PipelineError

if TYPE_CHECKING:
    from pipeline_core.bundle import BundleStore


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bundles", help="list bundle versions or promote one to live", formatter_class=HelpFormatter
    )
    parser.add_argument("--root", default="deployment/bundles", help="folder holding pipeline_vN bundles")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="versions, their test metrics, and which is live")
    promote = actions.add_parser("promote", help="point LIVE at a version (e.g. v2)", formatter_class=HelpFormatter)
    promote.add_argument("version", help="the bundle version, e.g. v2 or pipeline_v2")
    promote.add_argument(
        "--force", action="store_true",
        help="promote a bundle marked not deployable (no skill); recorded under decisions/",
    )
    promote.add_argument("--reason", default="", help="why a --force promotion is made (recorded)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline_core.bundle import BundleStore

    store = BundleStore(args.root)
    if not store.root.is_dir():
        raise BundleError(f"Bundle root {store.root} does not exist: pass --root, e.g. --root deployment/bundles.")
    if args.action == "promote":
        path = store.promote(args.version, force=args.force, reason=args.reason)
        print(f"live bundle is now {path.name}" + (" (forced: recorded under decisions/)" if args.force else ""))
        return 0
    return _list(store)


def _list(store: BundleStore) -> int:
    """One line per bundle; broken ones are reported and skipped. Non-zero when LIVE is broken."""
    from pipeline_core.bundle import DECISIONS_DIR

    live = store.live_version()
    print(f"{'':2}{'version':<14} {'created':<26} {'models':<28} {'h':>3} {'log_loss':>8} {'prior':>7} "
          f"{'accuracy':>8} {'deployable':<10} test window")
    problems = {}
    for version in store.versions():
        try:
            print(_describe(store, version, live))
        except PipelineError as err:
            problems[version] = str(err)
            print(f"{'*' if version == live else ' '} {version:<14} BROKEN: {err}")
    for version in store.versions():
        decision = store.root / DECISIONS_DIR / f"{version}.json"
        if decision.is_file() and version not in problems:
            print(_decision_line(version, json.loads(decision.read_text())))
    interrupted = store.interrupted_promotion()
    if interrupted is not None:
        print(f"warning: the promotion of {interrupted} was recorded under decisions/ but LIVE still names {live}: "
              f"the next retraining completes it, or run `bundles promote {interrupted}`", file=sys.stderr)
    if live is None:
        return 0
    if live not in store.versions():
        print(f"error: LIVE points at {live}, which does not exist under {store.root}", file=sys.stderr)
        return 1
    if live in problems:
        print(f"error: LIVE points at {live}, which is broken: {problems[live]}", file=sys.stderr)
        return 1
    if store.manifest(live).deployable is False:
        print(f"warning: LIVE points at {live}, which is marked not deployable (no skill)", file=sys.stderr)
    return 0


def _describe(store: BundleStore, version: str, live: str | None) -> str:
    summary = store.summary(version)
    manifest, config = summary["manifest"], summary["config"]
    horizon = max(config["horizons"])
    metrics = summary["evaluation"].get("summary", {}).get(f"h{horizon}", {})
    deployable = {True: "yes", False: "NO", None: "unknown"}[manifest.deployable]
    window = summary["metadata"].get("training_window", {}).get("test", "?")
    return (
        f"{'*' if version == live else ' '} {version:<14} {manifest.created_at:<26} "
        f"{','.join(config['model_names']):<28} {horizon:>3} {metrics.get('log_loss', float('nan')):>8.4f} "
        f"{metrics.get('prior_log_loss', float('nan')):>7.4f} {metrics.get('accuracy', float('nan')):>8.4f} "
        f"{deployable:<10} {window}"
    )


def _decision_line(version: str, decision: dict) -> str:
    """How a retraining candidate and the live bundle compared on the same holdout."""
    candidate, live = decision.get("candidate_metrics", {}), decision.get("live_metrics", {})
    verdict = "promoted" if decision.get("promoted") else "refused"
    if not candidate or not live:
        return f"  {version}: {verdict} ({'; '.join(decision.get('reasons', []))})"
    return (
        f"  {version}: {verdict}; on the same holdout {decision.get('holdout_dates', [])}: log-loss "
        f"{candidate['log_loss']:.4f} vs live {decision.get('live_before')} {live['log_loss']:.4f} "
        "(each bundle's own row above is on its own test window, so those rows are not comparable)"
    )
