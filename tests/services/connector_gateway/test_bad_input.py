"""Bad input: each refusal is a 4xx naming what is wrong, reaches neither Vault nor an upstream, and is audited."""

from __future__ import annotations

import json

import pytest

from tests.services.connector_gateway.conftest import auth, caller_token


def _no_side_effects(gw, saas, openbao, before: int, requests: int) -> None:
    assert saas.calls == []
    assert [p for p in openbao.audit_paths()[before:] if p.startswith("kv/")] == []
    lines = gw.audit()
    assert len(lines) == requests
    assert all(line["decision"] == "deny" and 400 <= line["status"] < 500 for line in lines), lines


BAD_BODIES = [
    (b"{not json", 400, "malformed_json", "not valid JSON"),
    (b"[1, 2]", 400, "invalid_body", "JSON object"),
    (b'{"arguments": {}}', 400, "invalid_body", "'binding' is required"),
    (b'{"binding": "zd", "arguments": {}, "extra": 1}', 400, "invalid_body", "extra"),
    (b'{"binding": "zd", "arguments": []}', 400, "invalid_arguments", "arguments must be a JSON object"),
    (b'{"binding": "zd", "arguments": {"ticket_id": "abc"}}', 400, "invalid_arguments", "arguments.ticket_id"),
    (b'{"binding": "zd", "arguments": {"ticket_id": -3}}', 400, "invalid_arguments", "arguments.ticket_id"),
    (b'{"binding": "zd", "arguments": {}}', 400, "invalid_arguments", "arguments.ticket_id: Field required"),
    (b'{"binding": "zd", "arguments": {"ticket_id": 1, "x": 2}}', 400, "invalid_arguments", "arguments.x"),
    (b"\xff\xfe", 400, "malformed_json", "not valid JSON"),
]


def test_malformed_bodies_and_schema_violations(gateway, saas, seeded_openbao):
    before = len(seeded_openbao.audit_paths())
    for raw, status, code, fragment in BAD_BODIES:
        r = gateway.http.post("/v1/tools/zendesk.get_ticket:invoke", content=raw,
                              headers={**auth(), "content-type": "application/json"})
        assert r.status_code == status, (raw, r.text)
        assert r.json()["error"] == code, raw
        assert fragment in r.json()["message"], (raw, r.json())
    _no_side_effects(gateway, saas, seeded_openbao, before, len(BAD_BODIES))


@pytest.mark.parametrize(
    ("tool", "arguments", "field"),
    [
        ("zendesk.create_ticket", {"body": "b"}, "arguments.subject"),
        ("zendesk.create_ticket", {"subject": "s", "body": "b", "priority": "asap"}, "arguments.priority"),
        ("zendesk.create_ticket", {"subject": "x" * 300, "body": "b"}, "arguments.subject"),
        ("slack.post_message", {"channel": "general/../x", "text": "t"}, "arguments.channel"),
        ("slack.post_message", {"channel": "C1"}, "arguments.text"),
        ("hubspot.search_contacts", {"limit": 5}, "give 'query' or 'email'"),
        ("hubspot.search_contacts", {"email": "no-at-sign", "limit": 500}, "arguments.email"),
    ],
)
def test_each_tool_schema_names_the_field(gateway, saas, tool, arguments, field):
    binding = {"zendesk": "zd", "slack": "chat", "hubspot": "crm"}[tool.split(".")[0]]
    r = gateway.invoke(tool, {"binding": binding, "arguments": arguments})
    assert r.status_code == 400, r.text
    assert field in r.json()["message"]
    assert saas.calls == []


def test_unknown_tool_is_404_listing_known_tools(gateway, saas, seeded_openbao):
    before = len(seeded_openbao.audit_paths())
    r = gateway.invoke("jira.create_issue", {"binding": "zd", "arguments": {}})
    assert r.status_code == 404
    assert "unknown tool 'jira.create_issue'" in r.json()["message"] and "zendesk.get_ticket" in r.json()["message"]
    _no_side_effects(gateway, saas, seeded_openbao, before, 1)


def test_oversized_body_is_413_naming_the_limit(start_gateway, saas, seeded_openbao):
    gw = start_gateway(max_body_bytes=1024)
    before = len(seeded_openbao.audit_paths())
    big = json.dumps({"binding": "zd", "arguments": {"subject": "s", "body": "x" * 5000}}).encode()
    r = gw.http.post("/v1/tools/zendesk.create_ticket:invoke", content=big, headers=auth())
    assert r.status_code == 413 and "MAX_BODY_BYTES=1024" in r.json()["message"]

    def chunks():  # no Content-Length: the limit holds while streaming too
        for _ in range(10):
            yield b"x" * 500

    r = gw.http.post("/v1/tools/zendesk.create_ticket:invoke", content=chunks(), headers=auth())
    assert r.status_code == 413
    _no_side_effects(gw, saas, seeded_openbao, before, 2)


def test_bad_tokens_are_401_with_a_reason(gateway, saas, seeded_openbao):
    cases = [
        ({}, "missing Authorization"),
        ({"authorization": "Basic abc"}, "Bearer"),
        ({"authorization": "Bearer"}, "Bearer"),
        ({"authorization": "Bearer garbage"}, "not a valid JWT"),
        (auth(lifetime=-60), "expired"),
        (auth(project=None), "'project'"),
        (auth(sub=None), "'sub'"),
        ({"authorization": "Bearer " + caller_token(exp=None)}, "'exp'"),
    ]
    before = len(seeded_openbao.audit_paths())
    for headers, reason in cases:
        r = gateway.invoke("zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}}, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert reason in r.json()["message"], (reason, r.json())
        assert r.headers["www-authenticate"].startswith("Bearer")
    _no_side_effects(gateway, saas, seeded_openbao, before, len(cases))
    assert all(line["org"] is None for line in gateway.audit())


def test_wrong_method_is_refused(gateway):
    r = gateway.http.get("/v1/tools/zendesk.get_ticket:invoke", headers=auth())
    assert r.status_code == 405
