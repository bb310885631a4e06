"""A machine-wide lock for work that must not run twice at once on one checkout (the image build).

xdist workers, and other pytest runs in the same working tree, share build/images: two buildah builds of the
same base at once break each other. ``exclusive(name)`` holds an advisory lock (flock) on a file in the
temporary directory named after this checkout and ``name``; the kernel releases it if the holder dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]


def lock_path(name: str) -> Path:
    digest = hashlib.sha256(str(CHECKOUT).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"cmp-{name}-{digest}.lock"


@contextmanager
def exclusive(name: str) -> Iterator[None]:
    with lock_path(name).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
