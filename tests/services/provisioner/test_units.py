"""Settings, line mapping, the JWKS cache and the backoff, without servers."""

from __future__ import annotations

import random

import httpx
import pytest
from pydantic import ValidationError

from service_src.provisioner.jwks import JwksCache
from service_src.provisioner.offerings import Offering, offering_for_line
from service_src.provisioner.payloads import OrderEvent, OrderLine, PayloadError, parse_payload
from service_src.provisioner.settings import ProvisionerSettings, origin_of
from service_src.provisioner.signatures import KeysUnavailable, SignatureError
from service_src.provisioner.worker import backoff_seconds, purchases
from tests.services.provisioner.helpers import SigningKey, body_of, line, order_payload

BASE = {"CONTROL_PLANE_URL": "http://cp:8080", "SERVICE_JWT_SECRET": "s" * 32, "SALEOR_ALLOWED_ORIGINS": ""}


def settings_from_env(monkeypatch, **env: str) -> ProvisionerSettings:
    for name, value in {**BASE, **env}.items():
        monkeypatch.setenv(name, value)
    return ProvisionerSettings()


def test_settings_read_the_configmap_and_secret_names(monkeypatch):
    settings = settings_from_env(
        monkeypatch,
        SALEOR_ALLOWED_ORIGINS="https://Saleor.example.com, https://shop.example.com:8443/",
        SALEOR_LEGACY_HMAC="true",
        SALEOR_WEBHOOK_SECRET="whsec",
        JWKS_CACHE_TTL_SECONDS="60",
        JWKS_MIN_REFETCH_SECONDS="10",
        RETRY_MAX_ATTEMPTS="4",
        RETRY_BACKOFF_SECONDS="2",
        RETRY_BACKOFF_MAX_SECONDS="30",
        WORKER_POLL_SECONDS="0.25",
        WORKER_BATCH_SIZE="7",
        MAX_BODY_BYTES="131072",
        CP_TIMEOUT_SECONDS="3",
        LOG_LEVEL="debug",
        DATABASE_URL="postgresql+psycopg://u:pw@db:5432/provisioner",
    )
    assert settings.allowed_origins == {"https://saleor.example.com", "https://shop.example.com:8443"}
    assert settings.hmac_secret == b"whsec"
    assert (settings.retry_max_attempts, settings.retry_backoff_seconds, settings.retry_backoff_max_seconds) == (
        4,
        2,
        30,
    )
    assert (settings.worker_poll_seconds, settings.worker_batch_size, settings.max_body_bytes) == (0.25, 7, 131072)
    assert (settings.jwks_cache_ttl_seconds, settings.jwks_min_refetch_seconds, settings.cp_timeout_seconds) == (
        60,
        10,
        3,
    )
    assert settings.log_level == "DEBUG"
    assert "pw" not in repr(settings) and "whsec" not in repr(settings)


def test_settings_defaults(monkeypatch):
    settings = settings_from_env(monkeypatch, SALEOR_ALLOWED_ORIGINS="https://saleor.example.com")
    assert settings.hmac_secret is None
    assert (settings.retry_max_attempts, settings.retry_backoff_seconds, settings.retry_backoff_max_seconds) == (
        8,
        1,
        300,
    )
    assert (settings.worker_poll_seconds, settings.worker_batch_size, settings.max_body_bytes) == (0.5, 20, 262144)
    assert settings.worker_batches_in_flight == 4
    assert (settings.jwks_cache_ttl_seconds, settings.jwks_min_refetch_seconds, settings.port) == (300, 30, 8000)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SALEOR_ALLOWED_ORIGINS is empty"),
        ({"SALEOR_LEGACY_HMAC": "true"}, "SALEOR_LEGACY_HMAC=true needs SALEOR_WEBHOOK_SECRET"),
        ({"SALEOR_ALLOWED_ORIGINS": "https://saleor.example.com/graphql/"}, "must be an origin"),
        ({"SALEOR_ALLOWED_ORIGINS": "saleor.example.com"}, "ORIGINS entry 'saleor.example.com' is not an http(s) URL"),
        (
            {"SALEOR_ALLOWED_ORIGINS": "https://a.example", "CONTROL_PLANE_URL": "cp:80"},
            "CONTROL_PLANE_URL 'cp:80' is not",
        ),
        ({"SALEOR_ALLOWED_ORIGINS": "https://a.example", "DATABASE_URL": "mysql://x"}, "DATABASE_URL must be"),
        ({"SALEOR_ALLOWED_ORIGINS": "https://a.example", "LOG_LEVEL": "loud"}, "LOG_LEVEL='loud' must be one of"),
        ({"SALEOR_ALLOWED_ORIGINS": "https://a.example", "WORKER_BATCH_SIZE": "0"}, "worker_batch_size"),
        ({"SALEOR_ALLOWED_ORIGINS": "https://a.example", "WORKER_BATCHES_IN_FLIGHT": "0"}, "worker_batches_in_flight"),
        (
            {"SALEOR_ALLOWED_ORIGINS": "https://a.example", "RETRY_BACKOFF_MAX_SECONDS": "0.5"},
            "RETRY_BACKOFF_MAX_SECONDS must be >= RETRY_BACKOFF_SECONDS",
        ),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch, env, message):
    with pytest.raises(ValidationError) as info:
        settings_from_env(monkeypatch, **env)
    assert message in str(info.value)


