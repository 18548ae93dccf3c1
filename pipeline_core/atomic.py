"""Atomic writes: a file or folder appears complete at its final path, or not at all.

Temporaries are hidden siblings of the target (dot-prefixed, never ending in the target's
suffix), so dataset readers globbing `*.parquet` never see them, and a failed write
removes them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file to write, renamed over `path` on success and removed on failure."""
    final = Path(path)
    created = [folder for folder in (final.parent, *final.parent.parents) if not folder.exists()]
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield temporary
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        _remove_empty(created)  # a failed write leaves no folder behind either
        raise
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically, replacing any earlier file."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)
    return Path(path)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """A staging folder to fill, swapped into place on success (replacing an existing
    folder at `path`) and removed on failure."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex}")
    staging.mkdir()
    try:
        yield staging
        _swap_into_place(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_into_place(staging: Path, final: Path) -> None:
    if not final.exists():
        os.rename(staging, final)
        return
    retired = final.with_name(f".{final.name}.old-{uuid.uuid4().hex}")
    os.rename(final, retired)
    os.rename(staging, final)
    shutil.rmtree(retired, ignore_errors=True)


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders this write created (deepest first), if nothing else went into them."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return
