"""`cmp-platform:gatewayBilling`: the billing, entitlements and rate-limit keys of the cmp-gateway ConfigMap."""

from __future__ import annotations

from pydantic import Field, field_validator

from infra.config import DnsLabel, Model


class GatewayBillingConfig(Model):
    """The cmp-gateway ConfigMap's billing, entitlements and rate-limit keys (docs/platform.md)."""

    deployment_name: DnsLabel = "cmp-gateway"
    config_map_name: DnsLabel = "cmp-gateway"
    container_name: DnsLabel = "cmp-gateway"
    billing_enabled: bool = True
    authorize_path: str = "/billing/authorize"
    settle_path: str = "/billing/settle"
    retries: int = Field(default=3, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=1, gt=0)
    timeout_seconds: float = Field(default=5, gt=0)
    entitlements_cache_ttl_seconds: int = Field(default=60, gt=0)
    entitlements_path: str = "/instances/{id}/entitlements"
    rate_limit_enabled: bool = True
    rate_limit_requests_per_minute: int = Field(default=60, gt=0)

    @field_validator("authorize_path", "settle_path", "entitlements_path")
    @classmethod
    def _paths(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value

    @field_validator("entitlements_path")
    @classmethod
    def _entitlements(cls, value: str) -> str:
        if "{id}" not in value:
            raise ValueError("must contain the placeholder {id}")
        return value
