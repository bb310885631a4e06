"""The providers driven through Pulumi's real provider host (`python -u -m pulumi.dynamic`, gRPC), as the
engine runs them: unpickled in a fresh process, configured from stack config, every CRUD call over the wire."""

from __future__ import annotations

import base64

import dill
import pytest

from components.saleor.documents import order_subscription
from components.saleor.provider import SaleorAppProvider, SaleorWebhookProvider
from tests.components.saleor.conftest import configured, stack_config
from tests.support.provider_host import ProviderHost

URL = "http://cmp-provisioner.cmp.svc.cluster.local:8000/webhooks/order-fully-paid"
APP = {"name": "CMP Provisioner", "identifier": "cmp-provisioner", "permissions": ["MANAGE_ORDERS"]}


@pytest.fixture
def hosts(fake_saleor):
    with ProviderHost(SaleorAppProvider()) as app_host, ProviderHost(SaleorWebhookProvider()) as hook_host:
        for host in (app_host, hook_host):
            host.configure(stack_config(fake_saleor))
        yield app_host, hook_host
    for host in (app_host, hook_host):
        text = host.stderr()
        assert fake_saleor.staff.password not in text
        assert not any(t in text for t in (*fake_saleor.issued_tokens, *fake_saleor.app_tokens))


def test_full_lifecycle_through_the_host(fake_saleor, hosts):
    app_host, hook_host = hosts
    inputs, failures = app_host.check(dict(APP))
    assert failures == []
    app_id, app_outs = app_host.create(inputs)
    assert app_outs["app_id"] == app_id and app_outs["auth_token"] in fake_saleor.app_tokens

    news = {"app_id": app_id, "name": "OrderFullyPaid", "target_url": URL, "async_events": ["ORDER_FULLY_PAID"],
            "query": order_subscription("ORDER_FULLY_PAID"), "custom_headers": {"X-Cmp": "1"}}
    inputs, failures = hook_host.check(news)
    assert failures == [] and inputs["is_active"] is True
    hook_id, outs = hook_host.create(inputs)
    assert fake_saleor.state.webhooks[hook_id]["targetUrl"] == URL

    # Refresh: same id, no drift despite the lower-cased header read back.
    fake_saleor.reset_counts()
    read_id, read_outs = hook_host.read(hook_id, outs)
    assert read_id == hook_id and read_outs["custom_headers"] == {"x-cmp": "1"}
    assert hook_host.diff(hook_id, read_outs, inputs)["changes"] is False
    assert app_host.read(app_id, app_outs)[0] == app_id
    assert fake_saleor.count("app") == 2  # one query per provider-host process (two hosts here)

    # Change the URL: an in-place update, one mutation.
    moved = dict(inputs, target_url=URL + "-v2")
    assert hook_host.diff(hook_id, read_outs, moved) == {"changes": True, "replaces": [],
                                                         "delete_before_replace": False}
    fake_saleor.reset_counts()
    updated = hook_host.update(hook_id, read_outs, moved)
    assert updated["target_url"] == URL + "-v2" and fake_saleor.count("webhookUpdate") == 1
    assert hook_host.diff(hook_id, updated, dict(moved, app_id="QXBwOjk5"))["replaces"] == ["app_id"]

    # Deleted out of band: read reports it gone.
    fake_saleor.delete_webhook_out_of_band(hook_id)
    assert hook_host.read(hook_id, updated)[0] == ""
    hook_host.delete(hook_id, updated)  # already gone counts as deleted
    app_host.delete(app_id, app_outs)
    assert fake_saleor.live_apps() == []


def test_bad_input_fails_in_check_through_the_host(hosts):
    _, hook_host = hosts
    _, failures = hook_host.check({"app_id": "QXBwOjE=", "name": "x", "target_url": "ftp://nowhere",
                                   "async_events": ["ORDER_PAID_IN_FULL"], "query": "subscription {"})
    fields = {prop for prop, _ in failures}
    assert fields == {"target_url", "async_events", "query"}


def test_errors_cross_the_wire_as_one_readable_message(fake_saleor, hosts):
    app_host, _ = hosts
    fake_saleor.fail_next("permission_denied", root="appCreate")
    with pytest.raises(Exception, match="Saleor appCreate failed: field 'appCreate' code PermissionDenied"):
        app_host.create(dict(APP))


def test_settings_are_never_pickled(fake_saleor):
    provider = configured(SaleorWebhookProvider, fake_saleor)
    serialized = ProviderHost.serialize(provider)
    raw = base64.b64decode(serialized)
    assert fake_saleor.staff.password.encode() not in raw and b"127.0.0.1" not in raw
    clone = dill.loads(raw)
    assert clone._settings is None
