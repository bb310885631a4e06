"""The services: /readyz of the gateway and the provisioner (their dependencies are reachable)."""

from __future__ import annotations

import httpx

from tools.verify.inputs import Target
from tools.verify.result import Check, fail, ok

AREA = "services"
SERVICES = ("connectorGateway", "provisioner")


def check(target: Target) -> list[Check]:
    checks = []
    for service in SERVICES:
        name = f"{service} /readyz"
        url = target.service_urls.get(service)
        if not url:
            checks.append(fail(AREA, name, f"no URL: the stack has no serviceUrls.{service} output; pass "
                                           f"--url {service}=http://..."))
            continue
        try:
            response = httpx.get(f"{url.rstrip('/')}/readyz", timeout=target.timeout)
        except httpx.HTTPError as exc:
            checks.append(fail(AREA, name, f"{url} unreachable ({type(exc).__name__})"))
            continue
        if response.status_code == 200:
            checks.append(ok(AREA, name, f"ready at {url}"))
        else:
            body = " ".join(response.text.split())[:160]
            checks.append(fail(AREA, name, f"HTTP {response.status_code} at {url}: {body}"))
    return checks
