"""check(): bad input fails at preview, naming the field and what Saleor expects; nothing is sent."""

from __future__ import annotations

import pulumi
import pytest

from components.saleor.documents import order_subscription
from components.saleor.provider import SaleorAppProvider, SaleorWebhookProvider
from components.saleor.resources import SaleorWebhookArgs
from tests.components.saleor.conftest import ConfigRequest, configured

URL = "http://cmp-provisioner.cmp.svc.cluster.local:8000/webhooks/order-fully-paid"
pytestmark = pytest.mark.usefixtures("schema_dir")  # the checks run against Saleor's schemas


def webhook(**changes):
    props = {
        "app_id": "QXBwOjE=",
        "name": "OrderFullyPaid",
        "target_url": URL,
        "async_events": ["ORDER_FULLY_PAID"],
        "query": order_subscription("ORDER_FULLY_PAID"),
        "custom_headers": {"X-Cmp-Source": "saleor"},
    }
    props.update(changes)
    return props


def failures(props, provider=None):
    result = (provider or SaleorWebhookProvider()).check({}, props)
    return result.failures and [(f.property, f.reason) for f in result.failures]


def test_valid_webhook_passes_and_is_normalised():
    result = SaleorWebhookProvider().check({}, webhook(async_events=["ORDER_FULLY_PAID", "ORDER_FULLY_PAID"]))
    assert result.failures == []
    assert result.inputs["async_events"] == ["ORDER_FULLY_PAID"]
    assert result.inputs["is_active"] is True


def test_unknown_event_names_the_enum():
    (failure,) = failures(webhook(async_events=["ORDER_PAID_IN_FULL"]))
    assert failure[0] == "async_events"
    assert "ORDER_PAID_IN_FULL" in failure[1] and "WebhookEventTypeAsyncEnum" in failure[1]


@pytest.mark.parametrize(
    ("query", "expect"),
    [
        ("subscription { event { ", "Syntax Error"),
        ("subscription { event { ... on OrderFullyPaid { order { nope } } } }", "nope"),
        ("query { shop { name } }", "subscription"),
        (order_subscription("ORDER_CREATED"), "does not include ORDER_CREATED"),
        ("", "subscription document"),
    ],
)
def test_invalid_subscription_query(query, expect):
    found = failures(webhook(query=query))
    assert found and all(prop == "query" for prop, _ in found)
    assert any(expect in reason for _, reason in found), found


@pytest.mark.parametrize("url", ["ftp://x/y", "cmp-provisioner:8000/hook", "", None])
def test_non_http_target_url(url):
    (failure,) = failures(webhook(target_url=url))
    assert failure[0] == "target_url" and "http:// or https://" in failure[1]


def test_custom_headers_follow_saleors_rules():
    too_many = {f"X-H{i}": "v" for i in range(6)}
    assert failures(webhook(custom_headers=too_many)) == [("custom_headers", "Saleor accepts at most 5 custom headers")]
    ((prop, reason),) = failures(webhook(custom_headers={"Cookie": "a"}))
    assert prop == "custom_headers" and "Cookie" in reason and "X-" in reason


def test_unknown_values_are_checked_later():
    assert failures(webhook(app_id=pulumi.UNKNOWN, target_url=pulumi.UNKNOWN, async_events=pulumi.UNKNOWN)) == []


def test_schema_version_narrows_the_event_enum():
    # An event only 3.23 knows fails against all versions (the default).
    provider = SaleorWebhookProvider()
    from components.saleor.schema import enum_values, load_schema

    only_new = sorted(enum_values(load_schema("3.23"), "WebhookEventTypeAsyncEnum")
                      - enum_values(load_schema("3.20"), "WebhookEventTypeAsyncEnum"))
    assert only_new, "3.23 adds async events"
    props = webhook(async_events=[only_new[0]], query="subscription { event { __typename } }")
    assert failures(props, provider)[0][0] == "async_events"


def test_app_permissions_are_saleor_enum_values():
    provider = SaleorAppProvider()
    ok = provider.check({}, {"name": "CMP Provisioner", "permissions": ["MANAGE_ORDERS", "MANAGE_APPS"]})
    assert ok.failures == [] and ok.inputs["permissions"] == ["MANAGE_APPS", "MANAGE_ORDERS"]
    bad = provider.check({}, {"name": "", "permissions": ["ORDERS_ALL"]})
    assert {(f.property) for f in bad.failures} == {"name", "permissions"}
    assert any("PermissionEnum" in f.reason for f in bad.failures)


def test_args_model_refuses_cheap_mistakes_at_program_time():
    with pytest.raises(ValueError, match="target_url"):
        SaleorWebhookArgs(app_id="a", name="n", target_url="ftp://x", async_events=["ORDER_CREATED"], query="q")
    with pytest.raises(ValueError, match="custom_headers"):
        SaleorWebhookArgs(app_id="a", name="n", target_url=URL, async_events=["ORDER_CREATED"], query="q",
                          custom_headers={"Cookie": "x"})


@pytest.fixture
def no_schema_files(monkeypatch):
    import components.saleor.schema as schema

    monkeypatch.setattr(schema, "load_schema", lambda _version: None)
    monkeypatch.setattr(schema, "_said", set())
    monkeypatch.setattr(schema, "_live", {})


def test_without_schemas_the_check_is_skipped_with_one_line(no_schema_files, caplog):
    provider = SaleorWebhookProvider()
    provider.configure(ConfigRequest({}))
    assert failures(webhook(async_events=["ORDER_PAID_IN_FULL"])) == []
    provider.check({}, webhook())
    lines = [r.getMessage() for r in caplog.records if "schema" in r.getMessage()]
    assert lines == [
        "Saleor schema check skipped: no Saleor schema under CMP_SCHEMA_DIR (saleor/saleor-<version>.graphql) and "
        "no reachable saleor.apiUrl; events, permissions and queries are checked by Saleor when sent"
    ]
    # The rules that need no schema still hold.
    assert failures(webhook(target_url="ftp://x", query="query { shop { name } }")) == [
        ("target_url", "target_url must be an http:// or https:// URL, got 'ftp://x'"),
        ("query", "invalid subscription query: Saleor expects exactly one `subscription { event { ... } }` operation"),
    ]


def test_without_schema_files_the_servers_own_schema_is_used_once(no_schema_files, fake_saleor):
    provider = configured(SaleorWebhookProvider, fake_saleor)
    (failure,) = failures(webhook(async_events=["ORDER_PAID_IN_FULL"]), provider)
    assert failure[0] == "async_events" and f"Saleor at {fake_saleor.api_url}" in failure[1]
    assert failures(webhook(), provider) == []
    assert fake_saleor.count("__schema") == 1  # one introspection request per API URL and process
