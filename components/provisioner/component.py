"""Provisioner: receives Saleor order webhooks and provisions instances."""

from __future__ import annotations

import pulumi

from components.provisioner.config import ProvisionerConfig
from components.vault.paths import PROVISIONER
from components.workload.component import (
    ServiceArgs,
    ServiceWorkload,
    env_number,
    service_env,
    service_workload_args,
)
from infra.naming import SERVICE_PORT, service_url, type_token

NAME = "cmp-provisioner"
# Saleor event (lower-case, as in the Saleor-Event header) -> the provisioner's route.
WEBHOOK_ROUTES = {
    "order_fully_paid": "/webhooks/order-fully-paid",
    "order_created": "/webhooks/order-created",
    "order_cancelled": "/webhooks/order-cancelled",
}


class ProvisionerArgs(ServiceArgs):
    settings: ProvisionerConfig
    saleor_origin: str  # the default allowed origin of webhook deliveries


def webhook_urls(namespace: str) -> dict[str, str]:
    """The three target URLs Saleor's webhooks post to."""
    base = service_url(NAME, namespace, SERVICE_PORT)
    return {event: base + route for event, route in WEBHOOK_ROUTES.items()}


def provisioner_env(args: ProvisionerArgs) -> dict[str, str]:
    """The provisioner's plain environment; SALEOR_WEBHOOK_SECRET, SERVICE_JWT_SECRET and DATABASE_URL
    come from the ExternalSecret."""
    s = args.settings
    return {
        **service_env(args),
        "SALEOR_ALLOWED_ORIGINS": ",".join(s.saleor_allowed_origins or [args.saleor_origin]),
        "SALEOR_LEGACY_HMAC": "false",  # JWS only: the Saleor webhooks carry no secret key
        "JWKS_CACHE_TTL_SECONDS": str(s.jwks_cache_ttl_seconds),
        "JWKS_MIN_REFETCH_SECONDS": str(s.jwks_min_refetch_seconds),
        "RETRY_MAX_ATTEMPTS": str(s.retry_max_attempts),
        "RETRY_BACKOFF_SECONDS": env_number(s.retry_backoff_seconds),
        "RETRY_BACKOFF_MAX_SECONDS": env_number(s.retry_backoff_max_seconds),
        "WORKER_POLL_SECONDS": env_number(s.worker_poll_seconds),
        "WORKER_BATCH_SIZE": str(s.worker_batch_size),
        # Each pod upgrades the inbox schema before serving, replicas one after another on an advisory lock;
        # /readyz stays 503 while the database is behind the image's revision (docs/provisioner.md "Schema").
        "MIGRATE_ON_START": "true",
    }


class Provisioner(pulumi.ComponentResource):
    """Provisioner pods (inbox in PostgreSQL, DSN from Vault); outputs the webhook URLs for Saleor."""

    def __init__(self, name: str, args: ProvisionerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("Provisioner"), name, None, opts)
        s = args.settings
        self.workload = ServiceWorkload(NAME, service_workload_args(
            NAME, args, env=provisioner_env(args), secret_path=PROVISIONER,
            egress_peers=(s.control_plane_egress, s.database_egress, s.saleor_egress),
        ), opts=pulumi.ResourceOptions(parent=self))
        self.url = self.workload.url
        self.webhook_urls = webhook_urls(args.namespace)
        self.register_outputs({"url": self.url, "webhook_urls": self.webhook_urls})
