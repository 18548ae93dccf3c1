"""`inference-pipeline bundles`: list versions with their metrics, promote one (rollback)."""

from __future__ import annotations

import argparse
import json

from pipeline_core.bundle import MANIFEST_FILE, BundleStore


def register(subparsers) -> None:
    parser = subparsers.add_parser("bundles", help="list bundle versions or promote one to live")
    parser.add_argument("--root", default="deployment", help="folder holding pipeline_vN bundles")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="versions, their test metrics, and which is live")
    promote = actions.add_parser("promote", help="point LIVE at a version (e.g. v2)")
    promote.add_argument("version")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = BundleStore(args.root)
    if args.action == "promote":
        path = store.promote(args.version)
        print(f"live bundle is now {path.name}")
        return 0
    live = store.live_version()
    print(f"{'':2}{'version':<14} {'created':<26} {'models':<32} {'horizon':>7} {'log_loss':>9} {'accuracy':>9}")
    for version in store.versions():
        print(_describe(store, version, live))
    return 0


def _describe(store: BundleStore, version: str, live: str | None) -> str:
    folder = store.path(version)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    config = json.loads((folder / "config.json").read_text())["config"]
    summary = json.loads((folder / "evaluation.json").read_text()).get("summary", {})
    horizon = f"h{max(config['horizons'])}"
    metrics = summary.get(horizon, {})
    return (
        f"{'*' if version == live else ' '} {version:<14} {manifest['created_at']:<26} "
        f"{','.join(config['model_names']):<32} {horizon:>7} "
        f"{metrics.get('log_loss', float('nan')):>9.4f} {metrics.get('accuracy', float('nan')):>9.4f}"
    )
