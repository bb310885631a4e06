"""The signature matrix, end to end over HTTP with the PostgreSQL inbox: what is refused is never stored."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from tests.services.provisioner.helpers import body_of, inbox_rows, order_payload

PAID = "order-fully-paid"


@pytest.fixture
def jws_provisioner(provisioner_factory, jwks_server):
    """Receiving only, trusting this test's own JWKS server (which the test may change or stop)."""
    return provisioner_factory(saleor=jwks_server, worker_enabled=False)


def stored(provisioner) -> int:
    return len(inbox_rows(provisioner.store))


def test_valid_jws_is_accepted_and_stored(jws_provisioner, jwks_server, saleor_key):
    body = body_of(order_payload("T3JkZXI6MQ=="))
    response = jws_provisioner.deliver(PAID, body, signature=saleor_key.sign(body), api_url=jwks_server.api_url)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "accepted", "order_id": "T3JkZXI6MQ=="}
    [row] = inbox_rows(jws_provisioner.store)
    assert (row.event, row.order_id, row.payload) == ("ORDER_FULLY_PAID", "T3JkZXI6MQ==", body)


def test_jws_from_a_key_the_jwks_lacks_is_refused(jws_provisioner, jwks_server, foreign_key):
    body = body_of(order_payload("T3JkZXI6Mg=="))
    response = jws_provisioner.deliver(PAID, body, signature=foreign_key.sign(body), api_url=jwks_server.api_url)
    assert response.status_code == 401
    assert "does not match the body" in response.json()["detail"]
    assert stored(jws_provisioner) == 0


def test_tampered_body_is_refused(jws_provisioner, jwks_server, saleor_key):
    body = body_of(order_payload("T3JkZXI6Mw=="))
    signature = saleor_key.sign(body)
    tampered = body.replace(b'"quantity":1', b'"quantity":9')
    assert tampered != body
    response = jws_provisioner.deliver(PAID, tampered, signature=signature, api_url=jwks_server.api_url)
    assert response.status_code == 401
    assert stored(jws_provisioner) == 0


def test_unknown_kid_is_refused_and_cannot_force_refetches(provisioner_factory, jwks_server, saleor_key):
    """Within JWKS_MIN_REFETCH_SECONDS of a fetch, forged kids are refused without another one (the refetch after
    that interval: tests/services/common/test_jwks.py, on an injected clock)."""
    provisioner = provisioner_factory(saleor=jwks_server, jwks_min_refetch_seconds=600, worker_enabled=False)
    body = body_of(order_payload("T3JkZXI6NA=="))
    ok = provisioner.deliver(PAID, body, signature=saleor_key.sign(body), api_url=jwks_server.api_url)
    assert ok.status_code == 200
    assert jwks_server.fetches == 1
    for n in range(3):
        other = body_of(order_payload(f"T3JkZXI6NB{n}"))
        response = provisioner.deliver(
            PAID, other, signature=saleor_key.sign(other, kid="rotated-kid"), api_url=jwks_server.api_url
        )
        assert response.status_code == 401
        assert "kid 'rotated-kid' is not in the JWKS" in response.json()["detail"]
    assert jwks_server.fetches == 1  # fetched just now: a forged kid cannot force another fetch
    assert stored(provisioner) == 1


def test_rotated_key_is_picked_up_by_refetch(provisioner_factory, jwks_server, saleor_key):
    from tests.services.provisioner.helpers import SigningKey

    provisioner = provisioner_factory(saleor=jwks_server, jwks_min_refetch_seconds=0, worker_enabled=False)
    first = body_of(order_payload("T3JkZXI6NQ=="))
    assert provisioner.deliver(PAID, first, signature=saleor_key.sign(first), api_url=jwks_server.api_url).is_success
    rotated = SigningKey("saleor-key-2")
    jwks_server.keys.append(rotated)
    second = body_of(order_payload("T3JkZXI6Ng=="))
    response = provisioner.deliver(PAID, second, signature=rotated.sign(second), api_url=jwks_server.api_url)
    assert response.status_code == 200, response.text
    assert stored(provisioner) == 2


def test_unknown_origin_is_refused_without_fetching(jws_provisioner, jwks_server, saleor_key):
    body = body_of(order_payload("T3JkZXI6Nw=="))
    response = jws_provisioner.deliver(
        PAID, body, signature=saleor_key.sign(body), api_url="https://evil.example.com/graphql/"
    )
    assert response.status_code == 401
    assert "https://evil.example.com is not in SALEOR_ALLOWED_ORIGINS" in response.json()["detail"]
    assert jwks_server.fetches == 0
    assert stored(jws_provisioner) == 0


def test_jwks_unreachable_is_503_so_saleor_retries(jws_provisioner, jwks_server, saleor_key):
    jwks_server.failing = True
    body = body_of(order_payload("T3JkZXI6OA=="))
    response = jws_provisioner.deliver(PAID, body, signature=saleor_key.sign(body), api_url=jwks_server.api_url)
    assert response.status_code == 503
    assert stored(jws_provisioner) == 0


