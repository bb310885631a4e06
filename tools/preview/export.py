"""Writes build/preview/<stack>/ all at once: a reader never sees half of one preview and half of another."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def write_tree(target: Path, files: dict[str, str]) -> None:
    """Write ``files`` (relative path -> text) into a temp dir beside ``target``, then swap it in."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    try:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        os.chmod(staging, 0o755)  # noqa: S103 - mkdtemp's 0700 would hide the export from CI readers
        retired = None
        if target.exists():
            retired = target.parent / f".{target.name}.old-{os.getpid()}"
            os.rename(target, retired)
        try:
            os.rename(staging, target)
        except OSError:
            if retired is not None:
                os.rename(retired, target)  # put the previous preview back
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)
