"""SaleorWebhooks under mocks (the recording engine): its resources, the wiring to the Provisioner's URLs,
and what is secret (the auth token, the pickled provider); no webhook carries a secret key (JWS only)."""

from __future__ import annotations

import pulumi
import pytest
from pydantic import ValidationError

from components.provisioner.component import webhook_urls
from components.saleor import SaleorWebhooks, SaleorWebhooksArgs
from components.saleor.documents import ORDER_EVENTS, order_subscription
from infra.recording import SECRET, run_program

APP_TYPE = "pulumi-python:dynamic/saleor:SaleorApp"
HOOK_TYPE = "pulumi-python:dynamic/saleor:SaleorWebhook"


def program(urls=None):
    def main():
        args = SaleorWebhooksArgs(webhook_urls=urls or webhook_urls("cmp"))
        component = SaleorWebhooks("saleor", args)
        pulumi.export("saleorAppId", component.app_id)
        pulumi.export("saleorAuthToken", component.auth_token)

    return main


@pytest.fixture(scope="module")
def recording():
    return run_program(program(), stack="dev", config={})


def test_component_holds_the_app_and_one_webhook_per_order_event(recording):
    (component,) = recording.by_type("cmp:platform:SaleorWebhooks")
    (app,) = recording.by_type(APP_TYPE)
    hooks = recording.by_type(HOOK_TYPE)
    assert app.parent == component.urn and all(h.parent == component.urn for h in hooks)
    assert app.inputs["name"] == "CMP Provisioner" and app.inputs["identifier"] == "cmp-provisioner"
    assert app.inputs["permissions"] == ["MANAGE_ORDERS"]
    assert sorted(h.inputs["async_events"][0] for h in hooks) == sorted(ORDER_EVENTS)


def test_webhooks_target_the_provisioner_urls_with_the_fixed_query(recording):
    urls = webhook_urls("cmp")
    for event, type_name in ORDER_EVENTS.items():
        hook = recording.one(HOOK_TYPE, f"saleor-{event.lower().replace('_', '-')}")
        assert hook.inputs["target_url"] == urls[event.lower()]
        assert hook.inputs["target_url"].startswith("http://cmp-provisioner.cmp.svc.cluster.local:8000/webhooks/")
        assert hook.inputs["name"] == type_name
        assert hook.inputs["query"] == order_subscription(event)
        assert hook.inputs["is_active"] is True


def test_webhooks_depend_on_the_app(recording):
    (app,) = recording.by_type(APP_TYPE)
    for hook in recording.by_type(HOOK_TYPE):
        assert hook.depends_on == [app.urn]
        assert hook.inputs["app_id"] == "[unknown]"  # the app's id, known once Saleor created it


def test_secrets_are_wrapped_by_the_program(recording):
    for hook in recording.by_type(HOOK_TYPE):
        assert "__provider" in hook.secret_paths  # the pickled provider is always a secret
    (app,) = recording.by_type(APP_TYPE)
    assert "auth_token" in app.additional_secret_outputs
    (component,) = recording.by_type("cmp:platform:SaleorWebhooks")
    assert component.registered_outputs["auth_token"] == SECRET
    assert "saleorAuthToken" in recording.output_secret_paths


def test_auth_token_output_is_secret():
    seen = {}

    async def main():
        component = SaleorWebhooks("saleor", SaleorWebhooksArgs(webhook_urls=webhook_urls("cmp")))
        seen["secret"] = await component.auth_token.is_secret()

    run_program(main, stack="dev", config={})
    assert seen == {"secret": True}


def test_no_webhook_carries_a_secret_key_and_none_can_be_passed(recording):
    # Without secretKey Saleor signs with JWS, the one signature the deployed provisioner verifies.
    assert all("secret_key" not in h.inputs for h in recording.by_type(HOOK_TYPE))
    with pytest.raises(ValueError, match="legacy_secret_key"):
        SaleorWebhooksArgs(webhook_urls=webhook_urls("cmp"), legacy_secret_key="k")


def test_urls_keyed_any_way_and_missing_ones_are_named():
    urls = {k.upper(): v for k, v in webhook_urls("shop").items()}
    recording = run_program(program(urls=urls), stack="dev", config={})
    assert {h.inputs["target_url"] for h in recording.by_type(HOOK_TYPE)} == set(urls.values())
    with pytest.raises(ValueError, match=r"webhook_urls lacks \['ORDER_CANCELLED'\]"):
        SaleorWebhooksArgs(webhook_urls={"order_fully_paid": "http://a/b", "order-created": "http://a/c"})
    with pytest.raises(ValueError, match="events"):
        SaleorWebhooksArgs(webhook_urls=webhook_urls("cmp"), events=["ORDER_REFUNDED"])


def test_the_app_gets_manage_orders_and_nothing_more():
    urls = {"order_fully_paid": "u", "order_created": "u", "order_cancelled": "u"}
    for wrong in (["MANAGE_ORDERS", "MANAGE_APPS"], [], ["MANAGE_CHECKOUTS"]):
        with pytest.raises(ValidationError, match="must be exactly \\['MANAGE_ORDERS'\\]"):
            SaleorWebhooksArgs(webhook_urls=urls, permissions=wrong)
    assert SaleorWebhooksArgs(webhook_urls=urls).permissions == ["MANAGE_ORDERS"]
