"""Every GraphQL document the provider sends validates against Saleor 3.20, 3.21 and 3.23 (graphql-core)."""

from __future__ import annotations

import re

import pytest
from graphql import parse

from components.saleor.documents import (
    FRAGMENTS_DIR,
    GRAPHQL_DIR,
    ORDER_EVENTS,
    document,
    operation_names,
    order_subscription,
)
from components.saleor.schema import SUPPORTED_VERSIONS, document_errors, load_schema, subscription_problems

# The provisioner parses exactly this (DESIGN contract), with the event type changed per webhook.
FIXED_SUBSCRIPTION = (
    "subscription { event { __typename ... on OrderFullyPaid { order { ...ProvisioningOrder } } } }\n"
    "fragment ProvisioningOrder on Order { id number userEmail channel { slug } total { gross { amount currency } }\n"
    "  lines { id quantity productSku variant { id sku metadata { key value } } } }\n"
)


def test_the_supported_versions_are_3_20_3_21_3_23():
    assert SUPPORTED_VERSIONS == ("3.20", "3.21", "3.23")


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize("name", operation_names())
def test_operation_validates(name, version, schema_dir):
    assert document_errors(document(name), load_schema(version)) == []


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize("event", sorted(ORDER_EVENTS))
def test_order_subscription_validates_for_each_event(event, version, schema_dir):
    assert subscription_problems(order_subscription(event), [event], {version: load_schema(version)}) == []


def test_every_file_is_an_operation_or_a_used_fragment():
    files = {p.stem for p in GRAPHQL_DIR.glob("*.graphql")}
    assert files == set(operation_names())
    composed = "\n".join(document(n) for n in operation_names())
    for path in FRAGMENTS_DIR.glob("*.graphql"):
        name = re.search(r"fragment\s+(\w+)", path.read_text())[1]
        assert f"fragment {name} on" in composed, f"{path.name} is not used by any operation"


def test_order_subscription_is_the_fixed_contract():
    assert order_subscription("ORDER_FULLY_PAID") == FIXED_SUBSCRIPTION
    for event, type_name in ORDER_EVENTS.items():
        assert order_subscription(event) == FIXED_SUBSCRIPTION.replace("OrderFullyPaid", type_name)


def test_documents_use_async_events_not_the_deprecated_events():
    for name in operation_names():
        text = document(name)
        assert not re.search(r"(?<![A-Za-z])events\b", text), name
    assert "asyncEvents" in document("app_with_webhooks")


def test_unknown_document_and_event_are_named():
    with pytest.raises(KeyError, match="no GraphQL document 'nope'"):
        document("nope")
    with pytest.raises(ValueError, match="ORDER_PAID"):
        order_subscription("ORDER_PAID")


def test_invalid_document_reports_graphql_core_message(schema_dir):
    (message,) = document_errors("query { app(id: 1) { nope } }", load_schema("3.21"))
    assert "nope" in message
    assert parse(document("app_with_webhooks"))


def test_catch_up_reads_the_order_shape_the_webhooks_deliver():
    """One ProvisioningOrder fragment: the catch-up query and every webhook's subscription select the same order."""
    fragment = (FRAGMENTS_DIR / "provisioning_order.graphql").read_text()
    body = fragment[fragment.index("fragment ProvisioningOrder"):].strip()
    assert body in document("orders_since")
    for event in ORDER_EVENTS:
        assert body in order_subscription(event)
