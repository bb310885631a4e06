"""Where third-party schemas are read from: Saleor's GraphQL schemas and operators' CRDs.

They are not part of this repository. They are read from, in this order:

1. ``CMP_SCHEMA_DIR``, a directory laid out as ``saleor/saleor-<version>.graphql``, ``external-secrets/*.yaml``,
   ``prometheus-operator/*.yaml`` (any CRD file works: CRDs are found by their content);
2. else the copy ``make schemas`` fetched from upstream into the cache directory (``fetched_dir()``), written
   there only once every file matched its pinned sha256 (infra/schema_sources.py);
3. else none: each check that needs a schema is skipped with one line saying so, and everything else runs.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

from infra.cache import cache_dir, cached_json
from infra.schema_sources import pins_id

ENV = "CMP_SCHEMA_DIR"


class SchemaDirError(FileNotFoundError):
    """``CMP_SCHEMA_DIR`` names no directory: one line naming the setting and the fix."""


def fetched_dir() -> Path:
    """Where ``make schemas`` keeps the upstream files of the pinned table (a new table, a new folder)."""
    return cache_dir() / "schemas" / pins_id()


def schema_dir() -> Path | None:
    """The schema directory in use, or None when there is none. A set but missing ``CMP_SCHEMA_DIR`` is an
    error: a typo should not silently turn every check off."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        fetched = fetched_dir()
        return fetched if fetched.is_dir() else None
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise SchemaDirError(f"{ENV}={value}: no such directory: point it at a directory holding the schemas, "
                             "or unset it (then `make schemas` fetches them, or the checks that need them are "
                             "skipped)")
    return path


def find_schema(relative: str) -> Path | None:
    """``<schema dir>/<relative>`` if the directory is set and the file exists, else None."""
    root = schema_dir()
    if root is None:
        return None
    path = root / relative
    return path if path.is_file() else None


def not_configured(what: str) -> str:
    """The one line a skipped check prints."""
    return f"schema: {what} not checked: no schema directory ({ENV} is unset and `make schemas` has not run)"


def crd_schemas(served_only: bool = True) -> dict[tuple[str, str], dict[str, Any]]:
    """``(apiVersion, kind) -> openAPIV3Schema`` of every CRD version under the schema directory."""
    root = schema_dir()
    return {} if root is None else _crd_schemas(root, served_only)


def crd_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    """The served schema of one custom kind, or None; parses only the files that declare that kind (the
    operators' CRD files are large, and most runs need two or three kinds)."""
    root = schema_dir()
    return None if root is None else _crd_schema(root, api_version, kind)


@functools.cache
def _crd_schema(root: Path, api_version: str, kind: str) -> dict[str, Any] | None:
    declares = re.compile(rf"^\s+kind:\s+{re.escape(kind)}\s*$", re.M)
    paths = [p for p in sorted(root.rglob("*.y*ml")) if declares.search(p.read_text())]
    return _parse(paths, served_only=True).get((api_version, kind))


@functools.cache
def _crd_schemas(root: Path, served_only: bool) -> dict[tuple[str, str], dict[str, Any]]:
    return _parse(sorted(root.rglob("*.y*ml")), served_only)


def _documents(path: Path) -> list[Any]:
    """A YAML file's documents, through a JSON copy kept in the cache by the file's sha256: the operators'
    CRD files take a few hundred ms to parse as YAML and a few ms to load as JSON."""
    import yaml

    raw = path.read_bytes()
    return cached_json("yaml-as-json", raw,
                       lambda: list(yaml.load_all(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))))


def _parse(paths: list[Path], served_only: bool) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in paths:
        for doc in _documents(path):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec.get("versions", []):
                if served_only and not version.get("served", False):
                    continue
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if schema:
                    found[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return found
