"""ServiceWorkload: the hardened building block every small service of the platform is deployed with.

One component renders the objects a GitOps base held for a service: ServiceAccount, ConfigMap,
ExternalSecret (ESO, from the Vault path table), Deployment, Service :8000, a deny-by-default
NetworkPolicy and, with more than one replica, a PodDisruptionBudget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.vault.paths import SeedPath
from components.vault.seeds import SecretRevision
from components.workload.config import ServiceSettings
from infra.config import Peer, Resources, check_image, dns_label
from infra.kube import KubeObject
from infra.naming import (
    CONFIG_CHECKSUM_ANNOTATION,
    NAMESPACE_NAME_LABEL,
    SERVICE_PORT,
    checksum,
    config_map_name,
    labels,
    secret_name,
    selector_labels,
    service_url,
    type_token,
)

ESO_API_VERSION = "external-secrets.io/v1"
RUN_AS_USER = 10001
# The revision of the Vault secrets a workload reads (components.vault.seeds.SecretRevision): on the pod
# template, so a rotation rolls the pods, and on the ExternalSecret, whose annotation change makes External
# Secrets sync at once instead of at its next refresh.
SECRET_REVISION_ANNOTATION = "cmp.platform/secret-revision"
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")


# ---------------------------------------------------------------------------------------------------------
# NetworkPolicy building blocks (shared with Ragflow)


def peer_selector(peer: Peer, own_namespace: str) -> dict[str, Any]:
    """A NetworkPolicyPeer for pods in a namespace (matched by its immutable name label)."""
    selector: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: peer.namespace or own_namespace}}}
    if peer.pod_labels:
        selector["podSelector"] = {"matchLabels": dict(peer.pod_labels)}
    return selector


def tcp_ports(ports: Sequence[int]) -> list[dict[str, Any]]:
    return [{"port": int(port), "protocol": "TCP"} for port in ports]


def dns_egress() -> dict[str, Any]:
    """Cluster DNS: kube-dns in kube-system on 53/UDP and 53/TCP."""
    return {
        "to": [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    }


def external_https_egress() -> dict[str, Any]:
    """HTTPS to addresses outside the cluster's private ranges (SaaS APIs, JWKS)."""
    return {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}], "ports": tcp_ports([443])}


def peer_egress(peer: Peer, own_namespace: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"to": [peer_selector(peer, own_namespace)]}
    if peer.ports:
        rule["ports"] = tcp_ports(peer.ports)
    return rule


