"""Audit lines, rate limit, metrics, and no credential in any log line."""

from __future__ import annotations

import hashlib
import json
import logging

from tests.services.connector_gateway.conftest import ALL_SECRETS, auth, caller_token

GET_TICKET = {"binding": "zd", "arguments": {"ticket_id": 1}}


def test_audit_line_fields_and_argument_hash(gateway):
    args = {"subject": "Secret subject", "body": "private body text"}
    r = gateway.invoke("zendesk.create_ticket", {"binding": "zd", "arguments": args},
                       headers={**auth(sub="agent-7"), "x-request-id": "req-123"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "req-123"
    (line,) = gateway.audit()
    canonical = json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert line["args_sha256"] == "sha256:" + hashlib.sha256(canonical).hexdigest()
    assert {k: line[k] for k in ("request_id", "org", "project", "sub", "binding", "tool", "decision", "status")} == {
        "request_id": "req-123", "org": "acme", "project": "support", "sub": "agent-7", "binding": "zd",
        "tool": "zendesk.create_ticket", "decision": "allow", "status": 200}
    assert line["time"].endswith("Z") and line["latency_ms"] > 0
    raw = gateway.audit_path.read_text()
    assert "Secret subject" not in raw and "private body text" not in raw


def test_rate_limit_per_org_with_retry_after(start_gateway):
    gw = start_gateway(rate_limit_requests_per_minute=3)
    statuses = [gw.invoke("zendesk.get_ticket", GET_TICKET).status_code for _ in range(3)]
    limited = gw.invoke("zendesk.get_ticket", GET_TICKET)
    assert statuses == [200, 200, 200]
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "3 requests per minute" in limited.json()["message"]
    other_org = gw.invoke("zendesk.get_ticket", GET_TICKET, org="globex")
    assert other_org.status_code == 200
    assert gw.audit()[3]["status"] == 429 and gw.audit()[3]["decision"] == "deny"


def test_metrics_per_tool_and_decision(gateway):
    gateway.invoke("zendesk.get_ticket", GET_TICKET)
    gateway.invoke("zendesk.get_ticket", {"binding": "chat", "arguments": {"ticket_id": 1}})
    text = gateway.http.get("/metrics").text
    assert 'cmp_connector_tool_calls_total{decision="allow",status="200",tool="zendesk.get_ticket"} 1.0' in text
    assert 'cmp_connector_tool_calls_total{decision="deny",status="403",tool="zendesk.get_ticket"} 1.0' in text
    assert 'cmp_connector_tool_errors_total{error="forbidden",tool="zendesk.get_ticket"} 1.0' in text
    assert 'cmp_connector_tool_call_duration_seconds_count{decision="allow",tool="zendesk.get_ticket"} 1.0' in text


def test_no_credential_or_token_in_any_log_line(start_gateway, saas, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    gw = start_gateway(log_level="DEBUG")
    token = caller_token()
    headers = {"authorization": f"Bearer {token}"}
    gw.invoke("zendesk.get_ticket", GET_TICKET, headers=headers)
    gw.invoke("zendesk.create_ticket", {"binding": "zd", "arguments": {"subject": "s", "body": "b"}}, headers=headers)
    gw.invoke("slack.post_message", {"binding": "chat", "arguments": {"channel": "C404", "text": "t"}},
              headers=headers)
    gw.invoke("hubspot.search_contacts", {"binding": "crm", "arguments": {"query": "x"}}, headers=headers)
    saas.hubspot_tokens.clear()  # the upstream now rejects the stored token: an error path that must not leak it
    gw.invoke("hubspot.search_contacts", {"binding": "crm", "arguments": {"query": "y"}}, headers=headers)
    saas.fail_next("zendesk", 500, count=5)
    gw.invoke("zendesk.get_ticket", GET_TICKET, headers=headers)
    gw.invoke("zendesk.get_ticket", GET_TICKET, headers={"authorization": "Bearer " + token[:-4] + "AAAA"})
    gw.http.get("/readyz")
    out, err = capfd.readouterr()
    logs = [gw.audit_path.read_text(), out, err, *(r.getMessage() for r in caplog.records)]
    assert len(gw.audit()) == 7
    for text in logs:
        for secret in (*ALL_SECRETS, token, gw.settings.vault_token.get_secret_value()):
            assert secret not in text
