"""Kubernetes objects from a recording, laid out like pulumi-kubernetes' renderYamlToDirectory.

File names follow the provider: ``<apiVersion with / and : as _>-<kind lower>-<namespace or
default>-<name>.yaml`` under ``1-manifest/``, CustomResourceDefinitions under ``0-crd/``. A
``kustomization.yaml`` lists them so Argo CD or ``kubectl kustomize`` take the folder as it is.

A ``*Patch`` resource (pulumi-kubernetes ``DeploymentPatch``) is not a whole object: it patches a
live object that this folder does not own, so a kustomize ``patches:`` entry (which only patches
objects of the same build) would do nothing. It is exported under ``patches/`` as the partial object
it is, listed among the resources and annotated for Argo CD server-side apply, which is how a
partial manifest updates an existing object (``kubectl apply --server-side`` outside Argo CD).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.recording import RecordedResource, Recording
from policy.policies import kind_of

CRD_DIR = "0-crd"
MANIFEST_DIR = "1-manifest"
PATCH_DIR = "patches"
ARGOCD_SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
SSA_SYNC_OPTION = "ServerSideApply=true"
_HEAD = ("apiVersion", "kind", "metadata")


@dataclass
class Manifest:
    """One Kubernetes object (or partial object, for a patch) and where it goes."""

    path: str  # relative to manifests/
    obj: dict[str, Any]
    resource: RecordedResource
    is_patch: bool = False

    @property
    def ref(self) -> str:
        meta = self.obj.get("metadata") or {}
        ns = meta.get("namespace")
        return f"{self.obj.get('kind')} {ns + '/' if ns else ''}{meta.get('name')}"




def _api_version(resource_type: str) -> str:
    group_version = resource_type.split(":")[1]
    return group_version.removeprefix("core/")


def _ordered(obj: dict[str, Any]) -> dict[str, Any]:
    """apiVersion, kind, metadata first (as kubectl writes them), then the rest in program order."""
    return {**{k: obj[k] for k in _HEAD if k in obj}, **{k: v for k, v in obj.items() if k not in _HEAD}}


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def render_path(obj: dict[str, Any]) -> str:
    """The provider's renderPathForResource: only apiVersion is sanitised; namespace defaults to 'default'."""
    meta = obj.get("metadata") or {}
    api = str(obj.get("apiVersion", "")).replace("/", "_").replace(":", "_")
    kind = str(obj.get("kind", ""))
    name = f"{api}-{kind.lower()}-{meta.get('namespace') or 'default'}-{meta.get('name')}.yaml"
    return f"{CRD_DIR if kind == 'CustomResourceDefinition' else MANIFEST_DIR}/{name}"


def manifest_of(resource: RecordedResource) -> Manifest | None:
    """The Kubernetes object a recorded resource stands for, or None when it is not one."""
    kind = kind_of(resource.type)
    if kind is None or not resource.custom or kind.endswith("List"):
        return None
    obj = _drop_none(dict(resource.inputs))
    is_patch = kind.endswith("Patch")
    obj.setdefault("apiVersion", _api_version(resource.type))
    obj.setdefault("kind", kind.removesuffix("Patch") if is_patch else kind)
    if is_patch:
        obj["kind"] = str(obj["kind"]).removesuffix("Patch")
    meta = dict(obj.get("metadata") or {})
    meta.setdefault("name", resource.name)
    if is_patch:
        annotations = dict(meta.get("annotations") or {})
        annotations.setdefault(ARGOCD_SYNC_OPTIONS, SSA_SYNC_OPTION)
        meta["annotations"] = annotations
    obj["metadata"] = meta
    obj = _ordered(obj)
    path = render_path(obj)
    if is_patch:
        path = f"{PATCH_DIR}/{path.split('/', 1)[1]}"
    return Manifest(path=path, obj=obj, resource=resource, is_patch=is_patch)


class DuplicateManifestError(ValueError):
    """Two resources render to one file: they are the same Kubernetes object twice."""


def manifests_of(recording: Recording) -> list[Manifest]:
    out: dict[str, Manifest] = {}
    for resource in recording.resources:
        manifest = manifest_of(resource)
        if manifest is None:
            continue
        if manifest.path in out:
            raise DuplicateManifestError(
                f"{manifest.ref} is declared twice ({out[manifest.path].resource.urn} and {resource.urn})")
        out[manifest.path] = manifest
    return sorted(out.values(), key=lambda m: m.path)


def kustomization(manifests: list[Manifest]) -> dict[str, Any]:
    """Every file, CRDs first, then objects, then the server-side-apply partial objects."""
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": [m.path for m in manifests]}