def network_policy_spec(selector: Mapping[str, str], namespace: str, ingress_from: Sequence[Peer],
                        ingress_ports: Sequence[int], egress: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Deny by default (both policy types), then the declared ingress, DNS and the declared egress."""
    ingress = []
    for peer in ingress_from:
        ingress.append({"from": [peer_selector(peer, namespace)],
                        "ports": tcp_ports(peer.ports or ingress_ports)})
    spec: dict[str, Any] = {
        "podSelector": {"matchLabels": dict(selector)},
        "policyTypes": ["Ingress", "Egress"],
        "egress": [dns_egress(), *egress],
    }
    if ingress:
        spec["ingress"] = ingress
    return spec


# ---------------------------------------------------------------------------------------------------------


class ServiceWorkloadArgs(BaseModel):
    """What one service needs; the pod hardening is not optional."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    namespace: str
    image: Any  # str, or a pulumi Output[str] of a digest-pinned ref from an image build
    replicas: int = Field(ge=1)
    resources: Resources
    env: dict[str, str] = Field(default_factory=dict)
    secret_path: SeedPath | None = None
    secret_keys: tuple[str, ...] | None = None  # default: every key of secret_path
    secret_revision: SecretRevision | None = None  # of secret_path, from VaultSecretSeeds.revisions
    cluster_secret_store: str = "vault-backend"
    port: int = SERVICE_PORT
    automount_service_account_token: bool = False
    ingress_from: tuple[Peer, ...] = ()
    egress: tuple[dict[str, Any], ...] = ()  # NetworkPolicyEgressRules beyond DNS
    protect_secrets: bool = False
    liveness_path: str = "/healthz"
    readiness_path: str = "/readyz"

    @field_validator("name", "namespace", "cluster_secret_store")
    @classmethod
    def _labels(cls, value: str) -> str:
        return dns_label(value)

    @field_validator("image")
    @classmethod
    def _image(cls, value: Any) -> Any:
        return check_image(value) if isinstance(value, str) else value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not isinstance(item, str):
                raise ValueError(f"env {key} must be a string (ConfigMap data), got {type(item).__name__}")
        return value

    @model_validator(mode="after")
    def _keys_exist(self) -> ServiceWorkloadArgs:
        if self.secret_keys is not None:
            if self.secret_path is None:
                raise ValueError("secret_keys given without secret_path")
            known = {k.name for k in self.secret_path.keys}
            for key in self.secret_keys:
                if key not in known:
                    raise ValueError(f"{self.secret_path.mount}/{self.secret_path.path} has no key {key!r} "
                                     f"(keys: {', '.join(sorted(known))})")
        return self

    @model_validator(mode="after")
    def _revision_needs_path(self) -> ServiceWorkloadArgs:
        if self.secret_revision is not None and self.secret_path is None:
            raise ValueError("secret_revision given without secret_path")
        return self

    @property
    def revision_annotations(self) -> dict[str, Any]:
        return {} if self.secret_revision is None else {SECRET_REVISION_ANNOTATION: self.secret_revision.text}

    @property
    def selected_secret_keys(self) -> tuple[str, ...]:
        if self.secret_path is None:
            return ()
        return self.secret_keys if self.secret_keys is not None else tuple(k.name for k in self.secret_path.keys)


class ServiceWorkload(pulumi.ComponentResource):
    """A hardened service Deployment with its config, secrets, Service, NetworkPolicy and PDB."""

    def __init__(self, name: str, args: ServiceWorkloadArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("ServiceWorkload"), name, None, opts)
        self.args = args
        child = pulumi.ResourceOptions(parent=self)
        meta = self._meta

        self.service_account = KubeObject(args.name, {
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(args.name),
            "automountServiceAccountToken": args.automount_service_account_token}, opts=child)
        self.config_map = KubeObject(config_map_name(args.name), {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(config_map_name(args.name)),
            "data": dict(args.env)}, opts=child)
        self.external_secret = self._external_secret() if args.secret_path else None
        self.deployment = KubeObject(args.name, {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(args.name),
            "spec": self._deployment_spec()},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[r for r in (self.config_map, self.external_secret)
                                                                 if r is not None]))
        self.service = KubeObject(args.name, {"apiVersion": "v1", "kind": "Service", "metadata": meta(args.name),
                                              "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(args.name),
            "ports": [{"name": "http", "port": args.port, "targetPort": "http", "protocol": "TCP"}],
        }}, opts=child)
        self.network_policy = KubeObject(args.name, {
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta(args.name),
            "spec": network_policy_spec(selector_labels(args.name), args.namespace, args.ingress_from,
                                        [args.port], args.egress)}, opts=child)
        self.pdb = None
        if args.replicas > 1:
            self.pdb = KubeObject(args.name, {
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(args.name),
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(args.name)}}}, opts=child)

        self.url = service_url(args.name, args.namespace, args.port)
        self.register_outputs({"url": self.url, "deployment": args.name,
                               "config_map": config_map_name(args.name),
                               "secret": secret_name(args.name) if args.secret_path else None})

    def _meta(self, name: str) -> dict[str, Any]:
        return {"name": name, "namespace": self.args.namespace, "labels": labels(self.args.name)}

    def _external_secret(self) -> KubeObject:
        args = self.args
        assert args.secret_path is not None
        data = [{"secretKey": args.secret_path.key(key).env_name,
                 "remoteRef": {"key": args.secret_path.path, "property": key}}
                for key in args.selected_secret_keys]
        metadata = self._meta(secret_name(args.name))
        if args.revision_annotations:
            metadata["annotations"] = args.revision_annotations
        return KubeObject(secret_name(args.name), {
            "apiVersion": ESO_API_VERSION, "kind": "ExternalSecret", "metadata": metadata,
            "spec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"name": args.cluster_secret_store, "kind": "ClusterSecretStore"},
                "target": {"name": secret_name(args.name), "creationPolicy": "Owner"},
                "data": data,
            }},
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect_secrets,
                                        depends_on=[args.secret_revision.seed] if args.secret_revision else None))

    def _deployment_spec(self) -> dict[str, Any]:
        args = self.args
        env_from: list[dict[str, Any]] = [{"configMapRef": {"name": config_map_name(args.name)}}]
        if args.secret_path:
            env_from.append({"secretRef": {"name": secret_name(args.name)}})
        container = {
            "name": args.name,
            "image": args.image,
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": "http", "containerPort": args.port, "protocol": "TCP"}],
            "envFrom": env_from,
            "resources": args.resources.manifest(),
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": RUN_AS_USER,
                "runAsGroup": RUN_AS_USER,
                "readOnlyRootFilesystem": True,
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "livenessProbe": {"httpGet": {"path": args.liveness_path, "port": "http"},
                              "initialDelaySeconds": 5, "periodSeconds": 10, "timeoutSeconds": 2,
                              "failureThreshold": 3},
            "readinessProbe": {"httpGet": {"path": args.readiness_path, "port": "http"},
                               "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 3},
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - an emptyDir, not host /tmp
        }
        selector = selector_labels(args.name)
        return {
            "replicas": args.replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels(args.name),
                             "annotations": {CONFIG_CHECKSUM_ANNOTATION: checksum(args.env),
                                             **args.revision_annotations}},
                "spec": {
                    "serviceAccountName": args.name,
                    "automountServiceAccountToken": args.automount_service_account_token,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": RUN_AS_USER,
                                        "fsGroup": RUN_AS_USER, "seccompProfile": {"type": "RuntimeDefault"}},
                    "topologySpreadConstraints": [{
                        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": selector}}],
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        }


class ServiceArgs(BaseModel):
    """What every platform service component takes; each service narrows ``settings`` and adds its own."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    namespace: str
    settings: ServiceSettings
    control_plane_url: str
    cluster_secret_store: str
    debug: bool = False
    protect: bool = False
    image: Any = None  # a built, digest-pinned ref (str or Output) overriding settings.image
    # VaultSecretSeeds.revisions: per Vault path, the revision whose change rolls the pods reading it.
    secret_revisions: dict[str, SecretRevision] = Field(default_factory=dict)


def service_workload_args(name: str, args: ServiceArgs, *, env: dict[str, str], secret_path: SeedPath,
                          egress_peers: Sequence[Peer], **extra: Any) -> ServiceWorkloadArgs:
    """Args of one platform service from its component args; ``args.image`` (a built, digest-pinned ref,
    possibly an Output) replaces ``settings.image`` when given."""
    s = args.settings
    egress = [peer_egress(peer, args.namespace) for peer in egress_peers]
    if s.external_https:
        egress.append(external_https_egress())
    return ServiceWorkloadArgs(
        name=name, namespace=args.namespace, image=s.image if args.image is None else args.image,
        replicas=s.replicas, resources=s.resources, env=env, secret_path=secret_path,
        cluster_secret_store=args.cluster_secret_store, ingress_from=tuple(s.ingress_from), egress=tuple(egress),
        protect_secrets=args.protect, secret_revision=args.secret_revisions.get(secret_path.path), **extra)
