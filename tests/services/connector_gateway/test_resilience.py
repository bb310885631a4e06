"""Dependencies failing: the control plane down (cached policy, then closed) and Vault down (503)."""

from __future__ import annotations

import pytest

from service_src.common.http import HttpSession
from service_src.connector_gateway.auth import Caller, service_token
from service_src.connector_gateway.errors import GatewayError
from service_src.connector_gateway.policy import PolicyCache
from tests.services.connector_gateway.conftest import JWT_SECRET, ManualClock
from tests.support.net import free_port

GET_TICKET = {"binding": "zd", "arguments": {"ticket_id": 1}}


def test_control_plane_down_serves_cached_policy_until_ttl_plus_grace_then_503(start_gateway, policies, saas):
    policies.set_policy("acme", "support", [{"binding": "zd", "connector": "zendesk",
                                             "tools": ["zendesk.get_ticket"]}], ttl_seconds=0)
    clock = ManualClock()
    gw = start_gateway(clock=clock, policy_cache_grace_seconds=1.0)
    assert gw.invoke("zendesk.get_ticket", GET_TICKET).status_code == 200
    policies.go_down()
    cached = gw.invoke("zendesk.get_ticket", GET_TICKET)
    assert cached.status_code == 200, cached.text  # TTL over, inside the grace: the cached policy serves
    clock.advance(1.1)
    closed = gw.invoke("zendesk.get_ticket", GET_TICKET)
    assert closed.status_code == 503, closed.text
    assert closed.json()["error"] == "policy_unavailable"
    assert closed.headers["retry-after"]
    assert len(saas.calls_to("zendesk")) == 2
    assert gw.audit()[-1]["decision"] == "error" and gw.audit()[-1]["status"] == 503
    ready = gw.http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["control_plane"] != "ok"


def test_control_plane_down_without_any_cached_policy_fails_closed(gateway, policies, saas):
    gateway.http.get("/readyz")  # the caller keys are cached; no policy is
    policies.go_down()
    r = gateway.invoke("zendesk.get_ticket", GET_TICKET)
    assert r.status_code == 503 and r.json()["error"] == "policy_unavailable"
    assert saas.calls == []


def test_control_plane_5xx_counts_as_down(gateway, policies):
    policies.fail_next(3, status=503)
    assert gateway.invoke("zendesk.get_ticket", GET_TICKET).status_code == 503


async def test_policy_cache_ttl_grace_and_refresh_with_a_controlled_clock(policies):
    now = [1000.0]
    policies.set_policy("acme", "support", [{"binding": "zd", "connector": "zendesk", "tools": ["zendesk.get_ticket"]}],
                        ttl_seconds=30)
    http = HttpSession(timeout_seconds=1)
    try:
        cache = PolicyCache(http, policies.url, service_token(JWT_SECRET), timeout=1, grace_seconds=60,
                            clock=lambda: now[0])
        caller = Caller("acme", "support", "agent")
        assert (await cache.get(caller)).allowed_tools() == {"zendesk.get_ticket"}
        now[0] += 29
        await cache.get(caller)
        assert len(policies.calls_to("GET", "/connectors/policy")) == 1  # fresh: no second fetch
        policies.set_policy("acme", "support", [], ttl_seconds=30)
        now[0] += 2
        assert (await cache.get(caller)).allowed_tools() == frozenset()  # TTL over: refetched
        policies.fail_next(100)
        now[0] += 30 + 58  # fetched at 1031: fresh until 1061, usable until 1121
        assert (await cache.get(caller)).bindings == ()  # CP failing, inside TTL + grace: cached
        now[0] += 3
        with pytest.raises(GatewayError) as refused:
            await cache.get(caller)
        assert refused.value.status == 503
    finally:
        await http.aclose()
    call = policies.calls_to("GET", "/connectors/policy")[0]
    assert call.issuer == "cmp-connector" and call.status == 200


def test_vault_down_is_503_and_not_ready(start_gateway, saas):
    gw = start_gateway(vault_addr=f"http://127.0.0.1:{free_port()}")
    r = gw.invoke("zendesk.get_ticket", GET_TICKET)
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "vault_unavailable"
    assert saas.calls == []
    line = gw.audit()[-1]
    assert (line["decision"], line["status"], line["error"]) == ("allow", 503, "vault_unavailable")
    ready = gw.http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["vault"] != "ok"


def test_credentials_are_cached_for_the_configured_ttl(start_gateway, seeded_openbao):
    gw = start_gateway(credential_cache_ttl_seconds=30)
    before = len(seeded_openbao.audit_paths())
    for _ in range(5):
        assert gw.invoke("zendesk.get_ticket", GET_TICKET).status_code == 200
    reads = [p for p in seeded_openbao.audit_paths()[before:] if p.startswith("kv/")]
    assert reads == ["kv/data/connectors/acme/support/zd"]


def test_health_and_ready(gateway):
    assert gateway.http.get("/healthz").json() == {"status": "ok"}
    ready = gateway.http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ok", "checks": {"vault": "ok", "control_plane": "ok", "caller_keys": "ok"}}


def test_unexpected_error_is_500_audited_and_not_echoed(gateway, monkeypatch, caplog):
    from dataclasses import replace

    from service_src.connector_gateway.connectors import TOOLS

    async def boom(ctx, creds, args):
        raise RuntimeError("do-not-echo-this")

    monkeypatch.setitem(TOOLS, "zendesk.get_ticket", replace(TOOLS["zendesk.get_ticket"], run=boom))
    r = gateway.invoke("zendesk.get_ticket", GET_TICKET)
    assert r.status_code == 500 and r.json()["error"] == "internal_error"
    assert "do-not-echo-this" not in r.text
    line = gateway.audit()[-1]
    assert (line["decision"], line["status"], line["error"]) == ("error", 500, "internal_error")
