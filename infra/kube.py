"""Kubernetes objects as the Kubernetes provider's own resources, declared as the manifests they are.

A pulumi_kubernetes typed class (``k8s.apps.v1.Deployment`` ...) registers three things: the provider's
type token (``kubernetes:<group>/<version>:<Kind>``, group ``core`` for ``v1``, ``<Kind>Patch`` for a
server-side-apply patch), the manifest's top-level fields as properties, and the SDK's plugin version
as an option. ``KubeObject`` registers the same three from the manifest itself, so the engine, the
provider and the state see no difference (tests/infra/test_kube.py compares both registrations).

Why not the typed classes: the program writes every object as the plain manifest anyway (the form the
preview checks against the strict OpenAPI schema and exports for GitOps), and loading the typed kind
modules (generated input and output classes for every kind of a group version) takes the offline preview
past its time budget (docs/preview.md) for nothing the program reads. Not carried over: the typed
classes' aliases to pre-``v1`` API versions (``extensions/v1beta1`` ...), which only matter to state
written by those versions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from infra.plugins import plugin_version

CORE_GROUP = "core"


def kubernetes_type_token(api_version: str, kind: str, *, patch: bool = False) -> str:
    """The Kubernetes provider's type token: ``v1`` -> ``kubernetes:core/v1:<Kind>``; ``apps/v1`` ->
    ``kubernetes:apps/v1:<Kind>``; CRDs keep their group (``external-secrets.io/v1``)."""
    if not api_version or api_version.count("/") > 1 or not kind:
        raise ValueError(f"apiVersion {api_version!r} kind {kind!r}: expected <version> or <group>/<version> "
                         "and a kind")
    group_version = api_version if "/" in api_version else f"{CORE_GROUP}/{api_version}"
    return f"kubernetes:{group_version}:{kind}{'Patch' if patch else ''}"


class KubeObject(pulumi.CustomResource):
    """One Kubernetes object (or, with ``patch=True``, a server-side-apply patch of an existing one).

    ``manifest`` is the object as kubectl would take it: ``apiVersion``, ``kind``, ``metadata`` and the
    kind's own fields (``spec``, ``data``, ``automountServiceAccountToken`` ...), values may be Outputs.
    Each field is also an output attribute of the same name (``obj.metadata``), as the provider returns it.
    """

    def __init__(self, resource_name: str, manifest: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None,
                 *, patch: bool = False):
        api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
        token = kubernetes_type_token(str(api_version or ""), str(kind or ""), patch=patch)
        opts = pulumi.ResourceOptions.merge(pulumi.ResourceOptions(version=plugin_version("pulumi_kubernetes")), opts)
        super().__init__(token, resource_name, dict(manifest), opts)
