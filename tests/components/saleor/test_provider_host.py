"""The providers driven through Pulumi's real provider host (`python -u -m pulumi.dynamic`, gRPC), as the
engine runs them: unpickled in a fresh process, configured from stack config, one host for every dynamic
resource of a program, and several gRPC calls in flight at once (the host serves four at a time)."""

from __future__ import annotations

import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import dill
import jwt
import pytest

from components.saleor.auth import grant_for
from components.saleor.documents import ORDER_EVENTS, order_subscription
from components.saleor.provider import SaleorAppProvider, SaleorWebhookProvider
from tests.components.saleor.conftest import configured, stack_config
from tests.components.saleor.fake_saleor import FakeSaleor
from tests.support.provider_host import ProviderHost
from tests.support.tiers import server_fixture
from tests.support.wait import wait_until

URL = "http://cmp-provisioner.cmp.svc.cluster.local:8000/webhooks/order-fully-paid"
APP = {"name": "CMP Provisioner", "identifier": "cmp-provisioner", "permissions": ["MANAGE_ORDERS"]}


def hook_props(app_id: str, event: str, stack: str = "cmp") -> dict:
    return {"app_id": app_id, "name": ORDER_EVENTS[event],
            "target_url": f"http://cmp-provisioner.{stack}.svc.cluster.local:8000/webhooks/{event.lower()}",
            "async_events": [event], "query": order_subscription(event), "custom_headers": {"X-Cmp": "1"}}


class Engine:
    """One provider host serving the app and webhook providers, called the way `pulumi up` calls it."""

    def __init__(self, fake: FakeSaleor, **tuning) -> None:
        self.fake = fake
        self.host = ProviderHost(SaleorAppProvider())
        self.host.configure(stack_config(fake, **tuning))
        self.apps = self.host
        self.hooks = self.host.serving(SaleorWebhookProvider())

    def close(self) -> str:
        self.host.close()
        return self.host.stderr()

    @staticmethod
    def at_once(*calls):
        """Run the calls concurrently (the engine's parallelism); each is (fn, *args)."""
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures = [pool.submit(fn, *args) for fn, *args in calls]
            return [f.result() for f in futures]


@dataclass
class Stack:
    """What state holds after `up`: the app and one webhook per order event, {event: (id, inputs, outputs)}."""

    name: str = "cmp"
    app: tuple[str, dict, dict] = ("", {}, {})
    hooks: dict[str, tuple[str, dict, dict]] = field(default_factory=dict)

    def up(self, engine: Engine) -> None:
        inputs, failures = engine.apps.check(dict(APP, name=f"CMP Provisioner {self.name}"))
        assert failures == []
        app_id, outs = engine.apps.create(inputs)
        self.app = (app_id, inputs, outs)

        def create(event):
            hook_inputs, hook_failures = engine.hooks.check(hook_props(app_id, event, self.name))
            assert hook_failures == []
            hook_id, hook_outs = engine.hooks.create(hook_inputs)
            return event, (hook_id, hook_inputs, hook_outs)

        self.hooks = dict(engine.at_once(*[(create, event) for event in ORDER_EVENTS]))

    def refresh(self, engine: Engine) -> list[tuple[str, dict]]:
        app_id, _, app_outs = self.app
        return engine.at_once((engine.apps.read, app_id, app_outs),
                              *[(engine.hooks.read, hook_id, outs) for hook_id, _, outs in self.hooks.values()])

    def update(self, engine: Engine) -> None:
        """The app renamed and every webhook moved: four updates at once."""
        app_id, app_inputs, app_outs = self.app
        calls = [(engine.apps.update, app_id, app_outs, dict(app_inputs, name=app_inputs["name"] + " v2"))]
        calls += [(engine.hooks.update, hook_id, outs, dict(inputs, target_url=inputs["target_url"] + "-v2"))
                  for hook_id, inputs, outs in self.hooks.values()]
        engine.at_once(*calls)

    def destroy(self, engine: Engine) -> None:
        engine.at_once(*[(engine.hooks.delete, hook_id, outs) for hook_id, _, outs in self.hooks.values()])
        engine.apps.delete(self.app[0], self.app[2])


def assert_no_secret(text: str, fake: FakeSaleor) -> None:
    assert fake.staff.password not in text
    assert not any(t in text for t in (*fake.issued_tokens, *fake.app_tokens))


@server_fixture
def busy_saleor(schema_dir):
    """A Saleor whose logins take 0.2 s and every request 0.25 s, so concurrent calls really overlap."""
    with FakeSaleor(login_seconds=0.2, latency_seconds=0.25) as fake:
        yield fake


