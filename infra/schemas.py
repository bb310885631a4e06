"""Where third-party schemas are read from: Saleor's GraphQL schemas and operators' CRDs.

They are not part of this repository. ``CMP_SCHEMA_DIR`` names a directory laid out as
``saleor/saleor-<version>.graphql``, ``external-secrets/*.yaml``, ``prometheus-operator/*.yaml`` (any CRD
file works: CRDs are found by their content). The Makefile and .ci/run set it; with it unset, each check
that needs a schema is skipped with one line saying so, and everything else still runs.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

ENV = "CMP_SCHEMA_DIR"


def schema_dir() -> Path | None:
    """The configured schema directory, or None when unset. A set but missing directory is an error:
    a typo should not silently turn every check off."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"{ENV}={value}: no such directory")
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
    return f"schema: {what} not checked: {ENV} is not set (point it at a directory holding the schemas)"


def crd_schemas(served_only: bool = True) -> dict[tuple[str, str], dict[str, Any]]:
    """``(apiVersion, kind) -> openAPIV3Schema`` of every CRD version under the schema directory."""
    root = schema_dir()
    return {} if root is None else _crd_schemas(root, served_only)


@functools.cache
def _crd_schemas(root: Path, served_only: bool) -> dict[tuple[str, str], dict[str, Any]]:
    import yaml

    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(root.rglob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
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
