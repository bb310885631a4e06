"""Derived copies kept between processes (parsed schemas), under ``CMP_CACHE_DIR``, else ``~/.cache/cmp-platform``.

An entry is named by the sha256 of everything it was derived from, so a changed input is simply another entry.
A missing, damaged or unwritable entry only means deriving the value again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    return Path(os.environ.get("CMP_CACHE_DIR") or Path.home() / ".cache" / "cmp-platform")


def entry_path(namespace: str, key: bytes) -> Path:
    return cache_dir() / namespace / f"{hashlib.sha256(key).hexdigest()}.json"


def cached_json(namespace: str, key: bytes, make: Callable[[], Any]) -> Any:
    """The JSON value kept for ``key`` in ``namespace``, or ``make()``'s, which is then kept (written to a
    temporary file and renamed, so a concurrent reader sees the whole entry or none)."""
    path = entry_path(namespace, key)
    with contextlib.suppress(OSError, ValueError):
        return json.loads(path.read_bytes())
    value = make()
    partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(value))
        partial.replace(path)
    except (OSError, TypeError):  # a read-only home, or a value JSON cannot hold: not kept
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return value
