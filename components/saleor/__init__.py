"""Saleor's app and order webhooks as Pulumi dynamic resources (replaces the reference's PostSync Job).

Exports load lazily, so `components.saleor.config` (used by stacks.config) imports without Pulumi.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "SaleorWebhooks": "components.saleor.component",
    "SaleorWebhooksArgs": "components.saleor.component",
    "SaleorApp": "components.saleor.resources",
    "SaleorAppArgs": "components.saleor.resources",
    "SaleorWebhook": "components.saleor.resources",
    "SaleorWebhookArgs": "components.saleor.resources",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'components.saleor' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