def test_up_refresh_update_destroy_each_in_a_fresh_host(busy_saleor):
    fake, stack = busy_saleor, Stack()

    engine = Engine(fake)  # pulumi up: the app, then its three webhooks at once
    stack.up(engine)
    assert_no_secret(engine.close(), fake)
    assert fake.counts() == {"tokenCreate": 1, "login:ok": 1, "appCreate": 1, "webhookCreate": 3}
    assert len(fake.live_webhooks(stack.app[0])) == 3

    fake.reset_counts()
    engine = Engine(fake)  # pulumi refresh: four reads at once, one login, one query
    reads = stack.refresh(engine)
    assert [r[0] for r in reads] == [stack.app[0], *(h[0] for h in stack.hooks.values())]
    assert all(engine.hooks.diff(h[0], read[1], h[1])["changes"] is False
               for h, read in zip(stack.hooks.values(), reads[1:], strict=True))
    assert_no_secret(engine.close(), fake)
    assert fake.counts() == {"tokenCreate": 1, "login:ok": 1, "app": 1}

    fake.reset_counts()
    engine = Engine(fake)  # pulumi up after a change: four updates in flight, none with a token yet
    stack.update(engine)
    assert_no_secret(engine.close(), fake)
    assert fake.counts() == {"tokenCreate": 1, "login:ok": 1, "appUpdate": 1, "webhookUpdate": 3}
    assert fake.max_in_flight >= 4  # the four updates reached Saleor at the same time
    assert all(h["targetUrl"].endswith("-v2") for h in fake.live_webhooks(stack.app[0]))

    fake.reset_counts()
    engine = Engine(fake)  # pulumi destroy: the three webhooks at once, then the app
    stack.destroy(engine)
    assert_no_secret(engine.close(), fake)
    assert fake.counts() == {"tokenCreate": 1, "login:ok": 1, "webhookDelete": 3, "appDelete": 1}
    assert fake.live_apps() == [] and fake.state.webhooks == {}


def test_two_stacks_in_two_hosts_at_once_against_one_saleor(busy_saleor):
    fake = busy_saleor
    fake.hold_next_login()  # whichever host logs in first is still at it when the other one tries
    stacks = {name: Stack(name) for name in ("dev", "staging")}
    # The held login lasts until the other host's login was refused (at most the hold's 20 s): the client's
    # timeout and deadline must outlast it on a busy machine, where the second host may start seconds later.
    engines = {name: Engine(fake, retryBackoffSeconds=0.05, timeoutSeconds=30, retryDeadlineSeconds=60)
               for name in stacks}
    barrier = threading.Barrier(len(stacks))

    def lifecycle(name):
        stack, engine = stacks[name], engines[name]
        barrier.wait()
        stack.up(engine)
        stack.refresh(engine)
        stack.update(engine)
        stack.destroy(engine)
        return engine.close()

    stderrs = Engine.at_once(*[(lifecycle, name) for name in stacks])
    for stderr in stderrs:
        assert_no_secret(stderr, fake)
        assert "Traceback" not in stderr
    assert any("login throttled (LOGIN_ATTEMPT_DELAYED), retry 1" in stderr for stderr in stderrs)
    counts = fake.counts()
    delayed = counts.pop("login:LOGIN_ATTEMPT_DELAYED")
    assert delayed >= 1 and counts.pop("tokenCreate") == 2 + delayed  # the loser waited, then logged in once
    assert counts == {"login:ok": 2, "appCreate": 2, "webhookCreate": 6, "app": 2, "appUpdate": 2,
                      "webhookUpdate": 6, "webhookDelete": 6, "appDelete": 2}
    assert fake.max_in_flight >= 4 and fake.live_apps() == [] and fake.state.webhooks == {}


@pytest.mark.server
def test_a_token_that_expires_during_up_is_refreshed_not_relogged(schema_dir):
    with FakeSaleor(access_ttl_seconds=2.0) as fake:
        engine = Engine(fake)
        stack = Stack()
        inputs, _ = engine.apps.check(dict(APP))
        app_id, outs = engine.apps.create(inputs)
        returned = time.monotonic()
        stack.app = (app_id, inputs, outs)
        # The host's token arrived before create() returned, so by `due` it is inside its renewal margin by the
        # provider's own rule (grant_for); time.monotonic is one clock for every process of this machine.
        of_its_life = jwt.encode({"iat": 0, "exp": fake.access_ttl_seconds}, "unused", algorithm="HS256")
        due = grant_for(of_its_life, None, frozenset(), received=returned).renew_at
        wait_until(lambda: time.monotonic() >= due, timeout=10, what="the host's token to enter its renewal margin")
        engine.at_once(*[(engine.hooks.create, hook_props(app_id, event)) for event in ORDER_EVENTS])
        assert_no_secret(engine.close(), fake)
    assert fake.counts() == {"tokenCreate": 1, "login:ok": 1, "appCreate": 1, "tokenRefresh": 1, "refresh:ok": 1,
                             "webhookCreate": 3}


@pytest.fixture
def engine(fake_saleor):
    engine = Engine(fake_saleor)
    yield engine
    assert_no_secret(engine.close(), fake_saleor)


