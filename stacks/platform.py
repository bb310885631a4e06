"""The platform composition: which components a stack gets and how they are wired.

One function per piece, each reading only its slice of the stack config; ``build`` orders them (the
Ragflow preflight first, so an arch mismatch registers nothing) and exports what operators look up.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.connector_gateway.component import NAME as CONNECTOR_NAME
from components.connector_gateway.component import ConnectorGateway, ConnectorGatewayArgs
from components.gateway_billing.component import GatewayBilling, GatewayBillingArgs
from components.images.component import ServiceImages, ServiceImagesArgs
from components.monitoring.component import Monitoring, MonitoringArgs
from components.provisioner.component import NAME as PROVISIONER_NAME
from components.provisioner.component import Provisioner, ProvisionerArgs
from components.ragflow.component import Ragflow, RagflowArgs
from components.saleor.component import SaleorWebhooks, SaleorWebhooksArgs
from components.vault.access import VaultAccess, VaultAccessArgs
from components.vault.paths import PROVISIONER as PROVISIONER_PATH
from components.vault.paths import SEED_PATHS
from components.vault.program_key import VaultProgramKey
from components.vault.seeds import SecretRevision, VaultSecretSeeds, VaultSecretSeedsArgs
from stacks.config import StackConfig


def service_images(cfg: StackConfig) -> dict[str, Any]:
    """Digest-pinned refs of the images built from service_src (images.build); empty: the configured refs."""
    if not cfg.images.build:
        return {}
    # Known only where the digest is required; `pulumi up` refuses, a preview (the GitOps export) says so.
    unpinned = cfg.images.base_digest_error(cfg.environment, cfg.digests_required)
    if unpinned is not None and not pulumi.runtime.is_dry_run():
        raise unpinned
    if unpinned is not None:
        pulumi.log.warn(f"{unpinned}; `pulumi up` refuses to build until it is set")
    return ServiceImages("service-images", ServiceImagesArgs.from_config(
        cfg.images, require_digest=cfg.digests_required)).refs


def service_args(cfg: StackConfig, image: Any, revisions: dict[str, SecretRevision] | None = None) -> dict[str, Any]:
    """The ServiceArgs fields both services take from the stack (components.workload.ServiceArgs);
    ``revisions`` (VaultSecretSeeds.revisions) roll a service's pods when its Vault secrets change."""
    return {"namespace": cfg.namespace, "control_plane_url": cfg.control_plane_url,
            "cluster_secret_store": cfg.cluster_secret_store, "debug": cfg.debug, "protect": cfg.protected,
            "image": image, "secret_revisions": dict(revisions or {})}


def scraped(cfg: StackConfig, settings: Any) -> Any:
    """A service's settings with Prometheus let in to scrape /metrics when monitoring is on."""
    if not cfg.monitoring.enabled:
        return settings
    return settings.model_copy(update={"ingress_from": [*settings.ingress_from, cfg.monitoring.scraper]})


def connector_gateway(cfg: StackConfig, image: Any = None, revisions: dict[str, SecretRevision] | None = None,
                      ) -> ConnectorGateway:
    return ConnectorGateway("connector-gateway", ConnectorGatewayArgs(
        **service_args(cfg, image, revisions), settings=scraped(cfg, cfg.connector_gateway), vault=cfg.vault))


def provisioner(cfg: StackConfig, image: Any = None, revisions: dict[str, SecretRevision] | None = None) -> Provisioner:
    return Provisioner("provisioner", ProvisionerArgs(
        **service_args(cfg, image, revisions), settings=scraped(cfg, cfg.provisioner), saleor_origin=cfg.saleor.origin,
        saleor_api_url=cfg.saleor.api_url))


def monitoring(cfg: StackConfig, *workloads: str) -> Monitoring | None:
    """A ServiceMonitor and a PrometheusRule per service, when the stack opts in (monitoring.enabled)."""
    if not cfg.monitoring.enabled:
        return None
    return Monitoring("monitoring", MonitoringArgs(namespace=cfg.namespace, services=workloads,
                                                   settings=cfg.monitoring))


