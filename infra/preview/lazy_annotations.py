"""Load pulumi_kubernetes' typed kind modules with postponed annotations (PEP 563), preview process only.

Why: those generated modules (``pulumi_kubernetes.core.v1._inputs`` alone is 42k lines) spend most of
their import time building ``typing`` objects for annotations (``Optional[pulumi.Input['XArgs']]``
on every property and parameter) that nothing reads at import. Compiled with
``from __future__ import annotations`` the annotations stay strings; the Pulumi SDK resolves them
with ``typing.get_type_hints`` when it needs a type (output translation), as it does for any
program written with that future import. Same source, same classes, same behaviour.

Scope: only ``pulumi_kubernetes.<group>.<version>...`` (the typed kinds, which
``import pulumi_kubernetes`` never loads); the SDK core, ``pulumi_kubernetes`` itself and every other
package load as usual. The real ``pulumi preview/up`` does not use this (nothing else installs it).
The code objects are cached beside the SDK's own bytecode as ``<module>.<tag>.lazy-annotations.pyc``,
keyed like a .pyc on the source's mtime and size, so only the first run after an install compiles.
"""

from __future__ import annotations
import __future__

import importlib.abc
import importlib.machinery
import importlib.util
import marshal
import os
import sys
from pathlib import Path

PACKAGE = "pulumi_kubernetes"
CACHE_SUFFIX = ".lazy-annotations.pyc"
_FLAGS = __future__.annotations.compiler_flag


def in_scope(fullname: str) -> bool:
    """``pulumi_kubernetes.core.v1`` and below; not ``pulumi_kubernetes`` nor its top-level helpers."""
    parts = fullname.split(".")
    return len(parts) >= 3 and parts[0] == PACKAGE and parts[1] not in {"_utilities", "provider"}


def cache_path(source: str) -> Path:
    """``pkg/__pycache__/<name>.<cache tag>.lazy-annotations.pyc``: never read by the normal importer."""
    src = Path(source)
    return src.parent / "__pycache__" / f"{src.stem}.{sys.implementation.cache_tag}{CACHE_SUFFIX}"


def _header(source: str) -> bytes:
    st = os.stat(source)
    mtime, size = int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF
    return importlib.util.MAGIC_NUMBER + mtime.to_bytes(4, "little") + size.to_bytes(4, "little")


def cache_usable(source: str) -> bool:
    """A valid cached code object exists, or one can be written: otherwise every run would compile
    (seconds), slower than the SDK's own .pyc files, so the module loads the normal way."""
    cached, header = cache_path(source), _header(source)
    try:
        with cached.open("rb") as f:
            if f.read(len(header)) == header:
                return True
    except OSError:
        pass
    folder = cached.parent if cached.parent.is_dir() else cached.parent.parent
    return os.access(folder, os.W_OK)


class LazyAnnotationsLoader(importlib.machinery.SourceFileLoader):
    """A SourceFileLoader whose code objects are compiled with postponed annotations."""

    def get_code(self, fullname: str):
        source = self.get_filename(fullname)
        header, cached = _header(source), cache_path(source)
        try:
            data = cached.read_bytes()
            if data[:len(header)] == header:
                return marshal.loads(data[len(header):])  # noqa: S302 (our own bytecode cache, as trusted as a .pyc)
        except (OSError, ValueError, EOFError):
            pass
        code = compile(self.get_data(source), source, "exec", flags=_FLAGS, dont_inherit=True)
        try:  # best effort, as with .pyc files: a read-only install just compiles every time
            cached.parent.mkdir(exist_ok=True)
            tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
            tmp.write_bytes(header + marshal.dumps(code))
            os.replace(tmp, cached)
        except OSError:
            pass
        return code


class LazyAnnotationsFinder(importlib.abc.MetaPathFinder):
    """Finds in-scope modules the normal way, then swaps in the lazy-annotations loader."""

    def find_spec(self, fullname, path, target=None):
        if not in_scope(fullname):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if (spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader
                or not cache_usable(spec.loader.path)):
            return spec
        spec.loader = LazyAnnotationsLoader(spec.loader.name, spec.loader.path)
        return spec


def install() -> None:
    """Put the finder first on sys.meta_path (idempotent). Modules already imported are unaffected."""
    if not any(isinstance(f, LazyAnnotationsFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, LazyAnnotationsFinder())
