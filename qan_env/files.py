"""Writing a file whole or not at all, for every file the project writes that a kill must
not leave half written (configs, results, checkpoints, a saved episode)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def replace_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """``write(side_path)``, flushed to the disk, then renamed over ``path``: a kill at any
    moment leaves the old file or the new one, never a part. The side name keeps the
    suffix (``model.partial.zip``), for writers that insist on one."""
    path = Path(path)
    partial = path.with_name(f"{path.stem}.partial{path.suffix}")
    write(partial)
    with open(partial, "rb") as file:
        os.fsync(file.fileno())
    os.replace(partial, path)
    return path


def write_atomically(path: str | os.PathLike, text: str) -> Path:
    """``text`` into ``path`` whole or not at all (``replace_atomically``)."""
    return replace_atomically(path, lambda partial: partial.write_text(text))
