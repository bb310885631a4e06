"""Saleor: the app, its webhooks, and their FAILED and retrying event deliveries.

Saleor is read through the provider's own GraphQL session (components/saleor/client.py): the same staff login
shared per process, the same retries on connection errors, 5xx and Saleor's login throttle, bounded by the
stack's `saleor.tuning`, and the same one-line errors with the password scrubbed. One query
(graphql/app_deliveries.graphql) reads the app, its webhooks and each webhook's newest FAILED and PENDING
deliveries. How Saleor 3.20-3.23 record deliveries (`saleor/webhook/transport/utils.py`,
`saleor/core/__init__.py: EventDeliveryStatus`):

- a delivery is PENDING from creation until it succeeds or gives up; each try is an attempt (PENDING, then
  SUCCESS for a 2xx, FAILED otherwise) with `responseStatusCode` (null when no HTTP answer came: a refused
  connection, a timeout, or Saleor's IP filter, whose attempt response reads "Invalid IP address") and
  `response` (the body, cut at EVENT_DELIVERY_ATTEMPT_RESPONSE_SIZE_LIMIT and ended with "...");
- 5xx and no answer are retried 5 times, 10 s to 160 s apart; a 3xx/4xx answer, exhausted retries or a
  disabled app/webhook make the delivery FAILED for good;
- a successful delivery is deleted (`clear_successful_delivery`), so a healthy webhook lists none.

So a FAILED delivery, or a PENDING one whose latest attempt failed, inside the window is a failure, named by
event, count, HTTP status and an excerpt of the response. The provisioner's catch-up recovers the orders of
FAILED deliveries; this says that deliveries fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from components.saleor.client import SaleorSession
from components.saleor.component import APP_NAME, APP_PERMISSIONS, event_key
from components.saleor.documents import ORDER_EVENTS
from components.saleor.errors import SaleorError, SaleorUnavailable
from components.saleor.settings import SaleorSettings
from tools.verify.inputs import SALEOR_PASSWORD_ENV, Target, known
from tools.verify.result import Check, fail, ok, skip

AREA = "saleor"
DOCUMENT = "app_deliveries"
MAX_DELIVERIES = 100  # Saleor serves at most 100 nodes per connection page
EXCERPT_CHARS = 160


def fetch_app(settings: SaleorSettings, app_id: str) -> dict[str, Any] | None:
    """The app with its webhooks and their newest FAILED and PENDING deliveries (None: no such app)."""
    with SaleorSession(settings, f"verify SaleorApp {app_id}") as session:
        session.authenticate()
        return session.query(DOCUMENT, "app", {"id": app_id, "first": MAX_DELIVERIES})


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def excerpt(text: str | None) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[:EXCERPT_CHARS - 3] + "..."


def delivery_problem(delivery: Mapping[str, Any]) -> str | None:
    """Why a delivery counts as failing (failed, or retrying after a failed attempt), or None."""
    attempts = [e["node"] for e in ((delivery.get("attempts") or {}).get("edges") or [])]
    latest = attempts[0] if attempts else None
    status = delivery["status"]
    if status == "SUCCESS" or (status == "PENDING" and (latest is None or latest["status"] != "FAILED")):
        return None
    state = "failed" if status == "FAILED" else "retrying"
    if latest is None:
        return f"{delivery['eventType']} delivery {state} with no attempt recorded (app or webhook disabled?)"
    code = latest.get("responseStatusCode")
    http = f"HTTP {code}" if code is not None else "no HTTP answer"
    return f"{delivery['eventType']} delivery {state}: {http}, response {excerpt(latest.get('response'))!r}"


def _app_check(app: Mapping[str, Any], app_id: str, permissions: tuple[str, ...], app_name: str) -> Check:
    have = sorted(p["code"] for p in app.get("permissions") or [])
    problems = []
    if not app.get("isActive"):
        problems.append("is not active")
    missing = sorted(set(permissions) - set(have))
    if missing:
        problems.append(f"lacks permission {', '.join(missing)} (has {', '.join(have) or 'none'})")
    extra = sorted(set(have) - set(permissions))
    if extra:  # least privilege: the provisioner reads orders with this app's token
        problems.append(f"holds {', '.join(extra)} beyond {', '.join(permissions)}")
    line = f"{app_name!r} {app_id}: " + ("; ".join(problems) or f"active with {', '.join(have)}")
    return (fail if problems else ok)(AREA, "saleor app", line)


def _webhook_checks(hooks: list[Mapping[str, Any]], webhook_urls: Mapping[str, str]) -> list[Check]:
    urls = {event_key(k): v for k, v in webhook_urls.items()}
    checks = []
    for event in ORDER_EVENTS:
        name = f"saleor webhook {event}"
        found = [h for h in hooks if event in {e["eventType"] for e in h.get("asyncEvents") or []}]
        if not found:
            checks.append(fail(AREA, name, f"no webhook of the app subscribes to {event}"))
            continue
        hook = found[0]
        problems = []
        if not hook.get("isActive"):
            problems.append("is not active (Saleor makes no delivery for its events, not even a failed one)")
        want = urls.get(event)
        if want and hook.get("targetUrl") != want:
            problems.append(f"targets {hook.get('targetUrl')}, not {want}")
        line = f"{hook['id']}: " + ("; ".join(problems) or f"active, {hook.get('targetUrl')}")
        checks.append((fail if problems else ok)(AREA, name, line))
    return checks


def _delivery_checks(hooks: list[Mapping[str, Any]], since: datetime) -> list[Check]:
    recent = [e["node"] for h in hooks for kind in ("failed", "pending")
              for e in ((h.get(kind) or {}).get("edges") or []) if _when(e["node"]["createdAt"]) >= since]
    recent.sort(key=lambda d: d["createdAt"], reverse=True)
    failing: dict[str, list[tuple[str, str]]] = {}
    for delivery in recent:
        if (problem := delivery_problem(delivery)) is not None:
            failing.setdefault(delivery["eventType"], []).append((delivery["status"], problem))
    checks = []
    for event, problems in failing.items():
        failed = sum(1 for status, _ in problems if status == "FAILED")
        counts = f"{failed} FAILED, {len(problems) - failed} retrying since {since.isoformat(timespec='seconds')}"
        checks.append(fail(AREA, f"saleor deliveries {event}", f"{problems[0][1]} ({counts})"))
    if not failing:
        checks.append(ok(AREA, "saleor deliveries", f"no FAILED or retrying delivery since "
                                                    f"{since.isoformat(timespec='seconds')} ({len(recent)} pending)"))
    return checks


def app_and_delivery_checks(app: Mapping[str, Any] | None, app_id: str, webhook_urls: Mapping[str, str], *,
                            since: datetime, permissions: tuple[str, ...] = APP_PERMISSIONS,
                            app_name: str = APP_NAME) -> list[Check]:
    """Checks for the app, each expected webhook, and the deliveries created at or after ``since``."""
    if app is None:
        return [fail(AREA, "saleor app", f"app {app_id} does not exist in Saleor (deleted, or another Saleor)")]
    hooks = app.get("webhooks") or []
    return [_app_check(app, app_id, permissions, app_name), *_webhook_checks(hooks, webhook_urls),
            *_delivery_checks(hooks, since)]


def check(target: Target, now: datetime | None = None) -> list[Check]:
    app_id = target.outputs.get("saleorAppId")
    if not known(app_id):
        return [skip(AREA, "saleor app", "the stack has no saleorAppId output (not deployed yet)")]
    password = target.env.get(SALEOR_PASSWORD_ENV)
    if not password:
        return [fail(AREA, "saleor app", f"cannot log in to Saleor: {SALEOR_PASSWORD_ENV} is not set "
                                         f"(the staff password `pulumi up` uses)")]
    config = target.config.saleor.model_copy(update={"api_url": target.saleor_url})
    settings = SaleorSettings(config=config, staff_password=SecretStr(password))
    try:
        app = fetch_app(settings, app_id)
    except (SaleorError, SaleorUnavailable) as exc:
        return [fail(AREA, "saleor app", str(exc))]
    since = (now or datetime.now(UTC)) - target.since
    return app_and_delivery_checks(app, app_id, target.outputs.get("webhookUrls") or {}, since=since)
