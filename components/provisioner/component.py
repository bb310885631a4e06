"""Provisioner: receives Saleor order webhooks and provisions instances."""

from __future__ import annotations

import pulumi

from components.provisioner.config import NAME, ProvisionerConfig
from components.vault.paths import PROVISIONER
from components.workload.component import ServiceArgs, ServiceWorkload, service_workload_args
from components.workload.config import ServiceEnvironment, ServicePlatform
from infra.naming import SERVICE_PORT, service_url, type_token

# Saleor event (lower-case, as in the Saleor-Event header) -> the provisioner's route.
WEBHOOK_ROUTES = {
    "order_fully_paid": "/webhooks/order-fully-paid",
    "order_created": "/webhooks/order-created",
    "order_cancelled": "/webhooks/order-cancelled",
}


class ProvisionerArgs(ServiceArgs):
    settings: ProvisionerConfig
    saleor_origin: str  # the default allowed origin of webhook deliveries
    saleor_api_url: str | None = None  # where catch-up reads orders (the stack's saleor.apiUrl)


def webhook_urls(namespace: str) -> dict[str, str]:
    """The three target URLs Saleor's webhooks post to."""
    base = service_url(NAME, namespace, SERVICE_PORT)
    return {event: base + route for event, route in WEBHOOK_ROUTES.items()}


def provisioner_environment(args: ProvisionerArgs) -> ServiceEnvironment:
    """The ConfigMap and the ExternalSecret's keys, from the provisioner's own settings model."""
    return args.settings.environment(ServicePlatform(args.namespace, args.control_plane_url, args.debug),
                                     args.saleor_origin, args.saleor_api_url)


class Provisioner(pulumi.ComponentResource):
    """Provisioner pods (inbox in PostgreSQL, DSN from Vault); outputs the webhook URLs for Saleor."""

    def __init__(self, name: str, args: ProvisionerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("Provisioner"), name, None, opts)
        s = args.settings
        env = provisioner_environment(args)
        self.workload = ServiceWorkload(NAME, service_workload_args(
            NAME, args, env=env.config_map, secret_path=PROVISIONER, secret_keys=env.secret_keys,
            egress_peers=(s.control_plane_egress, s.database_egress, s.saleor_egress,
                          *([s.otlp_egress] if s.otlp_egress else [])),
        ), opts=pulumi.ResourceOptions(parent=self))
        self.url = self.workload.url
        self.webhook_urls = webhook_urls(args.namespace)
        self.register_outputs({"url": self.url, "webhook_urls": self.webhook_urls})
