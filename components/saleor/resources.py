"""The dynamic resources SaleorApp and SaleorWebhook, each with a typed args model.

The args models catch what needs no schema (types, URL scheme, header names) when the program runs; the
provider's check() validates events, permissions and the subscription query against Saleor's schemas at
preview, so bad input fails before anything is created.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi.dynamic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.saleor.checks import webhook_failures
from components.saleor.provider import SaleorAppProvider, SaleorWebhookProvider
from components.saleor.state import UNKNOWN


def _plain_or_unknown(value: Any) -> Any:
    return UNKNOWN if isinstance(value, pulumi.Output) else value


class SaleorAppArgs(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str = Field(min_length=1)
    identifier: str | None = None
    permissions: list[str] = Field(default_factory=list)


class SaleorWebhookArgs(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    app_id: str | pulumi.Output
    name: str = Field(min_length=1)
    target_url: str | pulumi.Output
    async_events: list[str] = Field(min_length=1)
    query: str = Field(min_length=1)
    is_active: bool = True
    custom_headers: dict[str, str] | None = None

    @model_validator(mode="after")
    def _cheap_rules(self) -> SaleorWebhookArgs:
        # No schema here (building one costs ~1 s): events and query are checked by the provider.
        props = {k: _plain_or_unknown(v) for k, v in self.model_dump().items()}
        props["async_events"] = props["query"] = UNKNOWN
        failures = webhook_failures(props, schemas={})
        if failures:
            raise ValueError("; ".join(f"{field}: {reason}" for field, reason in failures))
        return self


class SaleorApp(pulumi.dynamic.Resource, module="saleor", name="SaleorApp"):
    """A Saleor app; `auth_token` (shown by Saleor once, at create) is a secret output."""

    app_id: pulumi.Output[str]
    name: pulumi.Output[str]
    identifier: pulumi.Output[str | None]
    permissions: pulumi.Output[list[str]]
    is_active: pulumi.Output[bool]
    auth_token: pulumi.Output[str]

    def __init__(self, name: str, args: SaleorAppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "name": args.name,
            "identifier": args.identifier,
            "permissions": sorted(set(args.permissions)),
            "app_id": None,
            "is_active": None,
            "auth_token": None,
        }
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["auth_token"]))
        super().__init__(SaleorAppProvider(), name, props, opts)


class SaleorWebhook(pulumi.dynamic.Resource, module="saleor", name="SaleorWebhook"):
    """One webhook of a Saleor app, with a subscription query and async events."""

    app_id: pulumi.Output[str]
    name: pulumi.Output[str]
    target_url: pulumi.Output[str]
    async_events: pulumi.Output[list[str]]
    query: pulumi.Output[str]
    is_active: pulumi.Output[bool]
    custom_headers: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: SaleorWebhookArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {
            "app_id": args.app_id,
            "name": args.name,
            "target_url": args.target_url,
            "async_events": sorted(set(args.async_events)),
            "query": args.query,
            "is_active": args.is_active,
            "custom_headers": dict(args.custom_headers or {}),
        }
        if args.custom_headers and any(k.lower().startswith("authorization") for k in args.custom_headers):
            props["custom_headers"] = pulumi.Output.secret(props["custom_headers"])
            opts = pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(additional_secret_outputs=["custom_headers"])
            )
        super().__init__(SaleorWebhookProvider(), name, props, opts)
