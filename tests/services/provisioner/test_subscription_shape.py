"""The payload shape comes from the Saleor engineer's subscription (components/saleor/graphql), not from us.

For every order event and every supported Saleor schema (read through CMP_SCHEMA_DIR), the query is validated, a
response is synthesised from its selection set and the schema's types (every selected field, nothing
more), and the provisioner must parse it and map its line. A field our models read but the query does not
select, or a type change in a schema (say ``number`` no longer a String), fails here.
"""

from __future__ import annotations

import json

import pytest
from graphql import (
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    get_named_type,
    parse,
    validate,
)

from components.saleor.documents import order_subscription
from components.saleor.schema import SUPPORTED_VERSIONS, load_schema
from service_src.provisioner.offerings import Offering
from service_src.provisioner.payloads import OrderEvent, parse_payload
from service_src.provisioner.worker import purchases

SAMPLES = {"sku": "ov_100:pro", "productSku": "ov_100:pro", "number": "42", "slug": "default-channel"}
SCALARS = {"String": "s", "ID": "T3JkZXI6MQ==", "Int": 1, "Float": 10.0, "Boolean": True, "PositiveDecimal": 1}


def synthesise(selection_set, parent: GraphQLObjectType, schema_: GraphQLSchema, fragments: dict) -> dict:
    """A response with every selected field, typed by the schema; lists get one element."""
    out: dict = {}
    for node in selection_set.selections:
        if isinstance(node, InlineFragmentNode):
            concrete = schema_.get_type(node.type_condition.name.value)
            out.update(synthesise(node.selection_set, concrete, schema_, fragments))
            continue
        if isinstance(node, FragmentSpreadNode):
            out.update(synthesise(fragments[node.name.value].selection_set, parent, schema_, fragments))
            continue
        name = node.name.value
        if name == "__typename":
            out[name] = parent.name
            continue
        field_type = parent.fields[name].type
        wrapped = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
        named = get_named_type(field_type)
        if node.selection_set is None:
            value = SAMPLES.get(name, SCALARS.get(named.name, "s"))
        else:
            target = named
            if not isinstance(named, GraphQLObjectType):  # an interface (event): the fragment picks the type
                fragment = next(s for s in node.selection_set.selections if isinstance(s, InlineFragmentNode))
                target = schema_.get_type(fragment.type_condition.name.value)
            value = synthesise(node.selection_set, target, schema_, fragments)
        out[name] = [value] if isinstance(wrapped, GraphQLList) else value
    return out


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize("event", list(OrderEvent), ids=[e.value for e in OrderEvent])
def test_the_subscription_response_parses_and_maps(version: str, event: OrderEvent, schema_dir):
    schema_ = load_schema(version)
    document = parse(order_subscription(event.value))
    assert validate(schema_, document) == [], f"{event.value} subscription is invalid for Saleor {version}"
    operation = document.definitions[0]
    fragments = {d.name.value: d for d in document.definitions[1:]}

    response = synthesise(operation.selection_set, schema_.subscription_type, schema_, fragments)
    body = json.dumps(response["event"]).encode()  # Saleor delivers the `event` object

    payload = parse_payload(body, event)
    assert payload.typename == event.typename
    assert payload.order.number == "42"
    assert payload.order.channel.slug == "default-channel"
    assert [(p.offering, p.quantity) for p in purchases(payload)] == [(Offering("ov_100", "pro"), 1)]
