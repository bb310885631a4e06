"""`cmp-platform:provisioner`: the provisioner's slice of stack config, rendered into its ConfigMap."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from components.workload.config import ServiceSettings
from infra.config import ImageRef, Peer, peer


class ProvisionerConfig(ServiceSettings):
    """The provisioner's settings; each becomes an environment variable of its ConfigMap (docs/provisioner.md)."""

    image: ImageRef = "ghcr.io/gsvdev/cmp-provisioner:0.1.0"
    ingress_from: list[Peer] = Field(default_factory=lambda: [peer("saleor", None)])
    database_egress: Peer = Field(default_factory=lambda: peer(None, "postgresql", 5432))
    saleor_egress: Peer = Field(default_factory=lambda: peer("saleor", None, 8000))
    saleor_allowed_origins: list[str] = Field(default_factory=list)  # empty: the origin of saleor.apiUrl
    # Not a setting: the Saleor webhooks carry no secret key, so Saleor signs with JWS. The name exists so that a
    # stack file still setting it gets a line saying so instead of "unknown key".
    saleor_legacy_hmac: None = Field(default=None, exclude=True)
    jwks_cache_ttl_seconds: int = Field(default=300, gt=0)
    jwks_min_refetch_seconds: int = Field(default=30, ge=0)
    retry_max_attempts: int = Field(default=8, ge=1, le=50)
    retry_backoff_seconds: float = Field(default=1, gt=0)
    retry_backoff_max_seconds: float = Field(default=300, gt=0)
    worker_poll_seconds: float = Field(default=0.5, gt=0)
    worker_batch_size: int = Field(default=20, ge=1, le=1000)
    max_body_bytes: int = Field(default=262144, ge=1024)  # the service refuses less (MAX_BODY_BYTES)

    @field_validator("saleor_legacy_hmac", mode="before")
    @classmethod
    def _no_legacy_hmac(cls, _value: object) -> None:
        raise ValueError(
            "removed: Saleor signs the provisioner's webhooks with JWS (no webhook has a secret key), which the "
            "provisioner verifies against Saleor's JWKS; delete the key "
            "(`pulumi config rm --path cmp-platform:provisioner.saleorLegacyHmac`)"
        )

    @field_validator("saleor_allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        """Each entry as the service reads SALEOR_ALLOWED_ORIGINS (comma-joined): http(s), a host, a valid port,
        nothing after."""
        for origin in value:
            rule = f"origin {origin!r} must be scheme://host[:port] without a path"
            try:
                parts = urlsplit(origin)
                parts.port  # noqa: B018 - raises on a port that is not 0..65535
            except ValueError:
                raise ValueError(rule) from None
            if (parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/")
                    or parts.query or parts.fragment or origin != origin.strip() or "," in origin):
                raise ValueError(rule)
        return value

    @model_validator(mode="after")
    def _backoff_order(self) -> ProvisionerConfig:
        if self.retry_backoff_max_seconds < self.retry_backoff_seconds:
            raise ValueError("retryBackoffMaxSeconds must be >= retryBackoffSeconds")
        return self
