"""Why a path cannot be read or created, in a few words: one answer for replay's inputs
and for ``detector check``'s files (so both say "no such file" the same way)."""

from __future__ import annotations

import os
from pathlib import Path


def why_unreadable(path: Path) -> str:
    """``""`` when ``path`` can be opened for reading and is not a directory, else why not.

    Nothing is opened: a FIFO would block until its writer comes.
    """
    if not path.exists():
        return "no such file"
    if path.is_dir():
        return "is a directory"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return ""


def why_uncreatable(path: Path) -> str:
    """``""`` when ``path`` can be written, or created with its missing directories."""
    if path.is_dir():
        return "is a directory"
    if path.exists():
        return "" if os.access(path, os.W_OK) else "permission denied"
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a directory"
    return "" if os.access(parent, os.W_OK | os.X_OK) else f"cannot create files in {parent}"
