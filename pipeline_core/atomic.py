"""Atomic writes: a file or folder appears complete at its final path, or not at all.

Temporaries are hidden siblings of the target (dot-prefixed, never ending in the target's
suffix), so dataset readers globbing `*.parquet` never see them, and a failed write
removes them. One left by a killed process is swept by the next write beside it, once it is
older than STALE_AFTER_S (a younger one may belong to a write still in progress). A folder replacing another is swapped in with one atomic exchange (Linux
`renameat2(RENAME_EXCHANGE)`), so no moment exists at which the path is missing: a reader,
or a LIVE pointer, never sees it gone, even if the process is killed.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


STALE_AFTER_S = 3600
_TEMPORARY = re.compile(r"^\..+(\.[0-9a-f]{32}\.tmp|\.(tmp|old)-[0-9a-f]{32})$")


def sweep_stale_temporaries(folder: Path, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporaries of this module's writes in `folder` older than `older_than_s`."""
    if not folder.is_dir():
        return []
    cutoff, swept = time.time() - older_than_s, []
    for path in folder.iterdir():
        try:
            if _TEMPORARY.match(path.name) and path.lstat().st_mtime < cutoff:
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
                swept.append(path)
        except FileNotFoundError:
            continue  # another process swept it first
    return swept


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file to write, renamed over `path` on success and removed on failure."""
    final = Path(path)
    created = [folder for folder in (final.parent, *final.parent.parents) if not folder.exists()]
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temporaries(final.parent)
    temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield temporary
        os.replace(temporary, final)
    except BaseException as err:
        temporary.unlink(missing_ok=True)
        _remove_empty(created)  # a failed write leaves no folder behind either
        named = _os_error_naming(final, temporary, err)
        if named is not None:
            raise named from err
        raise
    finally:
        temporary.unlink(missing_ok=True)


_OS_ERROR_CODE = re.compile(r"\[errno (\d+)\]|\(os error (\d+)\)")


def _os_error_naming(final: Path, temporary: Path, err: BaseException) -> OSError | None:
    """`err` as an OSError naming `final`, when it reports an OS error (a full disk, a
    read-only folder) about no file or about the hidden temporary (or a file in it). A short
    write names no file; native writers put only "[errno 28]" (pyarrow) or "(os error 28)"
    (polars) in their message."""
    if isinstance(err, OSError) and err.filename is not None and not str(err.filename).startswith(str(temporary)):
        return None
    found = _OS_ERROR_CODE.search(str(err))  # case-sensitive: Python's own wording is "[Errno 28]"
    if found is not None:
        code = int(found.group(1) or found.group(2))
        return OSError(code, os.strerror(code), str(final))
    if isinstance(err, OSError) and err.errno is not None:
        return OSError(err.errno, err.strerror or os.strerror(err.errno), str(final))
    return None


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
    sweep_stale_temporaries(final.parent)
    staging = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex}")
    staging.mkdir()
    try:
        yield staging
        _swap_into_place(staging, final)
    except BaseException as err:
        named = _os_error_naming(final, staging, err)
        if named is not None:
            raise named from err
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_into_place(staging: Path, final: Path) -> None:
    if not final.exists():
        os.rename(staging, final)
        return
    if exchange(staging, final):
        return  # the old folder is now at `staging`, which the caller removes
    retired = final.with_name(f".{final.name}.old-{uuid.uuid4().hex}")
    os.rename(final, retired)  # not Linux: `final` is missing until the next rename
    os.rename(staging, final)
    shutil.rmtree(retired, ignore_errors=True)


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths in one atomic step; False where the system cannot (not Linux,
    or a filesystem without RENAME_EXCHANGE)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "renameat2"):
        return False
    result = libc.renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result != 0:
        errno = ctypes.get_errno()
        if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: not supported here
            return False
        raise OSError(errno, os.strerror(errno), str(second))
    return True


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders this write created (deepest first), if nothing else went into them."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return
