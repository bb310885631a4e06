"""Kubernetes objects from a recording, laid out like pulumi-kubernetes' renderYamlToDirectory.

File names follow the provider: ``<apiVersion with / and : as _>-<kind lower>-<namespace or
default>-<name>.yaml`` under ``1-manifest/``, CustomResourceDefinitions under ``0-crd/``. A
``kustomization.yaml`` lists them so Argo CD or ``kubectl kustomize`` take the folder as it is.

A ``*Patch`` resource (pulumi-kubernetes ``DeploymentPatch``) is not a whole object: it patches a
live object that this folder does not own, so a kustomize ``patches:`` entry (which only patches
objects of the same build) would do nothing. It is exported under ``patches/`` as the partial object
it is, listed among the resources and annotated for Argo CD server-side apply, which is how a
partial manifest updates an existing object (``kubectl apply --server-side`` outside Argo CD).

An object with a value only a deployment knows (a Deployment's image built and pushed by ``pulumi up``
with ``images.build: true``: unknown in any preview) is not deployable as exported: it is left out of
the folder and its ``kustomization.yaml``, and written under ``not-deployable/`` beside it, without the
unknown fields and annotated with what is missing, so nothing applies it by mistake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infra.recording import UNKNOWN, RecordedResource, Recording
from policy.policies import kind_of

CRD_DIR = "0-crd"
MANIFEST_DIR = "1-manifest"
PATCH_DIR = "patches"
NOT_DEPLOYABLE_DIR = "not-deployable"  # beside manifests/, never inside it
NOT_DEPLOYABLE_ANNOTATION = "cmp.platform/not-deployable"
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
    unknown: list[str] = field(default_factory=list)  # field paths only a deployment knows

    @property
    def deployable(self) -> bool:
        return not self.unknown

    @property
    def ref(self) -> str:
        meta = self.obj.get("metadata") or {}
        ns = meta.get("namespace")
        return f"{self.obj.get('kind')} {ns + '/' if ns else ''}{meta.get('name')}"

    def not_deployable(self) -> dict[str, Any]:
        """The object without its unknown fields, annotated with what only a deployment knows."""
        obj = _without_unknowns(self.obj)
        meta = dict(obj.get("metadata") or {})
        meta["annotations"] = {**(meta.get("annotations") or {}), NOT_DEPLOYABLE_ANNOTATION: (
            f"unknown until pulumi up: {', '.join(self.unknown)}")}
        obj["metadata"] = meta
        return _ordered(obj)


def unknown_paths(value: Any, path: str = "") -> list[str]:
    """Field paths (``spec.template.spec.containers[0].image``) whose value the preview cannot know."""
    if value == UNKNOWN:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in unknown_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in unknown_paths(v, f"{path}[{i}]")]
    return []


def _without_unknowns(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_unknowns(v) for k, v in value.items() if v != UNKNOWN}
    if isinstance(value, list):
        return [_without_unknowns(v) for v in value if v != UNKNOWN]
    return value


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
    return Manifest(path=path, obj=obj, resource=resource, is_patch=is_patch, unknown=unknown_paths(obj))


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
    """Every deployable file, CRDs first, then objects, then the server-side-apply partial objects."""
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": [m.path for m in manifests if m.deployable]}


def export_files(manifests: list[Manifest], dump: Any) -> dict[str, str]:
    """The export as relative path -> text: ``manifests/`` (deployable objects and their kustomization) and
    ``not-deployable/`` (objects with unknown fields, for inspection)."""
    files = {(f"manifests/{m.path}" if m.deployable else f"{NOT_DEPLOYABLE_DIR}/{m.path}"):
             dump(m.obj if m.deployable else m.not_deployable()) for m in manifests}
    files["manifests/kustomization.yaml"] = dump(kustomization(manifests))
    return files
