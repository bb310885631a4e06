"""VaultAccess: per-consumer policies, the Kubernetes auth backend with one role per ServiceAccount, and
the ESO ClusterSecretStore that authenticates with the external-secrets role.

Order: policy before the role that carries it, auth backend (and its config) before roles, the ESO role
before the ClusterSecretStore.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_vault as vault
from pydantic import BaseModel, ConfigDict, Field, field_validator

from components.vault.paths import CONNECTOR_CONSUMER, EXTERNAL_SECRETS_CONSUMER, PROVISIONER_CONSUMER
from components.vault.policies import CONSUMERS, Mounts, consumer_policy_hcl
from components.workload.component import ESO_API_VERSION
from infra.config import dns_label
from infra.kube import KubeObject
from infra.naming import labels, type_token

TYPE = type_token("VaultAccess")
TOKEN_TTL_SECONDS = 3600
TOKEN_MAX_TTL_SECONDS = 14400


class RoleBinding(BaseModel):
    """A Vault role bound to exactly one ServiceAccount in one namespace."""

    model_config = ConfigDict(frozen=True)

    role: str
    service_account: str
    namespace: str


class VaultAccessArgs(BaseModel):
    model_config = ConfigDict(frozen=True)

    namespace: str  # the workloads' namespace
    vault_address: str  # as the cluster reaches it (the ClusterSecretStore's server)
    cluster_secret_store: str = "vault-backend"
    secret_mount: str = "secret"
    kv_mount: str = "kv"
    kubernetes_auth_path: str = "kubernetes"
    kubernetes_host: str = "https://kubernetes.default.svc"
    adopt_auth_backend: bool = False
    connector_role: str = CONNECTOR_CONSUMER
    external_secrets_namespace: str = "external-secrets"
    external_secrets_service_account: str = "external-secrets"
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("namespace", "cluster_secret_store", "external_secrets_namespace",
                     "external_secrets_service_account", "connector_role")
    @classmethod
    def _dns(cls, value: str) -> str:
        return dns_label(value)

    @property
    def mounts(self) -> Mounts:
        return Mounts(secret=self.secret_mount, kv=self.kv_mount)

    def bindings(self) -> dict[str, RoleBinding]:
        """consumer -> the role, ServiceAccount and namespace its token is bound to."""
        return {
            CONNECTOR_CONSUMER: RoleBinding(role=self.connector_role, service_account=CONNECTOR_CONSUMER,
                                            namespace=self.namespace),
            PROVISIONER_CONSUMER: RoleBinding(role=PROVISIONER_CONSUMER, service_account=PROVISIONER_CONSUMER,
                                              namespace=self.namespace),
            EXTERNAL_SECRETS_CONSUMER: RoleBinding(role=EXTERNAL_SECRETS_CONSUMER,
                                                   service_account=self.external_secrets_service_account,
                                                   namespace=self.external_secrets_namespace),
        }


def cluster_secret_store_spec(args: VaultAccessArgs) -> dict[str, Any]:
    """Vault provider, KV v2 at the secret mount, Kubernetes auth as the ESO role; usable from our namespace only."""
    eso = args.bindings()[EXTERNAL_SECRETS_CONSUMER]
    return {
        "conditions": [{"namespaces": [args.namespace]}],
        "provider": {
            "vault": {
                "server": args.vault_address,
                "path": args.secret_mount,
                "version": "v2",
                "auth": {
                    "kubernetes": {
                        "mountPath": args.kubernetes_auth_path,
                        "role": eso.role,
                        "serviceAccountRef": {"name": eso.service_account, "namespace": eso.namespace},
                    }
                },
            }
        },
    }


class VaultAccess(pulumi.ComponentResource):
    """Least-privilege access generated from the path table."""

    def __init__(self, name: str, args: VaultAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.policies = {
            consumer: vault.Policy(
                f"vault-policy-{consumer}", name=consumer, policy=consumer_policy_hcl(consumer, args.mounts),
                opts=child,
            )
            for consumer in CONSUMERS
        }
        self.auth_backend, backend_ready = self._auth_backend(args)
        bindings = args.bindings()
        self.roles = {}
        for consumer, binding in bindings.items():
            policy = self.policies[consumer]
            self.roles[consumer] = vault.kubernetes.AuthBackendRole(
                f"vault-role-{binding.role}",
                backend=self.auth_backend.path,
                role_name=binding.role,
                bound_service_account_names=[binding.service_account],
                bound_service_account_namespaces=[binding.namespace],
                token_policies=[policy.name],
                token_ttl=TOKEN_TTL_SECONDS,
                token_max_ttl=TOKEN_MAX_TTL_SECONDS,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, *backend_ready]),
            )
        self.cluster_secret_store = KubeObject(
            "cluster-secret-store",
            {"apiVersion": ESO_API_VERSION, "kind": "ClusterSecretStore",
             "metadata": {"name": args.cluster_secret_store,
                          "labels": {**labels(args.cluster_secret_store), **args.labels}},
             "spec": cluster_secret_store_spec(args)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.roles[EXTERNAL_SECRETS_CONSUMER]]),
        )
        self.register_outputs({
            "policies": list(self.policies),
            "roles": {c: b.role for c, b in bindings.items()},
            "clusterSecretStore": args.cluster_secret_store,
        })

    def _auth_backend(self, args: VaultAccessArgs) -> tuple[pulumi.CustomResource, list[pulumi.Resource]]:
        """Create (and configure) the Kubernetes auth mount, or adopt an existing one as it is."""
        name = f"vault-auth-{args.kubernetes_auth_path}"
        if args.adopt_auth_backend:
            return vault.AuthBackend.get(name, args.kubernetes_auth_path,
                                         opts=pulumi.ResourceOptions(parent=self)), []
        backend = vault.AuthBackend(
            name, type="kubernetes", path=args.kubernetes_auth_path,
            description="cmp-platform workloads and External Secrets",
            opts=pulumi.ResourceOptions(parent=self),
        )
        config = vault.kubernetes.AuthBackendConfig(
            f"vault-auth-{args.kubernetes_auth_path}-config",
            backend=backend.path,
            kubernetes_host=args.kubernetes_host,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return backend, [backend, config]
