"""Names and labels shared by every component, so a rendered object names what a GitOps tree would."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

PROJECT = "cmp-platform"
TYPE_PREFIX = "cmp:platform"
NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by Kubernetes on every namespace
CONFIG_CHECKSUM_ANNOTATION = "checksum/config"
SERVICE_PORT = 8000


def type_token(component: str) -> str:
    """The Pulumi type token of one of our components (``cmp:platform:ServiceWorkload``)."""
    return f"{TYPE_PREFIX}:{component}"


def selector_labels(name: str) -> dict[str, str]:
    """Labels a Deployment selects on: stable for the object's life (selectors are immutable)."""
    return {NAME_LABEL: name}


def labels(name: str) -> dict[str, str]:
    """Labels on every object of a workload."""
    return {NAME_LABEL: name, PART_OF_LABEL: PROJECT, MANAGED_BY_LABEL: "pulumi"}


def config_map_name(workload: str) -> str:
    return f"{workload}-config"


def secret_name(workload: str) -> str:
    """The Secret an ExternalSecret of the workload writes (and the ExternalSecret's own name)."""
    return f"{workload}-secrets"


def service_url(name: str, namespace: str, port: int = SERVICE_PORT) -> str:
    """In-cluster URL of a Service."""
    return f"http://{name}.{namespace}.svc.cluster.local:{port}"


def checksum(data: Mapping[str, str]) -> str:
    """sha256 of a ConfigMap's data: put on the pod template so a data change rolls the pods."""
    encoded = json.dumps(dict(data), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()
