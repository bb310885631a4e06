"""The shared staff token against a fake that throttles logins like Saleor: one login for concurrent operations,
renewal before expiry, LOGIN_ATTEMPT_DELAYED waited out within the deadline, refused credentials never retried."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from components.saleor.auth import TOKENS, grant_for, lifetime_seconds
from components.saleor.client import SaleorSession
from components.saleor.documents import document, order_subscription
from components.saleor.errors import SaleorError, SaleorUnavailable
from components.saleor.provider import SaleorAppProvider, SaleorWebhookProvider
from tests.components.saleor.conftest import configured
from tests.components.saleor.fake_saleor import FakeSaleor, LoginThrottle
from tests.support.wait import wait_until

APP = {"name": "CMP Provisioner", "identifier": "cmp-provisioner", "permissions": ["MANAGE_ORDERS"]}
URL = "http://cmp-provisioner.cmp.svc.cluster.local:8000/webhooks/"


def hook(app_id: str, event: str = "ORDER_CREATED") -> dict:
    return {"app_id": app_id, "name": event, "target_url": URL + event.lower(), "async_events": [event],
            "query": order_subscription(event), "is_active": True, "custom_headers": {}}


def raw_login(fake: FakeSaleor, password: str | None = None) -> dict:
    """One tokenCreate straight over HTTP, as another client on this address would send it."""
    body = {"query": document("token_create"),
            "variables": {"email": fake.staff.email, "password": password or fake.staff.password}}
    return httpx.post(fake.api_url, json=body, timeout=10).json()["data"]["tokenCreate"]


def in_threads(count: int, fn) -> list:
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(fn, n) for n in range(count)]
        return [f.result() for f in futures]


# ---- the fake is Saleor's throttle (saleor/account/throttling.py) -----------------------------------------------
def test_fake_refuses_a_login_while_another_is_in_progress(fake_saleor):
    fake_saleor.hold_next_login(refusals=2)  # the first password check lasts until the two others were refused
    results = in_threads(3, lambda _n: raw_login(fake_saleor))
    codes = sorted(r["errors"][0]["code"] if r["errors"] else "ok" for r in results)
    assert codes == ["LOGIN_ATTEMPT_DELAYED", "LOGIN_ATTEMPT_DELAYED", "ok"]  # what three clients get from Saleor
    delayed = next(r for r in results if r["errors"])["errors"][0]
    assert delayed["field"] is None and delayed["message"].startswith("Logging has been suspended till ")
    assert delayed["message"].endswith("due to too many logging attempts originating from the same IP address.")
    assert all(r.status == 200 for r in fake_saleor.requests)
    assert raw_login(fake_saleor)["token"]  # a success cleared the block: the next login goes through


def test_fake_delays_logins_after_failures_as_saleor_does(fake_saleor):
    assert [LoginThrottle.delay(n, 0) for n in (1, 10, 11, 21, 99, 100)] == [1, 1, 2, 4, 512, 3600]
    assert [LoginThrottle.delay(n, n) for n in (1, 2, 3, 9, 10)] == [1, 2, 4, 256, 3600]
    now = [1000.0]
    fake_saleor.throttle.clock = lambda: now[0]  # step through the lockout instead of waiting it out
    assert raw_login(fake_saleor, "wrong")["errors"][0]["code"] == "INVALID_CREDENTIALS"
    assert raw_login(fake_saleor)["errors"][0]["code"] == "LOGIN_ATTEMPT_DELAYED"  # blocked 1 s
    now[0] += 1.0
    assert raw_login(fake_saleor, "wrong")["errors"][0]["code"] == "INVALID_CREDENTIALS"  # 2nd failure: 2 s
    now[0] += 1.9
    assert raw_login(fake_saleor)["errors"][0]["code"] == "LOGIN_ATTEMPT_DELAYED"  # not counted as a failure
    now[0] += 0.1
    assert raw_login(fake_saleor)["token"]


# ---- one login per process -------------------------------------------------------------------------------------
def test_concurrent_operations_share_one_login(fake_saleor):
    fake_saleor.login_seconds = 0.2
    settings = configured(SaleorAppProvider, fake_saleor).settings

    def authenticate(_n):
        with SaleorSession(settings, "test") as session:
            session.authenticate()
            return session._grant.access

    tokens = in_threads(6, authenticate)
    assert len(set(tokens)) == 1
    assert fake_saleor.counts() == {"tokenCreate": 1, "login:ok": 1}


def test_threads_and_event_loops_share_one_login(fake_saleor):
    settings = configured(SaleorAppProvider, fake_saleor).settings
    session = SaleorSession(settings, "test")
    key = (settings.config.api_url, settings.config.staff_email)
    password = settings.staff_password.get_secret_value()
    in_login, release, ticked = threading.Event(), threading.Event(), threading.Semaphore(0)
    seen: list[str] = []

    def login():
        in_login.set()
        release.wait(20)  # held until both event loops have run while this login is in flight
        with session:
            return session._login()

    def no_refresh(_token):
        return None

    async def three_tasks():
        tasks = [asyncio.create_task(TOKENS.grant_async(key, password, login, no_refresh)) for _ in range(3)]
        await asyncio.to_thread(in_login.wait, 20)
        for _ in range(3):  # this loop keeps running while its tasks wait for the login
            await asyncio.sleep(0)
        ticked.release()
        seen.extend(g.access for g in await asyncio.gather(*tasks))

    def loop_thread():
        asyncio.run(three_tasks())

    def plain_thread():
        seen.append(TOKENS.grant(key, password, login, no_refresh).access)

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(loop_thread), pool.submit(loop_thread), pool.submit(plain_thread),
                   pool.submit(plain_thread)]
        both_ran = ticked.acquire(timeout=20) and ticked.acquire(timeout=20)
        release.set()
        for future in futures:
            future.result()
    assert both_ran, "an event loop was blocked while the login was in flight"
    assert len(seen) == 8 and len(set(seen)) == 1
    assert fake_saleor.logins == {"ok": 1}


def test_token_is_refreshed_shortly_before_it_expires(fake_saleor, app_provider):
    fake_saleor.access_ttl_seconds = 2.0  # Saleor's is 5 minutes; the margin is a fifth of the life
    token = raw_login(fake_saleor)["token"]
    assert lifetime_seconds(token) == pytest.approx(2.0)
    assert grant_for(token, None, frozenset(), received=100.0).renew_at == pytest.approx(101.6)
    fake_saleor.reset_counts()
    app_id = app_provider.create(dict(APP)).id
    app_provider.read(app_id, {})
    key = (app_provider.settings.config.api_url, app_provider.settings.config.staff_email)
    wait_until(lambda: TOKENS.cached(key) is None, timeout=10, what="the grant to enter its renewal margin")
    from components.saleor.read_cache import SNAPSHOTS

    SNAPSHOTS.clear()
    app_provider.read(app_id, {})
    assert fake_saleor.counts() == {"tokenCreate": 1, "login:ok": 1, "appCreate": 1, "app": 2,
                                    "tokenRefresh": 1, "refresh:ok": 1}


def test_token_refused_by_saleor_is_renewed_and_the_request_sent_again(fake_saleor, webhook_provider, app_provider):
    app_id = app_provider.create(dict(APP)).id
    created = webhook_provider.create(hook(app_id))
    fake_saleor.expire_tokens()  # Saleor's clock says the token is past its exp before ours does
    fake_saleor.reset_counts()
    webhook_provider.update(created.id, created.outs, dict(hook(app_id), target_url=URL + "moved"))
    assert fake_saleor.state.webhooks[created.id]["targetUrl"] == URL + "moved"
    assert fake_saleor.counts() == {"webhookUpdate": 2, "tokenRefresh": 1, "refresh:ok": 1}
    first, second = fake_saleor.requests[0], fake_saleor.requests[2]
    assert first.roots == ["webhookUpdate"] and second.roots == ["webhookUpdate"]


def test_revoked_tokens_mean_a_new_login(fake_saleor, app_provider):
    app_id = app_provider.create(dict(APP)).id
    fake_saleor.rotate_user_jwt_key()  # what a staff password change does in Saleor
    fake_saleor.reset_counts()
    app_provider.update(app_id, {"auth_token": "t"}, dict(APP, name="CMP Provisioner 2"))
    assert fake_saleor.state.apps[app_id]["name"] == "CMP Provisioner 2"
    # refused (InvalidTokenError), refresh refused too, a new login, sent again
    assert fake_saleor.counts() == {"appUpdate": 2, "tokenRefresh": 1, "refresh:JWT_INVALID_TOKEN": 1,
                                    "tokenCreate": 1, "login:ok": 1}


# ---- LOGIN_ATTEMPT_DELAYED: waited out within retryDeadlineSeconds ---------------------------------------------
def test_a_login_delayed_by_another_client_is_retried(fake_saleor, caplog):
    fake_saleor.hold_next_login(timeout=2.0)  # another client's login stays in progress until ours collides
    other = threading.Thread(target=raw_login, args=(fake_saleor,))
    other.start()
    # until the other login got past the throttle and holds the address
    wait_until(lambda: fake_saleor._hold is None, timeout=10, what="the other login to hold the address")
    provider = configured(SaleorAppProvider, fake_saleor, retryBackoffSeconds=0.05)
    app_id = provider.create(dict(APP)).id
    other.join()
    assert fake_saleor.live_apps()[0]["id"] == app_id
    assert fake_saleor.logins["ok"] == 2 and fake_saleor.logins["LOGIN_ATTEMPT_DELAYED"] >= 1
    assert "login throttled (LOGIN_ATTEMPT_DELAYED), retry 1" in caplog.text


def test_a_throttle_outlasting_the_deadline_is_one_line_naming_it(fake_saleor, caplog):
    caplog.set_level(logging.DEBUG)
    fake_saleor.throttle.scale = 30  # another client's failed login: this address waits (1 s, here 30 s)
    fake_saleor.throttle.failed("127.0.0.1", None)
    provider = configured(SaleorAppProvider, fake_saleor, retryBackoffSeconds=0.05, retryDeadlineSeconds=0.4)
    started = time.monotonic()
    with pytest.raises(SaleorError) as info:
        provider.create(dict(APP))
    assert time.monotonic() - started < 5  # given up at the deadline, not at the end of the lockout
    message = str(info.value)
    assert message.startswith("create SaleorApp 'CMP Provisioner': Saleor tokenCreate failed: field '(input)' code "
                              "LOGIN_ATTEMPT_DELAYED: Logging has been suspended till ")
    assert "per-address login throttle" in message and "saleor.tuning.retryDeadlineSeconds=0.4" in message
    assert "\n" not in message and fake_saleor.staff.password not in message + caplog.text
    assert fake_saleor.logins["ok"] == 0 and fake_saleor.live_apps() == []


# ---- refused credentials: at once, once ---------------------------------------------------------------------------
def test_wrong_password_fails_every_queued_operation_with_one_attempt(fake_saleor, caplog):
    caplog.set_level(logging.DEBUG)
    fake_saleor.login_seconds = 0.1
    provider = configured(SaleorWebhookProvider, fake_saleor, password="wrong-Pa55word")

    events = ("ORDER_CREATED", "ORDER_FULLY_PAID", "ORDER_CANCELLED", "ORDER_CREATED")

    def create(n):
        with pytest.raises(SaleorError) as info:
            provider.create(hook("QXBwOjE=", events[n]))
        return str(info.value)

    messages = in_threads(4, create)
    assert fake_saleor.counts() == {"tokenCreate": 1, "login:INVALID_CREDENTIALS": 1}  # never retried
    for event, message in zip(events, messages, strict=True):
        assert message.startswith(f"create SaleorWebhook '{event}' [{event}]: Saleor tokenCreate failed: field "
                                  "'email' code INVALID_CREDENTIALS: Please, enter valid credentials (fix: check "
                                  "saleor.staffEmail and the password")
        assert "wrong-Pa55word" not in message
    assert "wrong-Pa55word" not in caplog.text


def test_operations_waiting_for_a_failed_login_fail_with_it(fake_saleor):
    fake_saleor.fail_next("http_503", root="tokenCreate", times=3)  # Saleor is down for one login's attempts
    fake_saleor.latency_seconds = 0.1  # so the other operations are surely waiting for that login
    provider = configured(SaleorWebhookProvider, fake_saleor)
    events = ("ORDER_CREATED", "ORDER_FULLY_PAID", "ORDER_CANCELLED")

    def create(n):
        with pytest.raises(SaleorUnavailable) as info:
            provider.create(hook("QXBwOjE=", events[n]))
        return str(info.value)

    messages = in_threads(3, create)
    assert fake_saleor.count("tokenCreate") == 3  # one login's attempts (maxAttempts), not three logins' worth
    for event, message in zip(events, messages, strict=True):
        assert message.startswith(f"create SaleorWebhook '{event}' [{event}]: Saleor tokenCreate at ")
        assert "HTTP 503 after 3 attempt(s)" in message
    # Saleor is back: the next operation logs in afresh.
    assert configured(SaleorAppProvider, fake_saleor).create(dict(APP)).id
