"""Argument rules: CEL expressions in the control plane's policy, checked on every call before any credential is
read; a rule that does not compile makes the whole policy unusable (fail closed, audited)."""

from __future__ import annotations

import pytest

from tests.services.connector_gateway.mcp_helpers import mcp_client

# "chat-nocreds" has no credentials in Vault: a call that reaches the credential read answers 424, so a 403
# there proves the rule was decided first.
RULES = [
    {"name": "general-only", "tool": "slack.post_message", "expression": 'arguments.channel == "#general"'},
    {"name": "no-threads", "tool": "slack.post_message", "expression": "!has(arguments.thread_ts)"},
    {"name": "own-project", "tool": "slack.post_message", "expression": 'caller.project == "support"'},
]


def _chat_binding(binding: str, rules: list[dict]) -> dict:
    return {"binding": binding, "connector": "slack", "tools": ["slack.post_message"], "rules": rules}


@pytest.fixture
def ruled(start_gateway, policies):
    policies.set_policy("acme", "support", [_chat_binding("chat", RULES), _chat_binding("chat-nocreds", RULES)])
    return start_gateway()


def test_a_call_the_rules_allow_runs(ruled, saas):
    r = ruled.invoke("slack.post_message", {"binding": "chat", "arguments": {"channel": "#general", "text": "hi"}})
    assert r.status_code == 200, r.text
    assert saas.calls_to("slack")[0].body == {"channel": "#general", "text": "hi"}


@pytest.mark.parametrize(("arguments", "rule"), [
    ({"channel": "C0GENERAL", "text": "hi"}, "general-only"),
    ({"channel": "#general", "text": "hi", "thread_ts": "1700000000.000100"}, "no-threads"),
])
def test_a_denied_call_is_403_naming_the_rule_before_any_credential_is_read(ruled, saas, arguments, rule):
    r = ruled.invoke("slack.post_message", {"binding": "chat-nocreds", "arguments": arguments})
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "argument_denied"
    assert f"argument rule {rule!r} denies this call of slack.post_message on binding 'chat-nocreds'" \
        == r.json()["message"]
    assert saas.calls == []
    line = ruled.audit()[-1]
    assert (line["decision"], line["status"], line["error"]) == ("deny", 403, "argument_denied")
    # The same arguments the rules allow reach the credential read (nothing stored there: 424).
    allowed = ruled.invoke("slack.post_message", {"binding": "chat-nocreds",
                                                  "arguments": {"channel": "#general", "text": "hi"}})
    assert allowed.status_code == 424 and allowed.json()["error"] == "credentials_missing"


def test_a_rule_that_cannot_be_evaluated_denies(start_gateway, policies, saas):
    rule = {"name": "needs-thread", "tool": "slack.post_message", "expression": 'arguments.thread_ts != ""'}
    policies.set_policy("acme", "support", [_chat_binding("chat", [rule])])
    gw = start_gateway()
    r = gw.invoke("slack.post_message", {"binding": "chat", "arguments": {"channel": "#general", "text": "hi"}})
    assert r.status_code == 403 and "'needs-thread'" in r.json()["message"]
    assert saas.calls == []


def test_rules_see_list_arguments(start_gateway, policies, saas):
    rule = {"name": "vip-tag", "tool": "zendesk.create_ticket", "expression": '"vip" in arguments.tags'}
    policies.set_policy("acme", "support", [{"binding": "zd", "connector": "zendesk",
                                             "tools": ["zendesk.create_ticket"], "rules": [rule]}])
    gw = start_gateway()
    body = {"binding": "zd", "arguments": {"subject": "s", "body": "b", "tags": ["vip"]}}
    assert gw.invoke("zendesk.create_ticket", body).status_code == 200
    body["arguments"]["tags"] = ["other"]
    denied = gw.invoke("zendesk.create_ticket", body)
    assert denied.status_code == 403 and "'vip-tag'" in denied.json()["message"]
    assert len(saas.calls_to("zendesk")) == 1


async def test_a_rule_that_does_not_compile_fails_the_policy_closed_and_is_audited(start_gateway, policies, saas):
    broken = {"name": "broken", "tool": "slack.post_message", "expression": "arguments.channel =="}
    policies.set_policy("acme", "support", [_chat_binding("chat", [broken]),
                                            {"binding": "zd", "connector": "zendesk", "tools": ["zendesk.get_ticket"]}])
    gw = start_gateway()
    # Even a tool the broken rule does not touch is refused: the document as a whole is not used.
    r = gw.invoke("zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}})
    assert r.status_code == 502, r.text
    assert r.json()["error"] == "policy_invalid"
    assert "rule 'broken' on slack.post_message does not compile" in r.json()["message"]
    line = gw.audit()[-1]
    assert (line["decision"], line["status"], line["error"]) == ("error", 502, "policy_invalid")
    async with mcp_client(gw) as client:
        assert (await client.list_tools()).tools == []
    assert saas.calls == []
    # Once the control plane serves a good document, the next fetch is used.
    broken["expression"] = 'arguments.channel == "#general"'
    ok = gw.invoke("zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}})
    assert ok.status_code == 200, ok.text
