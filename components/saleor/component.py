"""SaleorWebhooks: the app "CMP Provisioner" and one webhook per order event, aimed at the provisioner.

Replaces the reference's PostSync setup Job: Pulumi now creates, diffs, refreshes and deletes the app and
its webhooks. Each webhook carries the fixed order subscription the provisioner parses, and no secret key:
Saleor signs every delivery with JWS, the one signature the deployed provisioner verifies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pulumi
from pydantic import BaseModel, ConfigDict, Field, field_validator

from components.saleor.documents import ORDER_EVENTS, order_subscription
from components.saleor.resources import SaleorApp, SaleorAppArgs, SaleorWebhook, SaleorWebhookArgs
from infra.naming import type_token

APP_NAME = "CMP Provisioner"
APP_IDENTIFIER = "cmp-provisioner"
APP_PERMISSIONS = ("MANAGE_ORDERS",)


def event_key(key: str) -> str:
    """ORDER_FULLY_PAID from any of ORDER_FULLY_PAID, order_fully_paid, order-fully-paid."""
    return re.sub(r"[-\s]", "_", key).upper()


class SaleorWebhooksArgs(BaseModel):
    """`webhook_urls` maps each order event to the provisioner's URL (Provisioner.webhook_urls).

    There is no secret-key argument: Saleor signs deliveries with JWS, which the provisioner verifies.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    webhook_urls: Mapping[str, Any] | pulumi.Output
    app_name: str = APP_NAME
    app_identifier: str = APP_IDENTIFIER
    permissions: list[str] = Field(default_factory=lambda: list(APP_PERMISSIONS))
    events: list[str] = Field(default_factory=lambda: list(ORDER_EVENTS))
    is_active: bool = True
    custom_headers: dict[str, str] | None = None
    protect: bool = False

    @field_validator("permissions")
    @classmethod
    def _least_privilege(cls, value: list[str]) -> list[str]:
        """The app's token is the provisioner's Saleor credential: order webhooks and reading orders need
        MANAGE_ORDERS (saleor/webhook/event_types.py, saleor/graphql/order/schema.py) and nothing needs more."""
        if sorted(set(value)) != list(APP_PERMISSIONS):
            raise ValueError(f"permissions {value} must be exactly {list(APP_PERMISSIONS)}: the provisioner reads "
                             "orders with the app's token, and order webhooks need MANAGE_ORDERS and nothing more")
        return value

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        bad = [e for e in value if e not in ORDER_EVENTS]
        if bad or not value:
            raise ValueError(f"events {bad or value} must be a non-empty subset of {sorted(ORDER_EVENTS)}")
        return value

    @field_validator("webhook_urls")
    @classmethod
    def _urls(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            keys = {event_key(k) for k in value}
            missing = sorted(set(ORDER_EVENTS) - keys)
            if missing:
                raise ValueError(f"webhook_urls lacks {missing} (keys present: {sorted(value)})")
        return value


def _url_for(urls: Any, event: str) -> pulumi.Output:
    def pick(resolved: Mapping[str, str]) -> str:
        by_event = {event_key(k): v for k, v in resolved.items()}
        if event not in by_event:
            raise ValueError(f"webhook_urls lacks {event} (keys present: {sorted(resolved)})")
        return by_event[event]

    return pulumi.Output.from_input(urls).apply(pick)


class SaleorWebhooks(pulumi.ComponentResource):
    """The provisioner's Saleor app and its order webhooks."""

    def __init__(self, name: str, args: SaleorWebhooksArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_token("SaleorWebhooks"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self, protect=args.protect)
        self.app = SaleorApp(
            f"{name}-app",
            SaleorAppArgs(name=args.app_name, identifier=args.app_identifier, permissions=args.permissions),
            child,
        )
        self.webhooks: dict[str, SaleorWebhook] = {}
        for event in args.events:
            type_name = ORDER_EVENTS[event]
            self.webhooks[event] = SaleorWebhook(
                f"{name}-{event.lower().replace('_', '-')}",
                SaleorWebhookArgs(
                    app_id=self.app.app_id,
                    name=type_name,
                    target_url=_url_for(args.webhook_urls, event),
                    async_events=[event],
                    query=order_subscription(event),
                    is_active=args.is_active,
                    custom_headers=args.custom_headers,
                ),
                child,
            )
        self.app_id = self.app.app_id
        self.auth_token = pulumi.Output.secret(self.app.auth_token)
        self.webhook_ids = {event: hook.id for event, hook in self.webhooks.items()}
        self.target_urls = {event: hook.target_url for event, hook in self.webhooks.items()}
        self.register_outputs(
            {
                "app_id": self.app_id,
                "auth_token": self.auth_token,
                "webhook_ids": self.webhook_ids,
                "target_urls": self.target_urls,
            }
        )
