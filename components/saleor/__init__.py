"""Saleor's app and order webhooks as Pulumi dynamic resources (replaces the reference's PostSync Job)."""

from components.saleor.component import SaleorWebhooks, SaleorWebhooksArgs
from components.saleor.resources import SaleorApp, SaleorAppArgs, SaleorWebhook, SaleorWebhookArgs

__all__ = [
    "SaleorApp",
    "SaleorAppArgs",
    "SaleorWebhook",
    "SaleorWebhookArgs",
    "SaleorWebhooks",
    "SaleorWebhooksArgs",
]
