"""Writing a file whole or not at all, for every file the project writes that a kill must
not leave half written (configs, results, checkpoints, a saved episode), and never through
a link someone planted in the folder."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def replace_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """``write(side_path)``, flushed to the disk, then renamed over ``path``: a kill at any
    moment leaves the old file or the new one, never a part. The side file is created new
    (``mkstemp``: exclusively, never an existing name or a link) in the same folder, with
    the suffix kept (``.model.x1y2.partial.zip``) for writers that insist on one; the
    rename replaces ``path`` itself, so a link there is replaced, never followed."""
    path = Path(path)
    handle, name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent
    )
    os.close(handle)
    partial = Path(name)
    partial.chmod(0o644)  # mkstemp's 0600 is for secrets; these are results
    try:
        write(partial)
        with open(partial, "rb") as file:
            os.fsync(file.fileno())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    return path


def write_atomically(path: str | os.PathLike, text: str) -> Path:
    """``text`` into ``path`` whole or not at all (``replace_atomically``)."""
    return replace_atomically(path, lambda partial: partial.write_text(text))


def check_writable(folder: str | os.PathLike) -> Path:
    """``folder`` made if missing and shown writable by a file created and removed in it,
    before any work whose results it must take; a ValueError naming it else."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=".writable.", dir=folder)
        os.close(handle)
        os.unlink(name)
    except OSError as error:
        raise ValueError(
            f"{folder} cannot take the results ({error.strerror or error}): give a folder "
            f"this user may write to"
        ) from None
    return folder
