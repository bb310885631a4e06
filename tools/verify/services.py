"""The services: /readyz of the gateway and the provisioner (their dependencies are reachable), and how far
behind the provisioner's catch-up of Saleor's orders is (its /metrics)."""

from __future__ import annotations

import math

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tools.verify.inputs import Target
from tools.verify.result import Check, fail, ok

AREA = "services"
SERVICES = ("connectorGateway", "provisioner")
CATCHUP_LAG = "cmp_provisioner_catchup_lag_seconds"


def _readyz(target: Target, service: str) -> tuple[Check, bool]:
    """The service's /readyz check, and whether the service answered at all."""
    name = f"{service} /readyz"
    url = target.service_urls.get(service)
    if not url:
        return fail(AREA, name, f"no URL: the stack has no serviceUrls.{service} output; pass "
                                f"--url {service}=http://..."), False
    try:
        response = httpx.get(f"{url.rstrip('/')}/readyz", timeout=target.timeout)
    except httpx.HTTPError as exc:
        return fail(AREA, name, f"{url} unreachable ({type(exc).__name__})"), False
    if response.status_code == 200:
        return ok(AREA, name, f"ready at {url}"), True
    body = " ".join(response.text.split())[:160]
    return fail(AREA, name, f"HTTP {response.status_code} at {url}: {body}"), True


def catchup_lag(target: Target) -> Check:
    """The provisioner's cmp_provisioner_catchup_lag_seconds against the alert's bound (monitoring.thresholds)."""
    name = "provisioner catch-up lag"
    url = target.service_urls["provisioner"].rstrip("/")
    bound = target.config.monitoring.thresholds.catchup_lag_seconds
    try:
        text = httpx.get(f"{url}/metrics", timeout=target.timeout).text
        values = [s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == CATCHUP_LAG]
    except (httpx.HTTPError, ValueError) as exc:
        return fail(AREA, name, f"{url}/metrics unreadable ({type(exc).__name__})")
    if not values:
        return fail(AREA, name, f"{url}/metrics has no {CATCHUP_LAG}: this provisioner does not catch up with Saleor")
    lag = values[0]
    if math.isinf(lag) or math.isnan(lag):
        return fail(AREA, name, "catch-up has not completed a read of Saleor yet (the provisioner's /readyz and log "
                                "say why: app token missing or refused, Saleor unreachable)")
    if lag > bound:
        return fail(AREA, name, f"{lag:.0f} s behind, over the bound of {bound} s (monitoring.thresholds."
                                "catchupLagSeconds): docs/monitoring.md, CmpProvisionerCatchUpLag")
    return ok(AREA, name, f"{lag:.0f} s behind (bound {bound} s)")


def check(target: Target) -> list[Check]:
    checks = []
    for service in SERVICES:
        readyz, answered = _readyz(target, service)
        checks.append(readyz)
        if service == "provisioner" and answered:
            checks.append(catchup_lag(target))
    return checks
