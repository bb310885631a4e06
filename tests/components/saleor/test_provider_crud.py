"""Provider CRUD against the fake Saleor: create, no-op refresh, drift, update, replace, delete."""

from __future__ import annotations

import pytest

from components.saleor.auth import TOKENS
from components.saleor.documents import ORDER_EVENTS, order_subscription
from components.saleor.errors import SaleorError

BASE = "http://cmp-provisioner.cmp.svc.cluster.local:8000/webhooks/"
APP = {"name": "CMP Provisioner", "identifier": "cmp-provisioner", "permissions": ["MANAGE_ORDERS"]}


def webhook_props(app_id, event="ORDER_FULLY_PAID", **changes):
    props = {
        "app_id": app_id,
        "name": ORDER_EVENTS[event],
        "target_url": BASE + event.lower().replace("_", "-"),
        "async_events": [event],
        "query": order_subscription(event),
        "is_active": True,
        "custom_headers": {"X-Cmp-Source": "Saleor"},  # upper case: Saleor reads it back lower-cased
    }
    props.update(changes)
    return props


@pytest.fixture
def deployed(fake_saleor, app_provider, webhook_provider):
    """The app and its three order webhooks, as `pulumi up` leaves them: {name: (id, inputs, outputs)}."""
    app = app_provider.create(app_provider.check({}, dict(APP)).inputs)
    out = {"app": (app.id, dict(APP), app.outs)}
    for event in ORDER_EVENTS:
        inputs = webhook_provider.check({}, webhook_props(app.id, event)).inputs
        hook = webhook_provider.create(inputs)
        out[event] = (hook.id, inputs, hook.outs)
    fake_saleor.reset_counts()
    return out


def refresh(app_provider, webhook_provider, deployed):
    """What `pulumi refresh` does: Read every resource; returns {name: (id, outputs)}."""
    app_id, _, app_outs = deployed["app"]
    result = {"app": (lambda r: (r.id, r.outs))(app_provider.read(app_id, app_outs))}
    for event in ORDER_EVENTS:
        hook_id, _, outs = deployed[event]
        read = webhook_provider.read(hook_id, outs)
        result[event] = (read.id, read.outs)
    return result


def test_create_makes_the_app_and_webhooks(fake_saleor, deployed):
    app_id, _, app_outs = deployed["app"]
    assert app_outs["app_id"] == app_id and app_outs["permissions"] == ["MANAGE_ORDERS"]
    assert app_outs["auth_token"] in fake_saleor.app_tokens
    hooks = fake_saleor.live_webhooks(app_id)
    assert sorted(h["asyncEvents"][0] for h in hooks) == sorted(ORDER_EVENTS)
    for event in ORDER_EVENTS:
        hook = fake_saleor.state.webhooks[deployed[event][0]]
        assert hook["query"] == order_subscription(event) and hook["targetUrl"].endswith(
            event.lower().replace("_", "-")
        )
        assert deployed[event][2]["custom_headers"] == {"x-cmp-source": "Saleor"}


def test_noop_refresh_is_one_query_per_app_and_shows_no_drift(
    fake_saleor, app_provider, webhook_provider, deployed
):
    TOKENS.clear()  # `pulumi refresh` starts a new provider host: no token yet
    refreshed = refresh(app_provider, webhook_provider, deployed)
    assert fake_saleor.count("tokenCreate") == 1
    assert fake_saleor.count("app") == 1
    assert fake_saleor.count() == 2
    assert refreshed["app"][0] == deployed["app"][0]
    assert refreshed["app"][1]["auth_token"] == deployed["app"][2]["auth_token"]  # carried, never re-read
    assert not app_provider.diff(deployed["app"][0], refreshed["app"][1], APP).changes
    for event in ORDER_EVENTS:
        hook_id, inputs, _ = deployed[event]
        assert refreshed[event][0] == hook_id
        # Saleor's quirks (lower-cased header keys) are not drift.
        assert refreshed[event][1]["custom_headers"] == {"x-cmp-source": "Saleor"}
        assert not webhook_provider.diff(hook_id, refreshed[event][1], inputs).changes


def test_empty_headers_read_back_as_braces_are_not_drift(fake_saleor, webhook_provider, deployed):
    hook_id, inputs, outs = deployed["ORDER_CREATED"]
    news = dict(inputs, custom_headers={})
    webhook_provider.update(hook_id, outs, news)
    read = webhook_provider.read(hook_id, outs)
    assert read.outs["custom_headers"] == {}
    assert not webhook_provider.diff(hook_id, read.outs, news).changes


def test_changing_one_url_is_one_mutation(fake_saleor, webhook_provider, deployed):
    hook_id, inputs, outs = deployed["ORDER_FULLY_PAID"]
    news = dict(inputs, target_url=BASE + "v2/order-fully-paid")
    diff = webhook_provider.diff(hook_id, outs, news)
    assert diff.changes and diff.replaces == []
    updated = webhook_provider.update(hook_id, outs, news)
    assert fake_saleor.count("webhookUpdate") == 1
    assert fake_saleor.count() == 1  # the staff token of the creates is reused: no login
    assert updated.outs["target_url"] == news["target_url"]
    assert fake_saleor.state.webhooks[hook_id]["targetUrl"] == news["target_url"]
    assert fake_saleor.state.webhooks[hook_id]["query"] == inputs["query"]  # untouched


