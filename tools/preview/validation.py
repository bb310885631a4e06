"""Schema checks for rendered manifests: Kubernetes OpenAPI (kubernetes-validate's strict schemas, the
version from config) and the operators' CRDs (External Secrets, prometheus-operator) read from the schema
directory (infra.schemas): each object against the served version it names.

Validators are built once per (version, kind) and reused: kubernetes_validate.validate() reloads
the whole definitions file on every call, which dominated the preview's run time.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.schemas import ENV, crd_schema, schema_dir


@dataclass(frozen=True)
class SchemaViolation:
    """What is wrong, where: the object, the field path and the schema rule."""

    obj: str
    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.obj}: {self.path or '<root>'}: {self.message} (rule: {self.rule})"


def _ref(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('apiVersion')} {obj.get('kind')} {ns + '/' if ns else ''}{meta.get('name')}"


def _path(error: Any) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _violation(obj: dict[str, Any], error: Any) -> SchemaViolation:
    message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
    return SchemaViolation(_ref(obj), _path(error), str(error.validator), message)


@functools.cache
def _schema_dir(version: str) -> str:
    """The newest kubernetes-validate schema set not newer than ``version`` (``1.33`` -> ``v1.33.0-...``)."""
    from kubernetes_validate import utils
    from packaging.version import Version

    wanted = Version(version.removeprefix("v"))
    candidates = [v for v in utils.all_versions()
                  if Version(utils.major_minor(v)) <= Version(f"{wanted.major}.{wanted.minor}")]
    if not candidates:
        raise ValueError(f"kubernetesVersion {version!r}: kubernetes-validate has no schemas that old "
                         f"(oldest {utils.all_versions()[0]})")
    return f"v{candidates[-1]}-local-strict"


@functools.cache
def _definitions(schema_dir: str) -> Any:
    from kubernetes_validate import utils

    return utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", schema_dir)


@functools.cache
def _k8s_validator(version: str, api_version: str, kind: str) -> Any:
    import re

    import jsonschema
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    schema_dir = _schema_dir(version)
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{api}.json",
                                       schema_dir)
    except FileNotFoundError:
        return None
    registry = Resource.from_contents(_definitions(schema_dir)) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _strict(schema: Any) -> Any:
    """Unknown fields are errors, as with kubectl's default --validate=strict: close every object
    schema that lists properties, unless it preserves unknown fields."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in {"default", "example", "enum"}:
            out[key] = value
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _strict(sub) for name, sub in value.items()}
        else:
            out[key] = _strict(value)
    if (isinstance(out.get("properties"), dict) and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@functools.cache
def _crd_validator(root: str, api_version: str, kind: str) -> Any:
    """``root``: the schema directory the validator was built from (part of the cache key)."""
    import jsonschema

    schema = crd_schema(api_version, kind)
    return None if schema is None else jsonschema.Draft7Validator(_strict(schema))


def _is_builtin(api_version: str) -> bool:
    """Kubernetes' own API groups: no dot in the group (``v1``, ``apps/v1``) or a ``*.k8s.io`` group."""
    group = api_version.rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def unchecked_kinds(objects: Iterable[dict[str, Any]]) -> list[str]:
    """Custom kinds that cannot be checked because no schema directory is configured."""
    if schema_dir() is not None:
        return []
    return sorted({f"{o.get('kind')} ({o.get('apiVersion')})" for o in objects
                   if not _is_builtin(str(o.get("apiVersion")))})


def _first_error(validator: Any, obj: dict[str, Any], partial: bool) -> Any:
    import jsonschema

    errors = validator.iter_errors(obj)
    if partial:
        errors = (e for e in errors if e.validator != "required")
    return jsonschema.exceptions.best_match(errors)


def validate_object(obj: dict[str, Any], kubernetes_version: str, *, partial: bool = False) -> SchemaViolation | None:
    """The first schema violation of one object, or None. Unknown kinds are a violation too.
    ``partial``: a server-side-apply patch, where required fields live on the object being patched."""
    api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
    if _is_builtin(api_version):
        validator = _k8s_validator(kubernetes_version, api_version, kind)
    elif (root := schema_dir()) is None:
        return None  # reported once by unchecked_kinds()
    else:
        validator = _crd_validator(str(root), api_version, kind)
    if validator is None:
        return SchemaViolation(_ref(obj), "", "schema", f"no schema for {kind} {api_version} in Kubernetes "
                               f"{kubernetes_version} nor among the CRDs in {ENV}")
    error = _first_error(validator, obj, partial)
    return None if error is None else _violation(obj, error)


def validate_all(objects: Iterable[tuple[dict[str, Any], bool]], kubernetes_version: str) -> list[SchemaViolation]:
    """(object, is_partial) pairs -> every object's first violation. Stacks render many identical objects:
    each distinct one is checked once per process."""
    root = schema_dir()
    found = []
    for obj, partial in objects:
        # The schema directory is part of the key: CRD verdicts depend on it.
        key = (json.dumps(obj, sort_keys=True), kubernetes_version, partial, root)
        if key not in _VERDICTS:
            if len(_VERDICTS) >= _MAX_VERDICTS:
                _VERDICTS.clear()
            _VERDICTS[key] = validate_object(obj, kubernetes_version, partial=partial)
        if (verdict := _VERDICTS[key]) is not None:
            found.append(verdict)
    return found


_VERDICTS: dict[tuple[str, str, bool, Path | None], SchemaViolation | None] = {}
_MAX_VERDICTS = 4096
