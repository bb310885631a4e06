"""Control plane: the billing routes the GatewayBilling config names, and the entitlements route, answer per the
contract. A probe instance per stack: authorize 0 units, settle that authorization with 0 units, read the
instance's entitlements; nothing is consumed.

Calls carry a service JWT (HS256, iss=<issuer>, aud=cmp-control-plane, 2 minutes) signed with the issuer's
service_jwt_secret: from CMP_VERIFY_CP_JWT_SECRET, else read from Vault with the token `pulumi up` uses.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt

from tools.verify.inputs import CP_SECRET_ENV, PROBE_INSTANCE_ENV, Target
from tools.verify.result import Check, fail, ok, skip
from tools.verify.vault import service_jwt_secret

AREA = "control-plane"
AUDIENCE = "cmp-control-plane"


def service_token(issuer: str, secret: str, lifetime_seconds: int = 120) -> str:
    now = int(time.time())
    return jwt.encode({"iss": issuer, "aud": AUDIENCE, "iat": now, "exp": now + lifetime_seconds}, secret,
                      algorithm="HS256")


def _excerpt(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return text if len(text) <= 160 else text[:157] + "..."


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _shape(answer: Any, fields: dict[str, tuple[type, ...]]) -> str | None:
    if not isinstance(answer, dict):
        return "the answer is not a JSON object"
    for key, types in fields.items():
        if key not in answer:
            return f"the answer lacks {key!r}"
        if not isinstance(answer[key], types):
            return f"{key!r} is {type(answer[key]).__name__}, not {'/'.join(t.__name__ for t in types)}"
    return None


def check(target: Target) -> list[Check]:
    billing = target.config.gateway_billing
    probe = target.probe_instance_id
    if not probe:
        return [skip(AREA, "control plane routes", f"no probe instance id for stack {target.stack} "
                                                   f"(--probe-instance-id or {PROBE_INSTANCE_ENV})")]
    secret = target.env.get(CP_SECRET_ENV)
    if not secret:
        try:
            secret = service_jwt_secret(target, f"cmp/{target.cp_issuer.removeprefix('cmp-')}")
        except httpx.HTTPError:
            secret = None
    if not secret:
        return [fail(AREA, "control plane routes", f"no signing secret for {target.cp_issuer}: set {CP_SECRET_ENV} "
                                                   "or VAULT_TOKEN (its service_jwt_secret is read from Vault)")]
    headers = {"Authorization": f"Bearer {service_token(target.cp_issuer, secret)}"}
    checks: list[Check] = []
    try:
        with httpx.Client(base_url=target.control_plane_url, headers=headers, timeout=target.timeout) as client:
            if billing.billing_enabled:
                checks += _billing(client, billing.authorize_path, billing.settle_path, probe)
            else:
                checks.append(skip(AREA, "billing routes", "gatewayBilling.billingEnabled is false"))
            checks.append(_entitlements(client, billing.entitlements_path.replace("{id}", probe)))
    except httpx.HTTPError as exc:
        checks.append(fail(AREA, "control plane", f"{target.control_plane_url} unreachable ({type(exc).__name__})"))
    return checks


def _billing(client: httpx.Client, authorize_path: str, settle_path: str, probe: str) -> list[Check]:
    name = f"billing authorize POST {authorize_path}"
    response = client.post(authorize_path, json={"instance_id": probe, "units": 0})
    if response.status_code != 200:
        return [fail(AREA, name, f"HTTP {response.status_code} for probe {probe}: {_excerpt(response)}")]
    answer = _json(response)
    problem = _shape(answer, {"allowed": (bool,), "remaining": (int, float)})
    if problem:
        return [fail(AREA, name, problem)]
    if not answer["allowed"] or not answer.get("authorization_id"):
        return [fail(AREA, name, f"0 units for probe {probe} not allowed (remaining {answer['remaining']})")]
    checks = [ok(AREA, name, f"0 units allowed for probe {probe}")]
    settle = f"billing settle POST {settle_path}"
    response = client.post(settle_path, json={"authorization_id": answer["authorization_id"], "units": 0})
    if response.status_code != 200:
        checks.append(fail(AREA, settle, f"HTTP {response.status_code}: {_excerpt(response)}"))
    else:
        checks.append(ok(AREA, settle, "the probe's authorization settled with 0 units"))
    return checks


def _entitlements(client: httpx.Client, path: str) -> Check:
    name = f"entitlements GET {path}"
    response = client.get(path)
    if response.status_code != 200:
        return fail(AREA, name, f"HTTP {response.status_code}: {_excerpt(response)}")
    if not isinstance(_json(response), dict):
        return fail(AREA, name, "the answer is not a JSON object")
    return ok(AREA, name, "answers an entitlements document")
