"""`cmp-platform:provisioner`: the provisioner's deployment keys beside its own settings, defined once in
service_src/provisioner/settings.py; and that model's rule for the operator's DATABASE_URL secret."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from components.saleor.documents import document
from components.vault.paths import PROVISIONER, PROVISIONER_CONSUMER
from components.workload.config import ServiceEnvironment, ServicePlatform, ServiceSettings, service_slice
from infra.config import ImageRef, Peer, peer
from infra.naming import SERVICE_PORT
from service_src.provisioner.settings import ProvisionerSettings, check_database_url

NAME = PROVISIONER_CONSUMER  # the workload's name: cmp-provisioner


class ProvisionerWorkload(ServiceSettings):
    """The provisioner's deployment keys; ``ProvisionerConfig`` adds the provisioner's own settings."""

    STACK_KEY: ClassVar[str] = "provisioner"
    SETTINGS: ClassVar[type] = ProvisionerSettings
    SECRET_PATH: ClassVar = PROVISIONER

    image: ImageRef = "ghcr.io/gsvdev/cmp-provisioner:0.1.0"
    ingress_from: list[Peer] = Field(default_factory=lambda: [peer("saleor", None)])
    database_egress: Peer = Field(default_factory=lambda: peer(None, "postgresql", 5432))
    saleor_egress: Peer = Field(default_factory=lambda: peer("saleor", None, 8000))

    def environment(self, platform: ServicePlatform, saleor_origin: str,
                    saleor_api_url: str | None = None) -> ServiceEnvironment:
        """The provisioner pods' environment: webhooks accepted from the stack's Saleor unless the slice lists
        origins; each pod upgrades the inbox schema before serving (replicas one after another on an advisory
        lock; /readyz stays 503 while the database is behind the image's revision, docs/provisioner.md)."""
        env = self.render({
            "log_level": "DEBUG" if (platform.debug or self.debug) else "INFO",
            "port": SERVICE_PORT,
            "control_plane_url": platform.control_plane_url,
            "saleor_allowed_origins": [saleor_origin],
            # Catch-up reads the stack's Saleor with the one orders document (components/saleor/graphql).
            "saleor_api_url": saleor_api_url,
            "saleor_orders_query": document("orders_since") if saleor_api_url else None,
            "migrate_on_start": True,
        })
        return env


ProvisionerConfig = service_slice("ProvisionerConfig", ProvisionerWorkload)


def database_url_problem(value: str) -> str | None:
    """The provisioner's own DATABASE_URL rule for the operator's stack secret (never echoing more than its
    scheme); None for a value that passes, or a placeholder that is not a URL (an offline preview's)."""
    if "://" not in value:
        return None
    try:
        check_database_url(SecretStr(value))
    except ValueError as exc:
        return str(exc)
    return None
