"""The on-disk bundle: layout, manifest, hashes, versions, and the store of live bundles.

A bundle is a folder written atomically (temporary folder, then rename) whose
`manifest.json` records the format version, provenance, and the SHA-256 of every other
file. `verify_bundle` checks all of that before anything else is read.

Bumping FORMAT_VERSION: (1) change the layout and bump the constant; (2) teach the loader
to read the previous version (or convert it); (3) save a tiny bundle of the new version
under tests/data/bundles/format_vN/ so every past version keeps loading in the tests.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import uuid
import warnings
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline_core.atomic import atomic_folder, atomic_write_text
from pipeline_core.errors import BundleError, BundleFormatError, BundleIntegrityError, NotDeployableError

# 2: `deployable` (the skill gate), calibrators and ensembles of format 2; 3: reference statistics of format 2
FORMAT_VERSION = 3
MANIFEST_FILE = "manifest.json"
LIBRARIES = ("numpy", "polars", "scikit-learn", "xgboost", "lightgbm", "catboost", "torch")
MAX_SHOWN = 5


@dataclass(frozen=True)
class Component:
    """One loadable piece of a bundle: what it is, where it lives, which loader reads it."""

    kind: str  # config, scaler, model, calibrator, ensemble, reference, evaluation
    name: str  # e.g. "xgboost_h20"
    path: str  # relative to the bundle root, a file or a folder
    loader: str  # e.g. "json", "xgboost", "temperature"


@dataclass(frozen=True)
class Manifest:
    """What a bundle holds and how to check it; built and checked by the bundle writer."""

    format_version: int
    pipeline_version: str
    bundle_id: str
    created_at: str
    python_version: str
    library_versions: dict[str, str]
    feature_set: str
    feature_columns: list[str]
    required_lookback: int
    horizons: list[int]
    classes: list[int]
    components: list[Component]
    files: dict[str, str]  # relative path -> sha256
    training_window: dict[str, str] = field(default_factory=dict)
    label_spec: dict[str, Any] = field(default_factory=dict)
    deployable: bool | None = None  # None: saved before the skill gate (format 1), not judged

    def __post_init__(self) -> None:
        if not isinstance(self.format_version, int) or self.format_version < 1:
            raise BundleFormatError(f"Manifest format_version {self.format_version!r} is not a positive integer.")
        for path in [*self.files, *(c.path for c in self.components)]:
            _check_relative(path)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def data_end(self) -> date | None:
        """The date of the last bar the bundle was trained or tested on (None if unrecorded)."""
        ends = [bounds.rpartition("..")[2] for bounds in self.training_window.values()]
        return max((date.fromisoformat(end[:10]) for end in ends if end), default=None)

    def to_json(self) -> str:
        """The text of manifest.json (its SHA-256 identifies the bundle's exact files)."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        if not isinstance(data, dict):
            raise BundleFormatError(f"Manifest is malformed: expected a JSON object, got {type(data).__name__}.")
        version = data.get("format_version")
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise BundleFormatError(
                f"Bundle format version {version} is newer than this library reads "
                f"({FORMAT_VERSION}): upgrade inference-pipeline to load it."
            )
        try:
            components = [Component(**c) for c in data["components"]]
            return cls(**{**data, "components": components})
        except (KeyError, TypeError) as err:
            raise BundleFormatError(f"Manifest is malformed: {err}.") from err


def library_versions() -> dict[str, str]:
    """Installed versions by library; a CPU-only distribution (xgboost-cpu) counts as its library."""
    versions = {}
    for name in LIBRARIES:
        for distribution in (name, f"{name}-cpu"):
            try:
                versions[name] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions


def new_manifest(**fields: Any) -> dict[str, Any]:
    """Provenance fields every manifest carries; the caller adds the rest."""
    return {
        "format_version": FORMAT_VERSION,
        "bundle_id": uuid.uuid4().hex,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python_version": platform.python_version(),
        "library_versions": library_versions(),
        **fields,
    }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def relative_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())


def _check_relative(path: str) -> None:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or "\\" in path or not pure.parts:
        raise BundleIntegrityError(f"Manifest entry {path!r} points outside the bundle: refusing to load it.")


