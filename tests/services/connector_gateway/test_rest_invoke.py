"""REST invoke end to end: real OpenBao, control-plane fake, SaaS fakes; the upstream sees the real shapes."""

from __future__ import annotations

import base64
import time

import httpx

from tests.services.connector_gateway.conftest import (
    HUBSPOT_TOKEN_ACME,
    SLACK_TOKEN_ACME,
    ZENDESK_TOKEN_ACME,
)
from tests.support.net import free_port


def invoke(gw, tool: str, body, **token_kwargs) -> httpx.Response:
    return gw.invoke(tool, body, **token_kwargs)


def test_zendesk_create_ticket_uses_basic_token_auth_and_ticket_shape(gateway, saas):
    r = invoke(gateway, "zendesk.create_ticket",
               {"binding": "zd", "arguments": {"subject": "Refund", "body": "Please refund", "priority": "high"}})
    assert r.status_code == 200, r.text
    assert r.json()["result"]["ticket"]["subject"] == "Refund"
    (call,) = saas.calls_to("zendesk")
    assert (call.method, call.path) == ("POST", "/api/v2/tickets.json")
    assert call.body == {"ticket": {"subject": "Refund", "comment": {"body": "Please refund"}, "priority": "high"}}
    expected = base64.b64encode(f"bot@acme.test/token:{ZENDESK_TOKEN_ACME}".encode()).decode()
    assert call.authorization == f"Basic {expected}"


def test_zendesk_get_ticket_and_not_found_is_sanitized_404(gateway, saas):
    ok = invoke(gateway, "zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}})
    assert ok.status_code == 200 and ok.json()["result"]["ticket"]["id"] == 1
    missing = invoke(gateway, "zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 999}})
    assert missing.status_code == 404
    assert missing.json() == {"error": "upstream_rejected", "message": "zendesk refused the call (HTTP 404): "
                              "RecordNotFound", "request_id": missing.json()["request_id"]}


def test_slack_post_message_bearer_and_ok_false(gateway, saas):
    r = invoke(gateway, "slack.post_message", {"binding": "chat", "arguments": {"channel": "C0GENERAL", "text": "hi"}})
    assert r.status_code == 200, r.text
    assert r.json()["result"]["ok"] is True
    call = saas.calls_to("slack")[0]
    assert call.path == "/api/chat.postMessage" and call.authorization == f"Bearer {SLACK_TOKEN_ACME}"
    assert call.body == {"channel": "C0GENERAL", "text": "hi"}
    bad = invoke(gateway, "slack.post_message", {"binding": "chat", "arguments": {"channel": "C9NOPE", "text": "hi"}})
    assert bad.status_code == 404
    assert bad.json()["message"] == "slack refused the call: channel_not_found"


def test_hubspot_search_and_create(gateway, saas):
    saas.contacts["a@x.test"] = {"id": "7", "properties": {"email": "a@x.test", "firstname": "Ann"}}
    r = invoke(gateway, "hubspot.search_contacts", {"binding": "crm", "arguments": {"email": "a@x.test"}})
    assert r.status_code == 200, r.text
    assert r.json()["result"]["total"] == 1
    call = saas.calls_to("hubspot")[0]
    assert call.path == "/crm/v3/objects/contacts/search" and call.authorization == f"Bearer {HUBSPOT_TOKEN_ACME}"
    assert call.body["filterGroups"] == [{"filters": [{"propertyName": "email", "operator": "EQ",
                                                       "value": "a@x.test"}]}]
    created = invoke(gateway, "hubspot.create_contact",
                     {"binding": "crm2", "arguments": {"email": "b@x.test", "firstname": "Bo"}}, project="sales")
    assert created.status_code == 200, created.text
    assert saas.calls_to("hubspot")[-1].body == {"properties": {"email": "b@x.test", "firstname": "Bo"}}
    dup = invoke(gateway, "hubspot.create_contact", {"binding": "crm2", "arguments": {"email": "b@x.test"}},
                 project="sales")
    assert dup.status_code == 409 and dup.json()["message"].endswith("CONFLICT")
    assert "Existing ID" not in dup.text  # upstream free text is not echoed


def test_upstream_5xx_is_502_and_idempotent_calls_retry_bounded(gateway, saas):
    saas.fail_next("zendesk", 503, count=10)
    r = invoke(gateway, "zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}})
    assert r.status_code == 502
    assert len(saas.calls_to("zendesk")) == 1 + gateway.settings.connector_max_retries
    saas._fail.clear()
    saas.calls.clear()
    saas.fail_next("zendesk", 500, count=1)
    r = invoke(gateway, "zendesk.create_ticket", {"binding": "zd", "arguments": {"subject": "s", "body": "b"}})
    assert r.status_code == 502
    assert len(saas.calls_to("zendesk")) == 1  # not idempotent: never retried


def test_upstream_timeout_is_504(start_gateway, saas):
    gw = start_gateway(connector_timeout_seconds=0.2, connector_max_retries=0)
    saas.delay_seconds = 0.5
    r = invoke(gw, "zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}})
    assert r.status_code == 504
    assert r.json()["error"] == "upstream_timeout"


def test_idempotent_calls_retry_timeouts_and_recover_from_one_5xx(start_gateway, saas):
    gw = start_gateway(connector_timeout_seconds=0.2, connector_max_retries=1)
    saas.fail_next("zendesk", 502, count=1)
    r = invoke(gw, "zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}})
    assert r.status_code == 200, r.text
    assert len(saas.calls_to("zendesk")) == 2  # the 502, then the retry that answered
    saas.calls.clear()
    saas.delay_seconds = 0.5
    r = invoke(gw, "zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}})
    assert r.status_code == 504 and "0.2s" in r.json()["message"]
    assert len(saas.calls_to("zendesk")) == 2  # each attempt has its own timeout
    saas.calls.clear()
    r = invoke(gw, "zendesk.create_ticket", {"binding": "zd", "arguments": {"subject": "s", "body": "b"}})
    assert r.status_code == 504
    assert len(saas.calls_to("zendesk")) == 1  # a create that may have run is never sent again


def test_unreachable_upstream_is_502_after_the_retries(start_gateway, saas):
    gw = start_gateway(zendesk_base_url=f"http://127.0.0.1:{free_port()}", connector_max_retries=2)
    started = time.monotonic()
    r = invoke(gw, "zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}})
    assert r.status_code == 502 and r.json()["error"] == "upstream_unreachable", r.text
    assert time.monotonic() - started >= 0.15  # two pauses before the retries: 0.05 s, then 0.1 s
