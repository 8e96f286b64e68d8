"""Atomic file writes: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
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
