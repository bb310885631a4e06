"""Caller identity: one Authorization field, JWTs verified against the control plane's JWKS (real RSA, EC and
Ed25519 keys), the algorithm taken from the key, iss and aud required, and every refusal audited."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization

from tests.services.connector_gateway.conftest import (
    JWT_SECRET,
    REST_AUDIENCE,
    ManualClock,
    auth,
    caller_token,
    keyring,
)

GET_TICKET = {"binding": "zd", "arguments": {"ticket_id": 1}}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged(header: dict, claims: dict, sign) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


def _claims(cp_url: str) -> dict:
    now = int(time.time())
    return {"org": "acme", "project": "support", "sub": "mallory", "iss": cp_url, "aud": REST_AUDIENCE,
            "iat": now, "exp": now + 300}


def _refused(gw, headers, code: str = "unauthorized"):
    r = gw.invoke("zendesk.get_ticket", GET_TICKET, headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["error"] == code, r.json()
    assert r.headers["www-authenticate"].startswith("Bearer")
    return r.json()["message"]


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_each_algorithm_verifies_with_the_control_planes_real_keys(gateway, saas, alg):
    r = gateway.invoke("zendesk.get_ticket", GET_TICKET, alg=alg, sub=f"agent-{alg}")
    assert r.status_code == 200, r.text
    line = gateway.audit()[-1]
    assert (line["org"], line["sub"], line["decision"]) == ("acme", f"agent-{alg}", "allow")


def test_alg_confusion_and_none_are_refused(gateway, policies, saas):
    rsa = keyring().current("RS256")
    public_pem = rsa.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = _claims(policies.url)
    # An HS256 token "signed" with the RSA public key, naming the RSA key's kid: the key says RS256.
    confused = _forged({"alg": "HS256", "typ": "JWT", "kid": rsa.kid}, claims,
                       lambda data: hmac.new(public_pem, data, hashlib.sha256).digest())
    assert "algorithm" in _refused(gateway, {"authorization": f"Bearer {confused}"})
    unsigned = _forged({"alg": "none", "typ": "JWT", "kid": rsa.kid}, claims, lambda data: b"")
    assert "algorithm" in _refused(gateway, {"authorization": f"Bearer {unsigned}"})
    # The old shared secret signs nothing in JWKS mode.
    shared = caller_token(secret=JWT_SECRET)
    assert "kid" in _refused(gateway, {"authorization": f"Bearer {shared}"})
    assert saas.calls == []
    assert [(a["decision"], a["status"], a["org"]) for a in gateway.audit()] == [("deny", 401, None)] * 3


def test_wrong_audience_issuer_expired_and_missing_claims(gateway, saas):
    cases = [
        (auth(audience="cmp-control-plane"), "audience"),
        (auth(audience=None), "'aud'"),
        (auth(issuer="https://evil.example"), "issuer"),
        (auth(lifetime=-60), "expired"),
        (auth(org=None), "'org'"),
    ]
    for headers, fragment in cases:
        assert fragment in _refused(gateway, headers)
    assert saas.calls == []
    assert len(gateway.audit()) == len(cases)


def test_rotated_kid_is_fetched_once_the_refetch_interval_allows(start_gateway, saas):
    clock = ManualClock()
    gw = start_gateway(clock=clock, jwks_min_refetch_seconds=1.0)
    assert gw.invoke("zendesk.get_ticket", GET_TICKET).status_code == 200
    fetches = keyring().jwks_fetches
    new_kid = keyring().rotate("ES256")
    assert keyring().current("ES256").kid == new_kid
    # Within the interval the new kid is unknown (no second fetch); after it, one refetch finds it.
    assert "not in the caller JWKS" in _refused(gw, auth(kid=new_kid))
    assert keyring().jwks_fetches == fetches
    clock.advance(1.1)
    assert gw.invoke("zendesk.get_ticket", GET_TICKET, kid=new_kid).status_code == 200
    assert keyring().jwks_fetches == fetches + 1


def test_a_retired_key_stops_verifying_even_cached_tokens(start_gateway, saas):
    clock = ManualClock()
    gw = start_gateway(clock=clock, jwks_min_refetch_seconds=0, jwks_cache_ttl_seconds=0.5)
    old_kid = keyring().current("ES256").kid
    headers = auth(kid=old_kid)
    assert gw.invoke("zendesk.get_ticket", GET_TICKET, headers=headers).status_code == 200
    keyring().retire(old_kid)
    keyring().rotate("ES256")
    clock.advance(0.6)  # the cached key set is stale: the next call refetches it
    assert gw.invoke("zendesk.get_ticket", GET_TICKET).status_code == 200
    assert "not in the caller JWKS" in _refused(gw, headers)


def test_a_flood_of_unknown_kids_fetches_the_jwks_at_most_once_per_interval(start_gateway, saas):
    gw = start_gateway(jwks_min_refetch_seconds=30)
    assert gw.invoke("zendesk.get_ticket", GET_TICKET).status_code == 200
    before = keyring().jwks_fetches
    unpublished = keyring().add_key("ES256", published=False)
    for i in range(20):
        token = caller_token(kid=unpublished, sub=f"forger-{i}")
        assert "not in the caller JWKS" in _refused(gw, {"authorization": f"Bearer {token}"})
    assert keyring().jwks_fetches == before
    assert saas.calls_to("zendesk")[1:] == []
    assert 'cmp_connector_caller_jwks_fetches_total{result="ok"} 1.0' in gw.http.get("/metrics").text


def test_jwks_unreachable_is_503_auth_unavailable_and_not_ready(start_gateway, policies, saas):
    gw = start_gateway(jwks_min_refetch_seconds=0)
    headers = auth()  # minted before the control plane goes away
    policies.go_down()
    r = gw.invoke("zendesk.get_ticket", GET_TICKET, headers=headers)
    assert r.status_code == 503 and r.json()["error"] == "auth_unavailable", r.text
    assert r.headers["retry-after"]
    line = gw.audit()[-1]
    assert (line["decision"], line["status"], line["error"], line["org"]) == ("error", 503, "auth_unavailable", None)
    ready = gw.http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["caller_keys"] == "caller JWKS unreachable"
    assert saas.calls == []
    assert 'cmp_connector_caller_jwks_fetches_total{result="error"}' in gw.http.get("/metrics").text
    policies.come_up()
    assert gw.invoke("zendesk.get_ticket", GET_TICKET, headers=headers).status_code == 200


def test_hs256_only_as_an_explicit_setting_and_then_aud_is_required(start_gateway, saas):
    gw = start_gateway(caller_auth_mode="hs256", caller_jwks_url=None, caller_issuer=None)
    ok = gw.invoke("zendesk.get_ticket", GET_TICKET, headers=auth(secret=JWT_SECRET))
    assert ok.status_code == 200, ok.text
    assert "'aud'" in _refused(gw, auth(secret=JWT_SECRET, audience=None))
    assert "audience" in _refused(gw, auth(secret=JWT_SECRET, audience="cmp-control-plane"))
    assert "signature" in _refused(gw, auth(secret="another-secret-0123456789abcdefgh"))
    # A JWKS-signed token means nothing here: the algorithm must be HS256.
    assert "algorithm" in _refused(gw, auth())


@pytest.mark.parametrize("order", ["forged-first", "valid-first"])
def test_two_authorization_fields_are_ambiguous_on_rest(gateway, saas, order):
    valid = f"Bearer {caller_token()}"
    forged = f"Bearer {caller_token(org='globex')[:-6]}AAAAAA"
    pair = [forged, valid] if order == "forged-first" else [valid, forged]
    r = gateway.http.post("/v1/tools/zendesk.get_ticket:invoke", json=GET_TICKET,
                          headers=[("authorization", pair[0]), ("authorization", pair[1])])
    assert r.status_code == 401 and r.json()["error"] == "ambiguous_credentials", r.text
    assert saas.calls == []
    line = gateway.audit()[-1]
    assert (line["transport"], line["decision"], line["status"], line["error"], line["org"]) == (
        "rest", "deny", 401, "ambiguous_credentials", None)


def test_a_comma_joined_authorization_value_is_ambiguous(gateway, saas):
    joined = f"Bearer {caller_token()}, Bearer {caller_token(org='globex')}"
    assert _refused(gateway, {"authorization": joined}, "ambiguous_credentials")
    assert gateway.audit()[-1]["error"] == "ambiguous_credentials"


def test_two_authorization_fields_are_ambiguous_on_mcp_too(gateway, saas):
    resource = gateway.settings.resource_url
    acme, globex = (f"Bearer {caller_token(org=org, audience=resource)}" for org in ("acme", "globex"))
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for pair in ([globex, acme], [acme, f"{acme[:-6]}AAAAAA"]):
        r = gateway.http.post("/mcp", json=body, headers=[
            ("authorization", pair[0]), ("authorization", pair[1]),
            ("accept", "application/json, text/event-stream")])
        assert r.status_code == 401 and r.json()["error"] == "ambiguous_credentials", r.text
        assert "resource_metadata=" in r.headers["www-authenticate"]
    assert [(a["transport"], a["status"], a["error"]) for a in gateway.audit()] == [
        ("mcp", 401, "ambiguous_credentials")] * 2


def test_each_transport_takes_only_tokens_for_its_own_audience(gateway, saas):
    mcp_token = caller_token(audience=gateway.settings.resource_url)
    assert "audience" in _refused(gateway, {"authorization": f"Bearer {mcp_token}"})
    r = gateway.http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                          headers={**auth(), "accept": "application/json, text/event-stream"})
    assert r.status_code == 401 and "audience" in r.json()["message"]
