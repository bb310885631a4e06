"""Tenant isolation and traversal: the tenant comes only from the verified token, and no Vault read ever
leaves ``kv/data/connectors/{org}/{project}/`` (checked in OpenBao's own audit log)."""

from __future__ import annotations

import base64

import httpx
import pytest

from components.vault.paths import connector_credentials_path
from tests.services.connector_gateway.conftest import ZENDESK_TOKEN_GLOBEX, auth


def post(gw, tool: str, body, **token_kwargs) -> httpx.Response:
    return gw.invoke(tool, body, **token_kwargs)


def new_vault_paths(openbao, before: int) -> list[str]:
    return [p for p in openbao.audit_paths()[before:] if p.startswith("kv/")]


@pytest.mark.parametrize(
    ("org", "project", "tool", "binding"),
    [
        ("acme", "support", "hubspot.create_contact", "crm2"),  # project X with project Y's binding
        ("acme", "sales", "zendesk.get_ticket", "zd"),  # project Y with project X's binding
        ("globex", "support", "slack.post_message", "chat"),  # org B with org A's binding
        ("acme", "support", "zendesk.get_ticket", "crm"),  # a binding of another connector
        ("globex", "support", "zendesk.create_ticket", "zd"),  # a tool the binding does not list
    ],
)
def test_cross_tenant_bindings_are_denied_without_reading_vault(gateway, saas, seeded_openbao, org, project, tool,
                                                                binding):
    before = len(seeded_openbao.audit_paths())
    args = {"zendesk.get_ticket": {"ticket_id": 1}, "slack.post_message": {"channel": "C0GENERAL", "text": "x"},
            "hubspot.create_contact": {"email": "a@b.test"}, "zendesk.create_ticket": {"subject": "s", "body": "b"}}
    r = post(gateway, tool, {"binding": binding, "arguments": args[tool]}, org=org, project=project)
    assert r.status_code == 403, r.text
    assert saas.calls == []
    assert new_vault_paths(seeded_openbao, before) == []
    line = gateway.audit()[-1]
    assert (line["org"], line["project"], line["binding"], line["decision"], line["status"]) == (
        org, project, binding, "deny", 403)


def test_same_binding_name_in_two_orgs_reads_only_the_callers_secret(gateway, saas, seeded_openbao):
    before = len(seeded_openbao.audit_paths())
    r = post(gateway, "zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}}, org="globex")
    assert r.status_code == 200, r.text
    assert new_vault_paths(seeded_openbao, before) == [connector_credentials_path("globex", "support", "zd")]
    sent = saas.calls_to("zendesk")[0].authorization
    assert base64.b64decode(sent[6:]).decode() == f"bot@globex.test/token:{ZENDESK_TOKEN_GLOBEX}"


def test_policy_naming_another_tenants_binding_still_reads_only_the_callers_prefix(gateway, policies, saas,
                                                                                 seeded_openbao):
    # Even a control plane that lists acme's binding name for globex cannot make the gateway read acme's path.
    policies.set_policy("globex", "support", [{"binding": "chat", "connector": "slack",
                                               "tools": ["slack.post_message"]}])
    before = len(seeded_openbao.audit_paths())
    r = post(gateway, "slack.post_message", {"binding": "chat", "arguments": {"channel": "C0GENERAL", "text": "x"}},
             org="globex")
    assert r.status_code == 424 and r.json()["error"] == "credentials_missing"
    assert new_vault_paths(seeded_openbao, before) == [connector_credentials_path("globex", "support", "chat")]
    assert saas.calls == []


def test_tenant_fields_in_the_body_are_refused(gateway, saas):
    r = post(gateway, "zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}, "org": "globex"})
    assert r.status_code == 400 and "org" in r.json()["message"]
    r = post(gateway, "zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1, "org": "globex"}})
    assert r.status_code == 400 and "arguments.org" in r.json()["message"]
    assert saas.calls == []


TRAVERSALS = [
    "../zd", "..", ".", "zd/../../globex/support/zd", "zd/", "/zd", "%2e%2e", "..%2fzd", "zd%2F..", "zd%00",
    "zd\x00", "zd\n", "zd\t", "zd\\..\\x", ".hidden", "zd..", "-zd", "z d", "zd\u202e", "\uff5a\uff44", "a" * 65, "",
    "zd;rm", "zd?x=1", "zd#x",
]


def test_traversal_encoded_and_non_string_bindings_are_400_before_vault(gateway, saas, seeded_openbao):
    before = len(seeded_openbao.audit_paths())
    for binding in [*TRAVERSALS, None, 7, ["zd"], {"b": "zd"}]:
        r = post(gateway, "zendesk.get_ticket", {"binding": binding, "arguments": {"ticket_id": 1}})
        assert r.status_code == 400, (binding, r.text)
        assert r.json()["error"] == "invalid_binding", binding
        assert "binding" in r.json()["message"]
    assert new_vault_paths(seeded_openbao, before) == []
    assert saas.calls == []
    assert [a["status"] for a in gateway.audit()] == [400] * (len(TRAVERSALS) + 4)


def test_traversal_in_token_claims_is_401(gateway, seeded_openbao):
    before = len(seeded_openbao.audit_paths())
    for claims in ({"org": "../acme"}, {"org": "acme/support"}, {"org": "acme%2f"}, {"org": ""},
                   {"project": "support/../x"}, {"project": ".."}):
        r = post(gateway, "zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}}, **claims)
        assert r.status_code == 401, claims
        assert next(iter(claims)) in r.json()["message"]
    assert new_vault_paths(seeded_openbao, before) == []


def test_encoded_separators_in_the_tool_path_are_unknown_tools(gateway, saas):
    for raw in ("..%2F..%2Fzendesk.get_ticket", "zendesk.get_ticket%2F..", "%2e%2e%2Fzendesk.get_ticket"):
        r = gateway.http.post(f"/v1/tools/{raw}:invoke", json={"binding": "zd", "arguments": {}}, headers=auth())
        assert r.status_code == 404, (raw, r.text)
        assert r.json()["error"] == "unknown_tool"
    assert saas.calls == []
