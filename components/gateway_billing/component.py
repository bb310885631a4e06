"""GatewayBilling: the cmp-gateway's billing, entitlements and rate-limit config.

The gateway Deployment already exists (not ours): a server-side-apply patch adds ``envFrom`` the
ConfigMap and a checksum annotation, so a billing change rolls the gateway's pods.
"""

from __future__ import annotations

import pulumi
from pydantic import BaseModel, ConfigDict

from components.gateway_billing.config import GatewayBillingConfig
from components.workload.config import env_text
from infra.kube import KubeObject
from infra.naming import checksum, labels, type_token

CHECKSUM_ANNOTATION = "checksum/billing-config"
PATCH_FORCE_ANNOTATION = "pulumi.com/patchForce"


class GatewayBillingArgs(BaseModel):
    model_config = ConfigDict(frozen=True)

    namespace: str
    settings: GatewayBillingConfig


def billing_data(settings: GatewayBillingConfig) -> dict[str, str]:
    """Exactly the reference's keys, validated by GatewayBillingConfig."""
    return {
        "BILLING_ENABLED": env_text(settings.billing_enabled),
        "BILLING_AUTHORIZE_PATH": settings.authorize_path,
        "BILLING_SETTLE_PATH": settings.settle_path,
        "BILLING_MAX_RETRIES": str(settings.retries),
        "BILLING_RETRY_BACKOFF_SECONDS": env_text(settings.retry_backoff_seconds),
        "BILLING_TIMEOUT": env_text(settings.timeout_seconds),
        "ENTITLEMENTS_CACHE_TTL_SECONDS": str(settings.entitlements_cache_ttl_seconds),
        "ENTITLEMENTS_PATH": settings.entitlements_path,
        "RATE_LIMIT_ENABLED": env_text(settings.rate_limit_enabled),
        "RATE_LIMIT_REQUESTS_PER_MINUTE": str(settings.rate_limit_requests_per_minute),
    }


class GatewayBilling(pulumi.ComponentResource):
    """The cmp-gateway ConfigMap plus a patch of the existing cmp-gateway Deployment."""

    def __init__(self, name: str, args: GatewayBillingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("GatewayBilling"), name, None, opts)
        s = args.settings
        data = billing_data(s)
        self.config_map = KubeObject(s.config_map_name, {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": s.config_map_name, "namespace": args.namespace, "labels": labels(s.deployment_name)},
            "data": data}, opts=pulumi.ResourceOptions(parent=self))
        self.patch = KubeObject(s.deployment_name, {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": s.deployment_name, "namespace": args.namespace,
                         # Take over fields another manager (Argo CD, kubectl) set before.
                         "annotations": {PATCH_FORCE_ANNOTATION: "true"}},
            "spec": {"template": {
                "metadata": {"annotations": {CHECKSUM_ANNOTATION: checksum(data)}},
                "spec": {"containers": [{
                    "name": s.container_name,
                    "envFrom": [{"configMapRef": {"name": s.config_map_name}}],
                }]},
            }}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.config_map]), patch=True)
        self.register_outputs({"config_map": s.config_map_name, "deployment": s.deployment_name})
