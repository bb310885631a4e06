"""Ragflow: a Deployment pinned to one node architecture, with an image preflight.

The reference's outage was an arm64-only tag on amd64 nodes (exec format error). Here the image's
platforms (from config, or from the registry) must include the pinned ``kubernetes.io/arch`` before
anything is registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pydantic import BaseModel, ConfigDict

from components.ragflow.config import RagflowConfig
from components.ragflow.oci_platforms import PreflightError, RegistryError, fetch_image, locate, supports
from components.workload.component import network_policy_spec
from infra.config import Peer
from infra.kube import KubeObject
from infra.naming import labels, selector_labels, type_token
from policy.policies import ARCH_LABEL, WAIVER_ANNOTATION  # the labels the policies check, defined once there

SECURITY_EXCEPTION = "ragflow-runs-as-root"  # the policy pack's waiver list names this value
# What the upstream image's entrypoint needs as root, every other capability dropped (NET_RAW, MKNOD,
# SYS_CHROOT, KILL, FOWNER, FSETID, DAC_OVERRIDE, AUDIT_WRITE, SETPCAP, SETFCAP of the runtime's default set).
# Its entrypoint starts `nginx -c /etc/nginx/nginx.conf` as root, then the Python API server and task executors:
RAGFLOW_CAPABILITIES = (
    "NET_BIND_SERVICE",  # nginx's master binds the web port, 80 by default (below 1024)
    "SETGID",  # each nginx worker calls setgid() and initgroups() (setgroups) for nginx.conf's `user`,
    "SETUID",  # then setuid() to it (root in Ragflow's nginx.conf, www-data in Ubuntu's, which switches)
    "CHOWN",  # nginx's master chowns its temp directories (client body, proxy) to that user at start
)


class RagflowArgs(BaseModel):
    model_config = ConfigDict(frozen=True)

    settings: RagflowConfig
    callers_namespace: str = "cmp"  # the stack's namespace: callers when settings.ingressFrom is unset

    @property
    def ingress_from(self) -> list[Peer]:
        if self.settings.ingress_from is not None:
            return list(self.settings.ingress_from)
        return [Peer(namespace=self.callers_namespace)]


@dataclass(frozen=True)
class Resolved:
    """What the preflight knows: the image's platforms and the digest the pods run (None: the tag alone;
    ``known`` False: only the registry knows it, and it cannot be asked here)."""

    platforms: list[str]
    digest: str | None
    known: bool = True


def resolve(settings: RagflowConfig) -> Resolved:
    """The operator's digest, or with ``registryPreflight`` the digest the registry resolves the tag to (the
    index digest of a multi-arch tag). A preview that cannot reach the registry (the offline preview) shows
    the digest as unknown, as `pulumi preview` shows an output not known yet, and checks the arch against
    ``platforms`` from config; `pulumi up` always asks the registry."""
    if not settings.registry_preflight:
        if settings.platforms is not None:
            return Resolved(list(settings.platforms), settings.digest)
        location = locate(settings.image, settings.digest or settings.tag, settings.registry_url)
        return Resolved(fetch_image(location).platforms, settings.digest)
    reference = settings.digest or settings.tag
    try:
        info = fetch_image(locate(settings.image, reference, settings.registry_url))
    except RegistryError as exc:
        unreachable = "unreachable" in exc.rule
        if unreachable and pulumi.runtime.is_dry_run() and settings.platforms is not None:
            return Resolved(list(settings.platforms), settings.digest, known=settings.digest is not None)
        raise
    return Resolved(info.platforms, settings.digest or info.digest)


def preflight(settings: RagflowConfig) -> list[str]:
    """Raise one line naming the image, its platforms and the node arch when they do not match."""
    return _checked(settings, resolve(settings)).platforms


def _checked(settings: RagflowConfig, resolved: Resolved) -> Resolved:
    if not supports(resolved.platforms, settings.node_arch):
        raise PreflightError(
            "ragflow.tag", settings.tag,
            f"image {settings.image_ref} supports {', '.join(resolved.platforms) or 'no platform'}, "
            f"not the node arch linux/{settings.node_arch} (ragflow.nodeArch): pick a tag built for it")
    return resolved


def unknown_output() -> pulumi.Output[Any]:
    """An output whose value is not known during this preview (rendered as unknown, like a built image's digest)."""
    async def value() -> None:
        return None

    async def known() -> bool:
        return False

    return pulumi.Output(set(), value(), known())


def image_ref(settings: RagflowConfig, resolved: Resolved) -> str | pulumi.Output[str]:
    """``image:tag@digest`` (or ``image:tag`` when no digest is pinned); unknown while the digest is."""
    if not resolved.known:
        return unknown_output()
    ref = f"{settings.image}:{settings.tag}"
    return f"{ref}@{resolved.digest}" if resolved.digest else ref


class Ragflow(pulumi.ComponentResource):
    def __init__(self, name: str, args: RagflowArgs, opts: pulumi.ResourceOptions | None = None):
        s = args.settings
        resolved = _checked(s, resolve(s))  # before any registration: a mismatch writes nothing
        self.platforms, self.digest_known = resolved.platforms, resolved.known
        self.image = image_ref(s, resolved)
        super().__init__(type_token("Ragflow"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        meta = {"name": s.name, "namespace": s.namespace, "labels": labels(s.name)}
        ports = {"http": s.http_port, "api": s.api_port}
        self.deployment = KubeObject(s.name, {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {**meta, "annotations": {WAIVER_ANNOTATION: SECURITY_EXCEPTION}},
            "spec": self._spec(s, ports, self.image)}, opts=child)
        self.service = KubeObject(s.name, {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(s.name),
            "ports": [{"name": n, "port": p, "targetPort": n, "protocol": "TCP"} for n, p in ports.items()],
        }}, opts=child)
        # Ragflow talks to its own stores (MySQL, Elasticsearch, MinIO, Redis) in its namespace.
        same_namespace = {"to": [{"podSelector": {}}]}
        self.network_policy = KubeObject(s.name, {
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta,
            "spec": network_policy_spec(selector_labels(s.name), s.namespace, args.ingress_from,
                                        list(ports.values()), [same_namespace])}, opts=child)
        self.register_outputs({"image": self.image, "platforms": self.platforms, "node_arch": s.node_arch})

    @staticmethod
    def _spec(s: RagflowConfig, ports: dict[str, int], image: Any) -> dict[str, Any]:
        selector = selector_labels(s.name)
        probe = {"tcpSocket": {"port": "api"}, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 6}
        return {
            "replicas": s.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels(s.name),
                             "annotations": {WAIVER_ANNOTATION: SECURITY_EXCEPTION}},
                "spec": {
                    "nodeSelector": {ARCH_LABEL: s.node_arch},
                    "automountServiceAccountToken": False,
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": s.name,
                        "image": image,
                        "imagePullPolicy": "Always",
                        "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports.items()],
                        "resources": s.resources.manifest(),
                        # Named exception: Ragflow's image needs root (see the annotation); it keeps only
                        # the capabilities of RAGFLOW_CAPABILITIES.
                        "securityContext": {"runAsUser": 0, "runAsNonRoot": False,
                                            "allowPrivilegeEscalation": False,
                                            "capabilities": {"drop": ["ALL"],
                                                             "add": list(RAGFLOW_CAPABILITIES)},
                                            "seccompProfile": {"type": "RuntimeDefault"}},
                        "startupProbe": {**probe, "failureThreshold": 60},
                        "livenessProbe": probe,
                        "readinessProbe": {**probe, "periodSeconds": 5},
                    }],
                },
            },
        }
