"""Atomic file writes: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_write(dest: str | os.PathLike, binary: bool = False) -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``dest``; on success it is flushed, fsynced and renamed
    over ``dest`` (parent folders created); on any error it is removed and ``dest`` is untouched.

        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "out" / "x.txt"
        >>> with atomic_write(path) as fh:
        ...     _ = fh.write("hello")
        >>> path.read_text()
        'hello'
    """
    path = Path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_writable(path: str | os.PathLike, what: str) -> None:
    """Raise OSError unless a file can be written atomically at ``path`` (a real probe file in its
    directory, so read-only mounts and root without the right are caught too); creates nothing."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"{what} path is a directory", str(path))
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{what} path's folder {parent} is not a directory", str(path))
    if parent != path.parent:
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, f"{what} path: cannot create directories in {parent}", str(path))
        return
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".probe")
    except OSError as exc:
        raise PermissionError(
            errno.EACCES, f"{what} path: cannot write in {parent} ({exc.strerror})", str(path)
        ) from None
    os.close(fd)
    os.unlink(probe)


def stage_file(dest: str | os.PathLike, write: Callable[[Any], Any]) -> Path:
    """Write a file beside ``dest`` (``write(binary_handle)``, flushed to disk) and return its temporary path."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


def commit_files(staged: list[tuple[Path, Path]]) -> None:
    """Rename each staged ``(temporary, dest)`` over its destination, all or none: if a rename
    fails, the destinations already replaced get their previous contents back and every
    temporary file is removed."""
    backups: list[tuple[Path, Path | None]] = []  # (dest, its previous contents' hard link or None)
    try:
        for tmp, dest in staged:
            backup = None
            if dest.exists():
                backup = dest.with_name(f".{dest.name}.{os.getpid()}.bak")
                try:
                    os.link(dest, backup)
                except OSError:  # no hard links here
                    shutil.copy2(dest, backup)
            backups.append((dest, backup))
            os.replace(tmp, dest)
    except BaseException:
        for dest, backup in reversed(backups):
            if backup is not None:
                os.replace(backup, dest)
            elif dest.exists():
                dest.unlink()
        for tmp, _ in staged:
            if tmp.exists():
                tmp.unlink()
        raise
    finally:
        for _, backup in backups:
            if backup is not None and backup.exists():
                backup.unlink()
