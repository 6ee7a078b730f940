"""Atomic file writes: a reader (or a resumed run after `kill -9`) never sees half a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: str | Path, write: Callable[[BinaryIO], object] | bytes) -> None:
    """Write `path` through a temporary file beside it, then rename it into place.

    `write` is the content (bytes) or a function that writes to the binary stream it is given.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            if isinstance(write, bytes):
                stream.write(write)
            else:
                write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def staging_folder(destination: str | Path) -> Path:
    """An empty temporary folder beside `destination`, to fill and then rename into place.

    Same file system as the destination, so the final rename is atomic; the usual mode
    (mkdtemp makes 0700, which would surprise whoever shares the export).
    """
    destination = Path(destination)
    folder = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}."))
    os.chmod(folder, 0o777 & ~_umask())
    return folder