def _legacy_hmac(body: bytes, secret: bytes) -> str:
    """What a Saleor app with a secret key sent before JWS: the hex HMAC-SHA256 of the body."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("case", ["lower-case hex", "upper-case hex"])
def test_a_legacy_hmac_signature_is_refused(jws_provisioner, jwks_server, case):
    """Saleor signs with JWS; a hex HMAC of the body, even one made with a real secret, is no signature here."""
    body = body_of(order_payload("T3JkZXI6OQ=="))
    signature = _legacy_hmac(body, b"the-saleor-webhook-secret")
    signature = signature.upper() if case == "upper-case hex" else signature
    response = jws_provisioner.deliver(PAID, body, signature=signature, api_url=jwks_server.api_url)
    assert response.status_code == 401
    assert response.json()["detail"] == "Saleor-Signature is not a detached JWS (<header>..<signature>)"
    assert jwks_server.fetches == 0
    assert stored(jws_provisioner) == 0


@pytest.mark.parametrize("signature", ["", "not-a-signature", "a..b..c"])
def test_missing_or_garbled_signature_is_refused(jws_provisioner, signature):
    body = body_of(order_payload("T3JkZXI6MTM="))
    response = jws_provisioner.deliver(PAID, body, signature=signature)
    assert response.status_code == 401
    if signature == "":
        assert response.json()["detail"] == "Saleor-Signature header is missing"
    assert stored(jws_provisioner) == 0


def test_right_signature_under_the_wrong_event_is_refused(jws_provisioner, jwks_server, saleor_key):
    body = body_of(order_payload("T3JkZXI6MTQ="))
    signature = saleor_key.sign(body)
    response = jws_provisioner.deliver(
        PAID, body, signature=signature, api_url=jwks_server.api_url, header_event="order_cancelled"
    )
    assert response.status_code == 400
    assert "Saleor-Event 'order_cancelled' does not match this endpoint (order_fully_paid)" in response.text
    # Same bytes, right header, wrong endpoint: the payload's __typename gives it away.
    response = jws_provisioner.deliver("order-cancelled", body, signature=signature, api_url=jwks_server.api_url)
    assert response.status_code == 422
    assert "__typename must be 'OrderCancelled'" in response.json()["detail"]
    assert stored(jws_provisioner) == 0


def test_jws_with_wrong_algorithm_header_is_refused(jws_provisioner, jwks_server):
    import base64

    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "saleor-key-1"}).encode()).rstrip(b"=")
    body = body_of(order_payload("T3JkZXI6MTU="))
    response = jws_provisioner.deliver(PAID, body, signature=header.decode() + "..c2ln", api_url=jwks_server.api_url)
    assert response.status_code == 401
    assert "alg must be RS256" in response.json()["detail"]


def test_a_large_body_within_max_body_bytes_verifies(provisioner_factory, jwks_server, saleor_key):
    """The only size limit is MAX_BODY_BYTES, checked before the signature."""
    provisioner = provisioner_factory(saleor=jwks_server, max_body_bytes=262144, worker_enabled=False)
    payload = order_payload("T3JkZXI6MTc=")
    payload["order"]["userEmail"] = "x" * 150_000 + "@example.com"
    body = body_of(payload)
    assert 128_000 < len(body) < 262144
    response = provisioner.deliver(PAID, body, signature=saleor_key.sign(body), api_url=jwks_server.api_url)
    assert response.status_code == 200, response.text


def _header(**fields) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"alg": "RS256", "kid": "saleor-key-1"}, "unencoded-payload JWS (b64:false, crit [b64])"),
        ({"alg": "RS256", "b64": False, "kid": "saleor-key-1"}, "unencoded-payload JWS"),  # b64 without crit
        ({"alg": "none", "b64": False, "crit": ["b64"], "kid": "saleor-key-1"}, "alg must be RS256, got 'none'"),
        ({"alg": "RS256", "b64": False, "crit": ["b64"]}, "header has no kid"),
    ],
)
def test_headers_other_than_saleors_shape_are_refused(jws_provisioner, jwks_server, saleor_key, header, expected):
    body = body_of(order_payload("T3JkZXI6MTg="))
    real = saleor_key.sign(body).split(".")[2]  # a real signature over another header
    response = jws_provisioner.deliver(
        PAID, body, signature=f"{_header(**header)}..{real}", api_url=jwks_server.api_url
    )
    assert response.status_code == 401
    assert expected in response.json()["detail"]
    assert stored(jws_provisioner) == 0


def test_an_attached_jws_of_the_body_is_refused(jws_provisioner, jwks_server, saleor_key):
    """A normal (b64:true) JWS carrying the body: valid JOSE, but not the unencoded-payload form Saleor sends."""
    from jwt import api_jws

    body = body_of(order_payload("T3JkZXI6MTk="))
    attached = api_jws.encode(body, key=saleor_key.private, algorithm="RS256", headers={"kid": saleor_key.kid})
    response = jws_provisioner.deliver(PAID, body, signature=attached, api_url=jwks_server.api_url)
    assert response.status_code == 401
    assert stored(jws_provisioner) == 0
