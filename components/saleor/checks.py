"""Input rules for SaleorApp and SaleorWebhook, checked before anything is sent to Saleor.

Each rule returns (property, reason) pairs whose reason says what Saleor expects, so a bad event name, query,
URL or header fails at preview and nothing is created half-way. Unknown values (computed at preview) are
skipped here and checked again when they are known.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from components.saleor.schema import Schemas, subscription_problems, unknown_values
from components.saleor.state import is_unknown

Failure = tuple[str, str]
MAX_CUSTOM_HEADERS = 5
_HEADER_KEY = re.compile(r"^(x-|authorization)", re.IGNORECASE)


def _non_empty_string(props: dict[str, Any], field: str) -> list[Failure]:
    value = props.get(field)
    if is_unknown(value):
        return []
    if not isinstance(value, str) or not value.strip():
        return [(field, f"{field} must be a non-empty string, got {value!r}")]
    return []


def app_failures(props: dict[str, Any], schemas: Schemas) -> list[Failure]:
    failures = _non_empty_string(props, "name")
    identifier = props.get("identifier")
    if identifier is not None and not is_unknown(identifier) and not isinstance(identifier, str):
        failures.append(("identifier", f"identifier must be a string, got {identifier!r}"))
    permissions = props.get("permissions")
    if not is_unknown(permissions):
        if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
            failures.append(("permissions", f"permissions must be a list of names, got {permissions!r}"))
        else:
            bad = unknown_values(permissions, "PermissionEnum", schemas)
            if bad:
                failures.append(
                    ("permissions", f"{bad} are not Saleor PermissionEnum values (e.g. MANAGE_ORDERS)")
                )
    return failures


def _url_failures(value: Any) -> list[Failure]:
    if is_unknown(value):
        return []
    parsed = urlparse(value) if isinstance(value, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        return [("target_url", f"target_url must be an http:// or https:// URL, got {value!r}")]
    return []


def _events_failures(events: Any, schemas: Schemas) -> list[Failure]:
    if is_unknown(events):
        return []
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        return [("async_events", f"async_events must be a non-empty list of event names, got {events!r}")]
    bad = unknown_values(events, "WebhookEventTypeAsyncEnum", schemas)
    if bad:
        return [
            (
                "async_events",
                f"{bad} are not values of Saleor's WebhookEventTypeAsyncEnum (Saleor "
                f"{', '.join(schemas)}), e.g. ORDER_FULLY_PAID",
            )
        ]
    return []


def _headers_failures(headers: Any) -> list[Failure]:
    if headers is None or is_unknown(headers):
        return []
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        return [("custom_headers", "custom_headers must map header names to string values")]
    failures: list[Failure] = []
    if len(headers) > MAX_CUSTOM_HEADERS:
        failures.append(("custom_headers", f"Saleor accepts at most {MAX_CUSTOM_HEADERS} custom headers"))
    bad = sorted(k for k in headers if not _HEADER_KEY.match(k))
    if bad:
        failures.append(("custom_headers", f"{bad}: Saleor accepts only header names starting X- or Authorization"))
    return failures


def webhook_failures(props: dict[str, Any], schemas: Schemas) -> list[Failure]:
    failures = _non_empty_string(props, "app_id") + _non_empty_string(props, "name")
    failures += _url_failures(props.get("target_url"))
    events = props.get("async_events")
    event_failures = _events_failures(events, schemas)
    failures += event_failures
    query = props.get("query")
    if not is_unknown(query):
        if not isinstance(query, str) or not query.strip():
            failures.append(("query", "query must be a subscription document, e.g. subscription { event { ... } }"))
        else:
            known_events = None if event_failures or is_unknown(events) else events
            failures += [
                ("query", f"invalid subscription query: {problem}")
                for problem in subscription_problems(query, known_events, schemas)
            ]
    active = props.get("is_active")
    if active is not None and not is_unknown(active) and not isinstance(active, bool):
        failures.append(("is_active", f"is_active must be true or false, got {active!r}"))
    failures += _headers_failures(props.get("custom_headers"))
    return failures
