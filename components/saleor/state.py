"""How Saleor objects become Pulumi state, and how two states compare without Saleor's read-back quirks.

Saleor reads custom headers back with lower-cased keys and as "{}" when empty, and stores the subscription
query as sent; comparisons therefore lower-case header keys, sort event and permission lists and compare
queries in graphql-core's printed form, so a refresh of an unchanged webhook shows no drift.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi

from infra.sdk_private import UNKNOWN, unwrap_secret

APP_IDENTITY = ("identifier",)
APP_MUTABLE = ("name", "permissions")
WEBHOOK_IDENTITY = ("app_id",)
WEBHOOK_MUTABLE = ("name", "target_url", "async_events", "query", "is_active", "custom_headers")


def is_unknown(value: Any) -> bool:
    """A value only a deployment knows: the wire's unknown (what a provider sees in a preview) or, in the program,
    the SDK's own unknown marker."""
    return value == UNKNOWN or pulumi.contains_unknowns(value)


def plain(props: dict[str, Any]) -> dict[str, Any]:
    """Props with any rpc secret wrappers removed (the host may pass them when secrets are accepted)."""
    return {k: unwrap_secret(v) for k, v in props.items()}


def headers_from_saleor(raw: str | None) -> dict[str, str]:
    parsed = json.loads(raw) if raw else {}
    return {str(k).lower(): str(v) for k, v in (parsed or {}).items()}


def canonical_query(query: Any) -> Any:
    if not isinstance(query, str):
        return query
    # graphql-core is imported here, not at module load: the program imports this module, only the provider
    # (in its own process) compares queries.
    from graphql import GraphQLError, parse, print_ast

    try:
        return print_ast(parse(query))
    except GraphQLError:
        return query.strip()


def canonical(field: str, value: Any) -> Any:
    """The comparable form of one property."""
    if is_unknown(value):
        return value
    if field in ("permissions", "async_events"):
        return sorted(set(value or []))
    if field == "custom_headers":
        return {str(k).lower(): str(v) for k, v in (value or {}).items()}
    if field == "query":
        return canonical_query(value)
    if field == "is_active":
        return True if value is None else bool(value)
    if field == "identifier":
        return value or None
    return value


def changed_fields(olds: dict[str, Any], news: dict[str, Any], fields: tuple[str, ...]) -> list[str]:
    """Fields whose value differs (an unknown new value counts as a change)."""
    return [
        f
        for f in fields
        if is_unknown(news.get(f)) or canonical(f, olds.get(f)) != canonical(f, news.get(f))
    ]


def app_outputs(app: dict[str, Any], auth_token: Any) -> dict[str, Any]:
    outs = {
        "app_id": app["id"],
        "name": app.get("name"),
        "identifier": app.get("identifier") or None,
        "permissions": sorted(p["code"] for p in app.get("permissions") or []),
        "is_active": bool(app.get("isActive", True)),
    }
    if auth_token:
        outs["auth_token"] = auth_token
    return outs


def webhook_outputs(webhook: dict[str, Any], app_id: str) -> dict[str, Any]:
    return {
        "app_id": app_id,
        "name": webhook.get("name"),
        "target_url": webhook.get("targetUrl"),
        "async_events": sorted(e["eventType"] for e in webhook.get("asyncEvents") or []),
        "query": webhook.get("subscriptionQuery"),
        "is_active": bool(webhook.get("isActive")),
        "custom_headers": headers_from_saleor(webhook.get("customHeaders")),
    }


def webhook_input(props: dict[str, Any], fields: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The WebhookCreateInput/WebhookUpdateInput fields for `fields` of the resource's props.

    No secretKey is ever sent: without one Saleor signs deliveries with JWS, which the provisioner verifies.
    """
    mapping = {
        "name": ("name", lambda v: v),
        "target_url": ("targetUrl", lambda v: v),
        "async_events": ("asyncEvents", lambda v: sorted(set(v))),
        "query": ("query", lambda v: v),
        "is_active": ("isActive", lambda v: True if v is None else bool(v)),
        "custom_headers": ("customHeaders", lambda v: json.dumps(v or {}, sort_keys=True)),
    }
    out: dict[str, Any] = {}
    for field in fields:
        key, convert = mapping[field]
        out[key] = convert(props.get(field))
    return out
