"""Bounded results: a result over MAX_RESULT_BYTES is refused naming the limit, or, for a tool that declares it
can page, cut between whole items with a marker that says how to read on. JSON is never cut."""

from __future__ import annotations

import json

import pytest

from service_src.connector_gateway.errors import GatewayError
from service_src.connector_gateway.result_limits import Pager, bound_result, encoded_size
from tests.services.connector_gateway.mcp_helpers import mcp_client


def _contacts(saas, count: int) -> None:
    for i in range(count):
        email = f"person{i:03d}@example.test"
        saas.contacts[email] = {"id": str(1000 + i), "archived": False,
                                "properties": {"email": email, "firstname": "Ann" + "n" * 40, "company": "Example"}}


def test_a_result_over_the_limit_is_refused_naming_the_limit(gateway, saas):
    saas.tickets[2] = {"id": 2, "subject": "Long", "status": "open", "description": "x" * 80_000}
    r = gateway.invoke("zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 2}})
    assert r.status_code == 502, r.text
    assert r.json()["error"] == "result_too_large"
    assert "over MAX_RESULT_BYTES=75000" in r.json()["message"] and "zendesk.get_ticket" in r.json()["message"]
    line = gateway.audit()[-1]
    assert (line["decision"], line["status"], line["error"]) == ("allow", 502, "result_too_large")
    saas.tickets[2]["description"] = "x" * 70_000  # under the default limit: passed on whole
    ok = gateway.invoke("zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 2}})
    assert ok.status_code == 200 and len(ok.json()["result"]["ticket"]["description"]) == 70_000


async def test_mcp_shows_the_refusal_as_a_tool_error(start_gateway, saas):
    gw = start_gateway(max_result_bytes=2048)
    saas.tickets[2] = {"id": 2, "subject": "Long", "status": "open", "description": "x" * 5000}
    async with mcp_client(gw) as client:
        result = await client.call_tool("zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 2}})
    assert result.is_error
    assert result.structured_content["error"] == "result_too_large"
    assert "MAX_RESULT_BYTES=2048" in result.structured_content["message"]


def test_a_pageable_result_is_cut_between_items_and_reads_on_from_the_first_dropped(start_gateway, saas):
    gw = start_gateway(max_result_bytes=2048)
    _contacts(saas, 30)
    seen, arguments, pages = [], {"query": "example", "limit": 100}, 0
    while True:
        r = gw.invoke("hubspot.search_contacts", {"binding": "crm", "arguments": arguments})
        assert r.status_code == 200, r.text
        result = r.json()["result"]
        assert encoded_size(result) <= 2048
        seen += [c["properties"]["email"] for c in result["results"]]
        pages += 1
        if "truncated" not in result:
            break
        marker = result["truncated"]
        assert marker["limit_bytes"] == 2048 and marker["returned"] == len(result["results"]) > 0
        assert marker["returned"] + marker["omitted"] == min(100, 30 - int(arguments.get("after", 0)))
        arguments = marker["next_arguments"]
    assert seen == sorted(saas.contacts)  # every contact once, in order, none cut in half
    assert pages > 2


@pytest.mark.parametrize("idempotent", [True, False])
def test_an_item_too_large_on_its_own_is_refused_not_emptied(idempotent):
    pager = Pager("items", lambda args, kept: {"after": kept})
    result = {"items": [{"blob": "y" * 5000}], "total": 1}
    with pytest.raises(GatewayError) as caught:
        bound_result("t.list", result, 1024, pager=pager, arguments=None, idempotent=idempotent)
    assert caught.value.code == "result_too_large"
    assert ("the call itself ran" in caught.value.message) is not idempotent


def test_a_result_within_the_limit_is_the_same_object():
    result = {"items": list(range(10))}
    assert bound_result("t.list", result, len(json.dumps(result)), pager=None, arguments=None,
                        idempotent=True) is result