def test_events_query_active_headers_update_in_place_in_one_mutation(fake_saleor, webhook_provider, deployed):
    hook_id, inputs, outs = deployed["ORDER_CREATED"]
    news = dict(inputs, is_active=False, custom_headers={"X-A": "1", "Authorization": "Bearer t"},
                async_events=["ORDER_CREATED", "ORDER_FULLY_PAID"], name="Orders")
    diff = webhook_provider.diff(hook_id, outs, news)
    assert diff.changes and diff.replaces == []
    updated = webhook_provider.update(hook_id, outs, news)
    assert fake_saleor.count("webhookUpdate") == 1
    hook = fake_saleor.state.webhooks[hook_id]
    assert hook["isActive"] is False and hook["asyncEvents"] == ["ORDER_CREATED", "ORDER_FULLY_PAID"]
    assert updated.outs["custom_headers"] == {"x-a": "1", "authorization": "Bearer t"}


def test_a_different_app_replaces_the_webhook(webhook_provider, deployed):
    hook_id, inputs, outs = deployed["ORDER_CREATED"]
    diff = webhook_provider.diff(hook_id, outs, dict(inputs, app_id="QXBwOjk5"))
    assert diff.changes and diff.replaces == ["app_id"]


def test_app_identity_replaces_and_name_updates(fake_saleor, app_provider, deployed):
    app_id, inputs, outs = deployed["app"]
    assert app_provider.diff(app_id, outs, dict(inputs, identifier="other")).replaces == ["identifier"]
    news = dict(inputs, name="CMP Provisioner (prod)")
    diff = app_provider.diff(app_id, outs, news)
    assert diff.changes and diff.replaces == []
    updated = app_provider.update(app_id, outs, news)
    assert updated.outs["name"] == news["name"] and updated.outs["auth_token"] == outs["auth_token"]
    assert fake_saleor.state.apps[app_id]["name"] == news["name"]
    assert fake_saleor.count("appUpdate") == 1


def test_out_of_band_edit_shows_as_drift_and_update_restores(fake_saleor, webhook_provider, deployed):
    hook_id, inputs, outs = deployed["ORDER_CANCELLED"]
    fake_saleor.edit_webhook(hook_id, targetUrl="https://evil.example/hook", isActive=False)
    read = webhook_provider.read(hook_id, outs)
    assert read.outs["target_url"] == "https://evil.example/hook" and read.outs["is_active"] is False
    diff = webhook_provider.diff(hook_id, read.outs, inputs)
    assert diff.changes and diff.replaces == []
    webhook_provider.update(hook_id, read.outs, inputs)
    assert fake_saleor.state.webhooks[hook_id]["targetUrl"] == inputs["target_url"]
    assert fake_saleor.state.webhooks[hook_id]["isActive"] is True
    assert not webhook_provider.diff(hook_id, webhook_provider.read(hook_id, outs).outs, inputs).changes


def test_out_of_band_webhook_delete_reads_gone_and_create_recreates(fake_saleor, webhook_provider, deployed):
    hook_id, inputs, outs = deployed["ORDER_FULLY_PAID"]
    fake_saleor.delete_webhook_out_of_band(hook_id)
    read = webhook_provider.read(hook_id, outs)
    assert read.id == ""  # refresh drops it from state
    again = webhook_provider.create(inputs)  # and `up` creates it anew
    assert again.id != hook_id and fake_saleor.state.webhooks[again.id]["targetUrl"] == inputs["target_url"]


def test_soft_deleted_app_reads_gone_with_its_webhooks(fake_saleor, app_provider, webhook_provider, deployed):
    app_id = deployed["app"][0]
    fake_saleor.delete_app_out_of_band(app_id)
    refreshed = refresh(app_provider, webhook_provider, deployed)
    assert {name: read[0] for name, read in refreshed.items()} == dict.fromkeys(refreshed, "")
    assert fake_saleor.count("app") == 1


def test_delete_removes_and_already_gone_counts_as_deleted(fake_saleor, app_provider, webhook_provider, deployed):
    for event in ORDER_EVENTS:
        hook_id, _, outs = deployed[event]
        webhook_provider.delete(hook_id, outs)
        webhook_provider.delete(hook_id, outs)  # again: NOT_FOUND means done
    app_id, _, app_outs = deployed["app"]
    app_provider.delete(app_id, app_outs)
    app_provider.delete(app_id, app_outs)
    assert fake_saleor.live_apps() == [] and fake_saleor.state.webhooks == {}
    assert app_provider.read(app_id, app_outs).id == ""


def test_delete_failed_while_delivering_is_retried(fake_saleor, webhook_provider, deployed):
    hook_id, _, outs = deployed["ORDER_FULLY_PAID"]
    fake_saleor.deliveries_in_flight(hook_id, 2)
    webhook_provider.delete(hook_id, outs)
    assert fake_saleor.count("webhookDelete") == 3
    assert hook_id not in fake_saleor.state.webhooks


def test_delete_failed_retries_are_bounded(fake_saleor, webhook_provider, deployed):
    hook_id, _, outs = deployed["ORDER_FULLY_PAID"]
    fake_saleor.deliveries_in_flight(hook_id, 10)
    with pytest.raises(SaleorError) as info:
        webhook_provider.delete(hook_id, outs)
    assert fake_saleor.count("webhookDelete") == 3  # deleteRetryAttempts in the test config
    message = str(info.value)
    assert "webhookDelete" in message and "DELETE_FAILED" in message and "deleteRetryAttempts" in message
    assert fake_saleor.state.webhooks[hook_id]["isActive"] is False  # Saleor leaves it deactivated


def test_reads_after_a_mutation_are_not_served_stale(fake_saleor, webhook_provider, deployed):
    hook_id, inputs, outs = deployed["ORDER_CREATED"]
    webhook_provider.read(hook_id, outs)
    news = dict(inputs, target_url=BASE + "moved")
    webhook_provider.update(hook_id, outs, news)
    assert webhook_provider.read(hook_id, outs).outs["target_url"] == news["target_url"]