def check_bundle_target(path: str | Path, overwrite: bool = True) -> None:
    """BundleError unless a bundle may be written at `path`: never over a file, a folder that
    holds something else, or the bundle its store's LIVE pointer names (promotion is the only
    way to change what is live); over another bundle only with `overwrite`."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise BundleError(f"{target} is a file: a bundle is a folder. Choose a new path, e.g. deployment/bundles/pipeline_v2.")
    if not target.is_dir() or not any(target.iterdir()):
        return
    if not (target / MANIFEST_FILE).is_file():
        raise BundleError(f"{target} is a folder that holds no bundle: refusing to replace it. Choose a new path.")
    live = BundleStore(target.parent).live_version()
    if live is not None and BundleStore(target.parent).path(live).resolve() == target.resolve():
        raise BundleError(
            f"{target} is the live bundle (LIVE): it is never overwritten. Save to a new version, then promote it."
        )
    if not overwrite:
        raise BundleError(f"{target} already holds a bundle: pass --overwrite to replace it, or choose a new path.")


def write_bundle(path: str | Path, write_components, manifest_fields: dict[str, Any]) -> Manifest:
    """Write a bundle atomically: `write_components(tmp)` fills a temporary folder and
    returns its components; hashes and the manifest are added, then the folder is swapped
    into place. An existing bundle at `path` is replaced, unless LIVE names it (see
    `check_bundle_target`)."""
    check_bundle_target(path)
    with atomic_folder(path) as staging:
        components = write_components(staging)
        files = {rel: sha256_file(staging / rel) for rel in relative_files(staging)}
        manifest = Manifest(**manifest_fields, components=components, files=files)
        (staging / MANIFEST_FILE).write_text(manifest.to_json())
    return manifest


def verify_bundle(path: str | Path) -> Manifest:
    """Check a bundle before anything in it is read; return its manifest.

    Refuses (BundleIntegrityError / BundleFormatError) a missing manifest, an unknown or
    newer format, a path outside the bundle, and any changed, missing or extra file.
    Warns when a library's major version differs from the one that saved the bundle.
    """
    root = Path(path)
    manifest_path = root / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleIntegrityError(f"{root} is not a bundle: {MANIFEST_FILE} is missing.")
    try:
        manifest = Manifest.from_dict(json.loads(manifest_path.read_text()))
    except json.JSONDecodeError as err:
        raise BundleFormatError(f"{manifest_path} is not valid JSON: {err}.") from err
    present = set(relative_files(root)) - {MANIFEST_FILE}
    listed = set(manifest.files)
    _refuse_if(sorted(listed - present), root, "missing files")
    _refuse_if(sorted(present - listed), root, "files not in the manifest")
    changed = [rel for rel in sorted(listed) if _is_tampered(root, rel, manifest.files[rel])]
    _refuse_if(changed, root, "files whose SHA-256 does not match the manifest")
    _warn_on_library_majors(manifest.library_versions)
    return manifest


def _is_tampered(root: Path, rel: str, expected: str) -> bool:
    file = root / rel
    if file.is_symlink() or not file.resolve().is_relative_to(root.resolve()):
        raise BundleIntegrityError(f"Bundle file {rel!r} is a link or resolves outside the bundle.")
    return sha256_file(file) != expected


def _refuse_if(paths: list[str], root: Path, problem: str) -> None:
    if paths:
        raise BundleIntegrityError(
            f"Bundle {root} has {len(paths)} {problem}: {paths[:MAX_SHOWN]}. "
            "Refusing to load it; rebuild or restore the bundle."
        )


def _warn_on_library_majors(saved: dict[str, str]) -> None:
    current = library_versions()
    for name, version in saved.items():
        if name in current and version.split(".")[0] != current[name].split(".")[0]:
            warnings.warn(
                f"Bundle was saved with {name} {version}; this process has {current[name]}. "
                "Predictions may differ: re-run the parity audit.",
                stacklevel=3,
            )


def rehash_bundle(path: str | Path) -> None:
    """Re-record the hashes of a bundle's files in place.

    Only for deliberate edits (tests that plant a defect and need the bundle to load);
    it does not make an edited bundle any more trustworthy.
    """
    root = Path(path)
    data = json.loads((root / MANIFEST_FILE).read_text())
    data["files"] = {rel: sha256_file(root / rel) for rel in relative_files(root) if rel != MANIFEST_FILE}
    (root / MANIFEST_FILE).write_text(json.dumps(data, indent=2))


VERSION_PATTERN = re.compile(r"^pipeline_v(\d+)$")
LIVE_POINTER = "LIVE"
DECISIONS_DIR = "decisions"


class BundleStore:
    """Versioned bundles under one root (`pipeline_v1`, `pipeline_v2`, ...) and the
    `LIVE` pointer naming the one scoring uses. Promotion rewrites the pointer atomically;
    older versions stay for rollback."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def versions(self) -> list[str]:
        found = [p.name for p in self.root.glob("pipeline_v*") if VERSION_PATTERN.match(p.name) and p.is_dir()]
        return sorted(found, key=lambda name: int(VERSION_PATTERN.match(name).group(1)))

    def next_version(self) -> str:
        existing = self.versions()
        number = int(VERSION_PATTERN.match(existing[-1]).group(1)) + 1 if existing else 1
        return f"pipeline_v{number}"

    def path(self, version: str) -> Path:
        return self.root / self._normalize(version)

    def _normalize(self, version: str) -> str:
        name = version if version.startswith("pipeline_") else f"pipeline_{version}"
        if not VERSION_PATTERN.match(name):
            raise BundleError(f"Bundle version {version!r} is not of the form vN or pipeline_vN.")
        return name

    def live_version(self) -> str | None:
        pointer = self.root / LIVE_POINTER
        return pointer.read_text().strip() if pointer.is_file() else None

    def live_path(self) -> Path:
        version = self.live_version()
        if version is None:
            raise BundleError(f"No live bundle under {self.root}: build one, then promote it.")
        return self.path(version)

    def manifest(self, version: str) -> Manifest:
        """The verified manifest of `version` (every file hash-checked)."""
        return verify_bundle(self.path(version))

    def bundle_id(self, version: str) -> str:
        """The manifest's bundle id, read without hashing the files: a cache key (loading verifies)."""
        manifest = self.path(version) / MANIFEST_FILE
        if not manifest.is_file():
            raise BundleError(f"No bundle at {manifest.parent}: {MANIFEST_FILE} is missing.")
        try:
            return str(json.loads(manifest.read_text()).get("bundle_id", ""))
        except (json.JSONDecodeError, AttributeError) as err:
            raise BundleFormatError(f"{manifest} is not a valid manifest: {err}.") from err

    def summary(self, version: str) -> dict[str, Any]:
        """The verified manifest, config, metadata and evaluation of `version`, without its models."""
        manifest = self.manifest(version)
        folder = self.path(version)
        try:
            stored = json.loads((folder / "config.json").read_text())
            evaluation = json.loads((folder / "evaluation.json").read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise BundleFormatError(f"Bundle {folder} has an unreadable config or evaluation: {err}.") from err
        return {"manifest": manifest, "config": stored["config"], "metadata": stored.get("metadata", {}),
                "evaluation": evaluation}

    def promote(self, version: str, force: bool = False, reason: str = "") -> Path:
        """Point LIVE at `version` after checking the bundle verifies and is deployable.

        A bundle marked not deployable (no skill on its test window) is refused unless
        `force`; a forced promotion is recorded under `decisions/` with `reason` first."""
        name = self._normalize(version)
        manifest = verify_bundle(self.root / name)
        if manifest.deployable is False:
            if not force:
                raise NotDeployableError(
                    f"Bundle {name} is marked not deployable: its final model is no better than the training "
                    "window's class prior on its test window (see its evaluation.json 'skill'). Promote it anyway only "
                    "deliberately: `inference-pipeline bundles promote --force --reason TEXT`."
                )
            self.record_decision(f"{name}-forced-{_utc_stamp()}", {
                "candidate": name, "live_before": self.live_version(), "promoted": True, "forced": True,
                "reasons": [f"forced promotion of a bundle marked not deployable: {reason or 'no reason given'}"],
            })
        atomic_write_text(self.root / LIVE_POINTER, name + "\n")
        return self.root / name

    def interrupted_promotion(self) -> str | None:
        """The candidate of a promotion recorded but never carried out, else None.

        A promotion writes its decision, then LIVE; a kill in between leaves the newest
        decision promoting a candidate while LIVE still names the bundle it replaced and
        was not written since (a later rollback writes LIVE, so it is not undone)."""
        decisions = sorted((self.root / DECISIONS_DIR).glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        if not decisions:
            return None
        try:
            decision = json.loads(decisions[-1].read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise BundleFormatError(f"{decisions[-1]} is not a readable decision: {err}.") from err
        live, pointer = self.live_version(), self.root / LIVE_POINTER
        if not isinstance(decision, dict) or not decision.get("promoted"):
            return None
        if decision.get("candidate") == live or decision.get("live_before") != live:
            return None
        if pointer.is_file() and pointer.stat().st_mtime_ns >= decisions[-1].stat().st_mtime_ns:
            return None
        return str(decision["candidate"])

    def reconcile_live(self) -> str | None:
        """Finish an interrupted promotion (`interrupted_promotion`): point LIVE at its
        verified candidate. Returns the version promoted, or None when LIVE was consistent."""
        candidate = self.interrupted_promotion()
        if candidate is not None:
            verify_bundle(self.root / candidate)
            atomic_write_text(self.root / LIVE_POINTER, candidate + "\n")
        return candidate

    def record_decision(self, name: str, decision: dict[str, Any]) -> Path:
        """Write a promotion decision to `decisions/<name>.json` (atomically)."""
        path = self.root / DECISIONS_DIR / f"{name}.json"
        return atomic_write_text(path, json.dumps({"recorded_at": _utc_stamp(), **decision}, indent=2, default=_plain))


def _utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _plain(value: Any) -> Any:
    """JSON for numpy scalars (via .item()) and dates (ISO text)."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