def gateway_billing(cfg: StackConfig) -> GatewayBilling:
    return GatewayBilling("gateway-billing", GatewayBillingArgs(namespace=cfg.namespace,
                                                                settings=cfg.gateway_billing))


def ragflow(cfg: StackConfig) -> Ragflow | None:
    if not cfg.ragflow.enabled:
        return None
    return Ragflow("ragflow", RagflowArgs(settings=cfg.ragflow, callers_namespace=cfg.namespace))


def saleor_webhooks(cfg: StackConfig, prov: Provisioner) -> SaleorWebhooks:
    """The app "CMP Provisioner" and its order webhooks, aimed at the provisioner's URLs."""
    return SaleorWebhooks("saleor", SaleorWebhooksArgs(webhook_urls=prov.webhook_urls, protect=cfg.protected))


def saleor_app_token(seeds: VaultSecretSeeds, saleor: SaleorWebhooks) -> VaultProgramKey:
    """The app's auth token into the provisioner's Vault path, where its ExternalSecret reads it (catch-up reads
    Saleor's orders as the app); written after the path's seed, and again whenever the app is replaced."""
    return VaultProgramKey("vault-saleor-app-token", seed=PROVISIONER_PATH, mount=seeds.mount_of(PROVISIONER_PATH),
                           key="saleor_app_token", value=saleor.auth_token,
                           opts=pulumi.ResourceOptions(depends_on=[seeds.seeds[PROVISIONER_PATH.path]]))


def vault_seeds(cfg: StackConfig) -> VaultSecretSeeds:
    v = cfg.vault
    return VaultSecretSeeds("vault-seeds", VaultSecretSeedsArgs(
        secret_mount=v.secret_mount, kv_mount=v.kv_mount, adopt_mounts=v.adopt_mounts,
        delete_on_destroy=v.delete_on_destroy, protect=cfg.protected, rotations=dict(v.rotations),
        operator_keys_set=frozenset(cfg.secrets)))


def vault_access(cfg: StackConfig) -> VaultAccess:
    v = cfg.vault
    return VaultAccess("vault-access", VaultAccessArgs(
        namespace=cfg.namespace, vault_address=v.address, cluster_secret_store=cfg.cluster_secret_store,
        secret_mount=v.secret_mount, kv_mount=v.kv_mount, kubernetes_auth_path=v.kubernetes_auth_path,
        kubernetes_host=v.kubernetes_host, adopt_auth_backend=v.adopt_mounts,
        connector_role=cfg.connector_gateway.vault_k8s_role,
        external_secrets_namespace=v.external_secrets_namespace,
        external_secrets_service_account=v.external_secrets_service_account))


def vault_paths() -> dict[str, str]:
    """Every seeded Vault secret's KV v2 API path, by its path under the mount (``cmp/connector``)."""
    return {path.path: path.data_path for path in SEED_PATHS}


def build(cfg: StackConfig) -> dict[str, Any]:
    """Instantiate the platform for one stack; export and return its outputs."""
    rag = ragflow(cfg)  # first: its preflight fails before anything else is registered
    seeds = vault_seeds(cfg)
    vault_access(cfg)
    images = service_images(cfg)
    gateway = connector_gateway(cfg, images.get("connector_gateway"), seeds.revisions)
    prov = provisioner(cfg, images.get("provisioner"), seeds.revisions)
    saleor = saleor_webhooks(cfg, prov)
    saleor_app_token(seeds, saleor)
    gateway_billing(cfg)
    monitoring(cfg, CONNECTOR_NAME, PROVISIONER_NAME)
    outputs: dict[str, Any] = {
        "environment": cfg.environment,
        "namespace": cfg.namespace,
        "serviceUrls": {"connectorGateway": gateway.url, "provisioner": prov.url},
        "webhookUrls": dict(prov.webhook_urls),
        "saleorAppId": saleor.app_id,
        "vaultPaths": vault_paths(),
    }
    if rag is not None:
        outputs["ragflow"] = {"image": rag.image, "nodeArch": cfg.ragflow.node_arch,
                              "platforms": rag.platforms}
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs
