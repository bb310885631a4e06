"""After `pulumi up`: is the Saleor side really delivering to the provisioner?

One staff login and one query (graphql/app_deliveries.graphql) read the app, its webhooks and each webhook's
most recent event deliveries; ``evaluate`` turns that into findings. How Saleor 3.20-3.23 record deliveries
(``saleor/webhook/transport/utils.py``, ``saleor/core/__init__.py: EventDeliveryStatus``):

- a delivery is PENDING from creation until it succeeds or gives up; each try is an attempt (PENDING, then
  SUCCESS for a 2xx, FAILED otherwise) with ``responseStatusCode`` (null when no HTTP answer came: a
  refused connection, a timeout, or Saleor's IP filter, whose attempt response reads "Invalid IP address")
  and ``response`` (the body, cut at EVENT_DELIVERY_ATTEMPT_RESPONSE_SIZE_LIMIT and ended with "...");
- a delivery whose latest attempt FAILED but that is still PENDING is being retried (5xx and no answer are
  retried 5 times, 10 s to 160 s apart); a 3xx/4xx answer, exhausted retries or a disabled app/webhook make
  it FAILED;
- a successful delivery is deleted (``clear_successful_delivery``), so a healthy webhook lists none.

So a failed delivery, or a pending one whose latest attempt failed, inside the window is a failure, named by
event, HTTP status and an excerpt of the response.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from components.saleor.component import APP_NAME, APP_PERMISSIONS, event_key
from components.saleor.documents import ORDER_EVENTS, document

DOCUMENT = "app_deliveries"
MAX_DELIVERIES = 100  # Saleor serves at most 100 nodes per connection page
EXCERPT_CHARS = 160


class SaleorVerifyError(Exception):
    """Saleor could not be asked (login refused, HTTP error, top-level GraphQL error): one line."""


@dataclass(frozen=True)
class Finding:
    """One Saleor check: its name, whether it holds, and why (one line)."""

    name: str
    ok: bool
    detail: str


def _post(client: Any, api_url: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = client.post(api_url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise SaleorVerifyError(f"Saleor at {api_url} unreachable ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise SaleorVerifyError(f"Saleor at {api_url} answered HTTP {response.status_code}")
    answer = response.json()
    if answer.get("errors"):
        first = answer["errors"][0]
        code = ((first.get("extensions") or {}).get("exception") or {}).get("code", "")
        raise SaleorVerifyError(f"Saleor: {first.get('message', '')} {f'({code})' if code else ''}".strip())
    return answer["data"]


def _login(client: Any, api_url: str, email: str, password: str) -> str:
    """A staff access token; LOGIN_ATTEMPT_DELAYED (another login from this address) is waited out briefly."""
    from tenacity import retry, retry_if_exception_message, stop_after_attempt, wait_fixed

    @retry(retry=retry_if_exception_message(match=".*LOGIN_ATTEMPT_DELAYED.*"), stop=stop_after_attempt(4),
           wait=wait_fixed(1.5), reraise=True)
    def once() -> str:
        data = _post(client, api_url, {"query": document("token_create"),
                                       "variables": {"email": email, "password": password}})["tokenCreate"]
        if data.get("errors"):
            err = data["errors"][0]
            raise SaleorVerifyError(f"Saleor staff login as {email} refused: {err.get('code')} ({err.get('message')})")
        return data["token"]

    return once()


def fetch_app(api_url: str, email: str, password: str, app_id: str, *, timeout: float = 20.0) -> dict[str, Any] | None:
    """The app with its webhooks and their recent deliveries (None: Saleor has no such app)."""
    import httpx

    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        token = _login(client, api_url, email, password)
        data = _post(client, api_url, {"query": document(DOCUMENT),
                                       "variables": {"id": app_id, "first": MAX_DELIVERIES}}, token)
    return data["app"]


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


def evaluate(app: Mapping[str, Any] | None, app_id: str, webhook_urls: Mapping[str, str], *, since: datetime,
             permissions: tuple[str, ...] = APP_PERMISSIONS, app_name: str = APP_NAME) -> list[Finding]:
    """Findings for the app, each expected webhook, and the deliveries created at or after ``since``."""
    if app is None:
        return [Finding("saleor app", False, f"app {app_id} does not exist in Saleor (deleted, or another Saleor)")]
    findings = []
    have = sorted(p["code"] for p in app.get("permissions") or [])
    app_problems = []
    if not app.get("isActive"):
        app_problems.append("is not active")
    missing = sorted(set(permissions) - set(have))
    if missing:
        app_problems.append(f"lacks permission {', '.join(missing)} (has {', '.join(have) or 'none'})")
    findings.append(Finding("saleor app", not app_problems,
                            f"{app_name!r} {app_id}: " + ("; ".join(app_problems) or
                                                           f"active with {', '.join(have)}")))
    urls = {event_key(k): v for k, v in webhook_urls.items()}
    hooks = app.get("webhooks") or []
    for event in ORDER_EVENTS:
        name = f"saleor webhook {event}"
        found = [h for h in hooks if event in {e["eventType"] for e in h.get("asyncEvents") or []}]
        if not found:
            findings.append(Finding(name, False, f"no webhook of the app subscribes to {event}"))
            continue
        hook = found[0]
        problems = []
        if not hook.get("isActive"):
            problems.append("is not active")
        want = urls.get(event)
        if want and hook.get("targetUrl") != want:
            problems.append(f"targets {hook.get('targetUrl')}, not {want}")
        findings.append(Finding(name, not problems, f"{hook['id']}: " + ("; ".join(problems) or
                                                                         f"active, {hook.get('targetUrl')}")))
    recent = [d["node"] for h in hooks for d in ((h.get("eventDeliveries") or {}).get("edges") or [])
              if _when(d["node"]["createdAt"]) >= since]
    failing: dict[str, list[str]] = {}
    for delivery in recent:  # newest first, as queried
        if (problem := delivery_problem(delivery)) is not None:
            failing.setdefault(delivery["eventType"], []).append(problem)
    for event, problems in failing.items():
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        findings.append(Finding(f"saleor deliveries {event}", False, problems[0] + more))
    if not failing:
        findings.append(Finding("saleor deliveries", True,
                                f"no failed or retrying delivery since {since.isoformat(timespec='seconds')} "
                                f"({len(recent)} in flight)"))
    return findings