def test_origin_of():
    assert origin_of("https://Saleor.Example.com:443/graphql/") == "https://saleor.example.com"
    assert origin_of("http://127.0.0.1:8000/graphql/") == "http://127.0.0.1:8000"
    with pytest.raises(ValueError, match="not an http"):
        origin_of("ftp://x")


def _line(**fields) -> OrderLine:
    return OrderLine.model_validate({"id": "l", "quantity": 1, **fields})


def test_offering_mapping():
    meta = {
        "id": "v",
        "sku": "other:sku",
        "metadata": [{"key": "cmp.offering_version_id", "value": "ov_1"}, {"key": "cmp.plan_id", "value": "pro"}],
    }
    assert offering_for_line(_line(variant=meta)) == Offering("ov_1", "pro")  # metadata wins over SKU
    assert offering_for_line(_line(variant={"id": "v", "sku": "ov_2:team", "metadata": []})) == Offering("ov_2", "team")
    half = {"id": "v", "sku": "ov_3:basic", "metadata": [{"key": "cmp.offering_version_id", "value": "ov_9"}]}
    assert offering_for_line(_line(variant=half)) == Offering("ov_3", "basic")  # half metadata: SKU
    assert offering_for_line(_line(productSku="ov_4:pro", variant=None)) == Offering("ov_4", "pro")
    for sku in ("TSHIRT", "a:b:c", ":pro", "ov_1:", "ov 1:pro", None):
        assert offering_for_line(_line(productSku=sku, variant=None)) is None, sku


def test_purchases_merge_lines_of_the_same_offering():
    payload = parse_payload(
        body_of(order_payload("o", lines=[line("ov_1", "pro", quantity=2), line("ov_1", "pro"), line("ov_2", "x")])),
        OrderEvent.ORDER_FULLY_PAID,
    )
    got = {(p.key, p.quantity, len(p.line_ids)) for p in purchases(payload)}
    assert got == {("ov_1:pro", 3, 2), ("ov_2:x", 1, 1)}


def test_the_interface_example_payload_parses():
    """The payload DESIGN/issue 6 give for the Saleor subscription, byte for byte."""
    body = (
        b'{"__typename":"OrderFullyPaid","order":{"id":"T3JkZXI6MQ==","number":"42","userEmail":"a@b.c",'
        b'"channel":{"slug":"default-channel"},"total":{"gross":{"amount":10.0,"currency":"USD"}},'
        b'"lines":[{"id":"T3JkZXJMaW5lOjE=","quantity":1,"productSku":"ov_100:pro","variant":{"id":"UHY6MQ==",'
        b'"sku":"ov_100:pro","metadata":[{"key":"cmp.offering_version_id","value":"ov_100"},'
        b'{"key":"cmp.plan_id","value":"pro"}]}}]}}'
    )
    payload = parse_payload(body, OrderEvent.ORDER_FULLY_PAID)
    assert payload.order.number == "42"
    assert [(p.offering, p.quantity) for p in purchases(payload)] == [(Offering("ov_100", "pro"), 1)]
    with pytest.raises(PayloadError, match="__typename must be 'OrderCancelled'"):
        parse_payload(body, OrderEvent.ORDER_CANCELLED)


def test_event_names():
    assert [(e.header, e.path, e.typename) for e in OrderEvent] == [
        ("order_fully_paid", "order-fully-paid", "OrderFullyPaid"),
        ("order_created", "order-created", "OrderCreated"),
        ("order_cancelled", "order-cancelled", "OrderCancelled"),
    ]


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    rng = random.Random(1)
    for attempt, full in [(1, 1), (2, 2), (3, 4), (6, 32), (10, 300), (30, 300)]:
        delays = [backoff_seconds(attempt, 1.0, 300.0, rng) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays), (attempt, min(delays), max(delays))
        assert len({round(d, 6) for d in delays}) > 1  # jittered


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_jwks_cache_ttl_refetch_limit_and_stale_keys_on_outage():
    key = SigningKey("k1")
    clock = _Clock()
    state = {"fetches": 0, "fail": False, "keys": [key.jwk()]}

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/.well-known/jwks.json"
        state["fetches"] += 1
        if state["fail"]:
            return httpx.Response(500)
        return httpx.Response(200, json={"keys": state["keys"]})

    cache = JwksCache(ttl_seconds=300, min_refetch_seconds=30, clock=clock, transport=httpx.MockTransport(handler))
    origin = "https://saleor.example.com"
    assert await cache.key(origin, "k1") is not None
    assert await cache.key(origin, "k1") is not None
    assert state["fetches"] == 1
    with pytest.raises(SignatureError):
        await cache.key(origin, "k2")
    assert state["fetches"] == 1  # within the refetch limit
    clock.now += 31
    with pytest.raises(SignatureError):
        await cache.key(origin, "k2")
    assert state["fetches"] == 2
    clock.now += 301  # stale: refreshed; the JWKS is down, so the stale key keeps verifying
    state["fail"] = True
    assert await cache.key(origin, "k1") is not None
    assert state["fetches"] == 3
    clock.now += 31  # an unknown kid while the JWKS is down: 503 (Saleor retries), not a refusal for good
    with pytest.raises(KeysUnavailable, match="could not be refetched"):
        await cache.key(origin, "k2")
    assert state["fetches"] == 4
    await cache.aclose()

    empty = JwksCache(ttl_seconds=300, min_refetch_seconds=30, clock=clock, transport=httpx.MockTransport(handler))
    with pytest.raises(KeysUnavailable):
        await empty.key(origin, "k1")
    await empty.aclose()
