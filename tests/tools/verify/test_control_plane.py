"""Verify's control-plane checks against the control-plane fake: authorize 0 units, settle, entitlements."""

from __future__ import annotations

import httpx

from tests.support.control_plane import service_token
from tests.tools.verify.helpers import target
from tools.verify import control_plane as control_plane_module
from tools.verify.result import Status

SECRET = "connector-jwt-secret-for-verify-tests-0123"


def probe_instance(cp) -> str:
    cp.add_issuer("cmp-provisioner", "provisioner-jwt-secret-for-verify-tests-01")
    response = httpx.post(f"{cp.url}/instances", headers={
        "Authorization": f"Bearer {service_token('cmp-provisioner', 'provisioner-jwt-secret-for-verify-tests-01')}",
        "Idempotency-Key": "saleor-order:probe"}, json={
        "order_id": "probe", "order_number": "1", "user_email": "probe@example.com", "channel": "default",
        "offering_version_id": "ov_probe", "plan_id": "probe", "quantity": 1})
    assert response.status_code == 201, response.text
    return response.json()["instance_id"]


def run(cp, probe, **changes):
    billing = changes.pop("billing", None)
    config_changes = {"gateway_billing": billing} if billing else None
    t = target({}, control_plane_url=cp.url, probe_instance_id=probe, config_changes=config_changes,
               env={"CMP_VERIFY_CP_JWT_SECRET": SECRET}, **changes)
    return {c.name: c for c in control_plane_module.check(t)}


def test_the_probe_authorizes_and_settles_zero_units_and_reads_entitlements(control_plane):
    control_plane.add_issuer("cmp-connector", SECRET)
    probe = probe_instance(control_plane)
    credits = control_plane.instances[probe].credits
    found = run(control_plane, probe)
    assert {n: c.status for n, c in found.items()} == {
        "billing authorize POST /billing/authorize": Status.OK, "billing settle POST /billing/settle": Status.OK,
        f"entitlements GET /instances/{probe}/entitlements": Status.OK}
    assert control_plane.instances[probe].credits == credits  # nothing consumed
    calls = [(c.method, c.path, c.status, c.issuer) for c in control_plane.calls if c.issuer == "cmp-connector"]
    assert calls == [("POST", "/billing/authorize", 200, "cmp-connector"),
                     ("POST", "/billing/settle", 200, "cmp-connector"),
                     ("GET", f"/instances/{probe}/entitlements", 200, "cmp-connector")]
    assert control_plane.authorizations == {}  # the probe's authorization was settled


def test_a_route_the_config_names_wrongly_fails_with_the_answer(control_plane):
    from components.gateway_billing.config import GatewayBillingConfig

    control_plane.add_issuer("cmp-connector", SECRET)
    probe = probe_instance(control_plane)
    found = run(control_plane, probe, billing=GatewayBillingConfig(authorize_path="/billing/authorise"))
    check = found["billing authorize POST /billing/authorise"]
    assert check.status is Status.FAIL
    assert check.reason == f'HTTP 404 for probe {probe}: {{"detail":"Not Found"}}'


def test_an_unknown_probe_and_a_refused_token_fail(control_plane):
    control_plane.add_issuer("cmp-connector", "another-jwt-secret-for-verify-tests-012345")
    found = run(control_plane, "inst_missing")
    assert found["billing authorize POST /billing/authorize"].reason.startswith("HTTP 401 for probe inst_missing")
    control_plane.add_issuer("cmp-connector", SECRET)
    found = run(control_plane, "inst_missing")
    assert found["billing authorize POST /billing/authorize"].reason == (
        'HTTP 404 for probe inst_missing: {"detail":"unknown instance"}')
    assert found["entitlements GET /instances/inst_missing/entitlements"].status is Status.FAIL


def test_no_probe_id_is_a_skip_with_the_reason(control_plane):
    checks = control_plane_module.check(target({}, control_plane_url=control_plane.url,
                                                env={"CMP_VERIFY_CP_JWT_SECRET": SECRET}))
    assert [(c.status, c.reason) for c in checks] == [
        (Status.SKIP, "no probe instance id for stack dev (--probe-instance-id or CMP_PROBE_INSTANCE_ID)")]
    assert control_plane.calls == []