def test_full_lifecycle_through_the_host(fake_saleor, engine):
    inputs, failures = engine.apps.check(dict(APP))
    assert failures == []
    app_id, app_outs = engine.apps.create(inputs)
    assert app_outs["app_id"] == app_id and app_outs["auth_token"] in fake_saleor.app_tokens

    news = {"app_id": app_id, "name": "OrderFullyPaid", "target_url": URL, "async_events": ["ORDER_FULLY_PAID"],
            "query": order_subscription("ORDER_FULLY_PAID"), "custom_headers": {"X-Cmp": "1"}}
    inputs, failures = engine.hooks.check(news)
    assert failures == [] and inputs["is_active"] is True
    hook_id, outs = engine.hooks.create(inputs)
    assert fake_saleor.state.webhooks[hook_id]["targetUrl"] == URL

    # Refresh: same id, no drift despite the lower-cased header read back.
    fake_saleor.reset_counts()
    read_id, read_outs = engine.hooks.read(hook_id, outs)
    assert read_id == hook_id and read_outs["custom_headers"] == {"x-cmp": "1"}
    assert engine.hooks.diff(hook_id, read_outs, inputs)["changes"] is False
    assert engine.apps.read(app_id, app_outs)[0] == app_id
    assert fake_saleor.counts() == {"app": 1}  # one query for the app and its webhooks; the token is reused

    # Change the URL: an in-place update, one mutation.
    moved = dict(inputs, target_url=URL + "-v2")
    assert engine.hooks.diff(hook_id, read_outs, moved) == {"changes": True, "replaces": [],
                                                            "delete_before_replace": False}
    fake_saleor.reset_counts()
    updated = engine.hooks.update(hook_id, read_outs, moved)
    assert updated["target_url"] == URL + "-v2" and fake_saleor.counts() == {"webhookUpdate": 1}
    assert engine.hooks.diff(hook_id, updated, dict(moved, app_id="QXBwOjk5"))["replaces"] == ["app_id"]

    # Deleted out of band: read reports it gone.
    fake_saleor.delete_webhook_out_of_band(hook_id)
    assert engine.hooks.read(hook_id, updated)[0] == ""
    engine.hooks.delete(hook_id, updated)  # already gone counts as deleted
    engine.apps.delete(app_id, app_outs)
    assert fake_saleor.live_apps() == []


def test_bad_input_fails_in_check_through_the_host(engine):
    _, failures = engine.hooks.check({"app_id": "QXBwOjE=", "name": "x", "target_url": "ftp://nowhere",
                                      "async_events": ["ORDER_PAID_IN_FULL"], "query": "subscription {"})
    fields = {prop for prop, _ in failures}
    assert fields == {"target_url", "async_events", "query"}


def test_errors_cross_the_wire_as_one_line_naming_resource_code_and_fix(fake_saleor, engine):
    fake_saleor.fail_next("permission_denied", root="appCreate")
    with pytest.raises(Exception) as info:
        engine.apps.create(dict(APP))
    last = info.value.details().strip().splitlines()[-1]  # what `pulumi up` prints under the resource
    assert last.startswith("components.saleor.errors.SaleorError: create SaleorApp 'CMP Provisioner': Saleor "
                           "appCreate failed: field 'appCreate' code PermissionDenied: ")
    assert last.endswith("(fix: give the staff user MANAGE_APPS and every permission the app gets (MANAGE_ORDERS))")


def test_settings_and_tokens_are_never_pickled(fake_saleor):
    provider = configured(SaleorWebhookProvider, fake_saleor)
    provider.create(hook_props(configured(SaleorAppProvider, fake_saleor).create(dict(APP)).id, "ORDER_CREATED"))
    serialized = ProviderHost.serialize(provider)
    raw = base64.b64decode(serialized)
    assert fake_saleor.staff.password.encode() not in raw and b"127.0.0.1" not in raw
    assert not any(t.encode() in raw for t in fake_saleor.issued_tokens)
    clone = dill.loads(raw)
    assert clone._settings is None


def test_a_wrong_password_is_tried_once_for_all_calls_in_flight(fake_saleor):
    engine = Engine(fake_saleor, password="wrong-Pa55word")

    def create(event):
        with pytest.raises(Exception) as info:
            engine.hooks.create(hook_props("QXBwOjE=", event))
        return info.value.details()

    details = Engine.at_once(*[(create, event) for event in ORDER_EVENTS])
    lines = [d.strip().splitlines()[-1] for d in details]
    stderr = engine.close()
    assert fake_saleor.counts() == {"tokenCreate": 1, "login:INVALID_CREDENTIALS": 1}
    for event, line in zip(ORDER_EVENTS, lines, strict=True):
        assert line.startswith(f"components.saleor.errors.SaleorError: create SaleorWebhook '{ORDER_EVENTS[event]}' "
                               f"[{event}]: Saleor tokenCreate failed: field 'email' code INVALID_CREDENTIALS")
    assert "wrong-Pa55word" not in stderr + "".join(details)  # nor in the tracebacks the engine shows
