"""The reference's step-5 smoke, run against the real services on loopback (marker e2e).

T1: a signed ORDER_FULLY_PAID delivery for a line `ov_100:pro` ends as exactly one instance in the control
plane (also when Saleor redelivers it); ORDER_CANCELLED cancels it.
T6: a tool call with a seeded binding reaches the SaaS fake with that binding's credentials; the same call
with another tenant's token is denied and audited, and that tenant's credentials are never sent.
Then `python -m tools.verify` against the same loopback deployment, plus what `pulumi up` also leaves behind
(the consumer policies in Vault, the Saleor app and its webhooks created in the Saleor fake with the
provider's own mutations): everything the dev stack deploys checks out ok. (One module, so one deployment.)
"""

from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from components.vault.paths import CONNECTOR, CONNECTOR_CREDENTIALS_PREFIX, CONNECTOR_MOUNT
from components.vault.policies import CONSUMERS, consumer_policy_hcl
from tests.components.saleor.fake_saleor import FakeSaleor
from tests.services.provisioner.helpers import body_of, line, order_payload, wait_until
from tests.support.control_plane import service_token
from tests.tools.verify.helpers import deploy_app
from tools.verify.__main__ import main as verify_main
from tools.verify.inputs import load_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _deliver(service, webhook_url: str, payload: dict, key, jwks) -> httpx.Response:
    """POST the way Saleor does: raw body, detached-JWS signature, Saleor-* headers, event from the URL."""
    body = body_of(payload)
    event = {"OrderFullyPaid": "order_fully_paid", "OrderCancelled": "order_cancelled",
             "OrderCreated": "order_created"}[payload["__typename"]]
    headers = {"Content-Type": "application/json", "Saleor-Event": event, "Saleor-Domain": "saleor.example.com",
               "Saleor-Api-Url": jwks.api_url, "Saleor-Signature": key.sign(body)}
    return httpx.post(service.url + urlsplit(webhook_url).path, content=body, headers=headers, timeout=10)


def _settled(provisioner) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The provisioner's metrics once its inbox holds no pending row: every delivery it accepted has been worked
    on, so what has not happened by then will not happen from those deliveries."""
    def samples():
        text = httpx.get(provisioner.url + "/metrics", timeout=10).text
        found = {(s.name, tuple(sorted(s.labels.items()))): s.value
                 for family in text_string_to_metric_families(text) for s in family.samples}
        return found if found.get(("cmp_provisioner_inbox_rows", (("status", "pending"),)), 0) == 0 else None

    return wait_until(samples, what="the provisioner's inbox to hold no pending row")


def _deliveries(metrics, outcome: str) -> float:
    return sum(v for (name, labels), v in metrics.items()
               if name == "cmp_provisioner_deliveries_total" and ("outcome", outcome) in labels)


def test_t1_order_paid_becomes_one_instance_and_cancel_cancels_it(provisioner, control_plane, preview,
                                                                   saleor_key, saleor_jwks):
    urls = preview.outputs["webhookUrls"]
    paid_url = next(u for u in urls.values() if u.endswith("/order-fully-paid"))
    cancelled_url = next(u for u in urls.values() if u.endswith("/order-cancelled"))
    order_id = "T3JkZXI6" + uuid.uuid4().hex
    paid = order_payload(order_id, lines=[line("ov_100", "pro")])

    first = _deliver(provisioner, paid_url, paid, saleor_key, saleor_jwks)
    assert 200 <= first.status_code < 300, first.text
    (instance,) = wait_until(lambda: control_plane.instances_for_order(order_id), what="the instance")
    assert (instance.offering_version_id, instance.plan_id, instance.quantity) == ("ov_100", "pro", 1)
    assert instance.user_email == "buyer@example.com" and instance.order_number == "42"

    again = _deliver(provisioner, paid_url, paid, saleor_key, saleor_jwks)  # Saleor retries deliveries
    assert 200 <= again.status_code < 300, again.text
    assert _deliveries(_settled(provisioner), "duplicate") >= 1  # not queued again, and the queue is worked off
    assert len(control_plane.instances_for_order(order_id)) == 1

    cancel = _deliver(provisioner, cancelled_url, order_payload(order_id, typename="OrderCancelled"),
                      saleor_key, saleor_jwks)
    assert 200 <= cancel.status_code < 300, cancel.text
    wait_until(lambda: control_plane.instances_for_order(order_id, status="cancelled"), what="the cancellation")
    assert len(control_plane.instances_for_order(order_id)) == 1
    calls = control_plane.calls_to("POST", "/instances/cancel")
    assert calls and calls[-1].issuer == "cmp-provisioner"
    assert calls[-1].idempotency_key == f"saleor-cancel:{order_id}"


def test_t1_unsigned_delivery_creates_nothing(provisioner, control_plane, preview, saleor_jwks):
    from tests.services.provisioner.helpers import SigningKey

    paid_url = next(u for u in preview.outputs["webhookUrls"].values() if u.endswith("/order-fully-paid"))
    order_id = "T3JkZXI6" + uuid.uuid4().hex
    forged = _deliver(provisioner, paid_url, order_payload(order_id), SigningKey(kid="e2e-saleor-key"), saleor_jwks)
    assert forged.status_code in (400, 401, 403), forged.text
    # Refused at the door, so never queued; with nothing queued left to do, no instance can come of it.
    assert _deliveries(_settled(provisioner), "rejected_signature") >= 1
    assert control_plane.instances_for_order(order_id) == []


ACME_ZENDESK = {"subdomain": "acme", "email": "bot@acme.test", "api_token": "zd-e2e-acme-1f2e3d"}
GLOBEX_ZENDESK = {"subdomain": "globex", "email": "bot@globex.test", "api_token": "zd-e2e-globex-9a8b7c"}


def _token(control_plane, org: str, project: str = "support") -> str:
    """A runtime's token as the control plane signs it (the gateway checks it against the control plane's JWKS)."""
    return control_plane.caller_keys.mint({"org": org, "project": project, "sub": "agent-1"}, lifetime=120)


def test_t6_tool_call_uses_the_bindings_credentials_and_other_tenant_is_denied(gateway, control_plane, saas,
                                                                                 seeded_vault):
    vault = seeded_vault.client()
    for org, creds in (("acme", ACME_ZENDESK), ("globex", GLOBEX_ZENDESK)):
        vault.secrets.kv.v2.create_or_update_secret(
            path=f"{CONNECTOR_CREDENTIALS_PREFIX}/{org}/support/zd", secret=creds, mount_point=CONNECTOR_MOUNT)
        saas.zendesk_logins[f"{creds['email']}/token"] = creds["api_token"]
    control_plane.set_policy("acme", "support", [
        {"binding": "zd", "connector": "zendesk", "tools": ["zendesk.create_ticket"]}])
    control_plane.set_policy("globex", "support", [
        {"binding": "zd", "connector": "zendesk", "tools": ["zendesk.get_ticket"]}])
    secret = gateway.env["SERVICE_JWT_SECRET"]
    call = {"binding": "zd", "arguments": {"subject": "Refund", "body": "Order 42 twice"}}
    invoke = f"{gateway.url}/v1/tools/zendesk.create_ticket:invoke"

    ok = httpx.post(invoke, json=call, headers={"authorization": f"Bearer {_token(control_plane, 'acme')}"}, timeout=10)
    assert ok.status_code == 200, ok.text
    (sent,) = saas.calls_to("zendesk")
    expected = base64.b64encode(f"bot@acme.test/token:{ACME_ZENDESK['api_token']}".encode()).decode()
    assert sent.authorization == f"Basic {expected}"
    assert sent.body["ticket"]["subject"] == "Refund"

    denied = httpx.post(invoke, json=call, headers={"authorization": f"Bearer {_token(control_plane, 'globex')}"},
                        timeout=10)
    assert denied.status_code == 403, denied.text
    assert len(saas.calls_to("zendesk")) == 1  # nothing left the gateway for globex
    audit = [json.loads(x) for x in gateway.audit_path.read_text().splitlines() if x.strip()]
    decisions = [(a["org"], a["binding"], a["decision"], a["status"]) for a in audit]
    assert ("acme", "zd", "allow", 200) in decisions
    assert decisions[-1] == ("globex", "zd", "deny", 403)
    for secret_value in (ACME_ZENDESK["api_token"], GLOBEX_ZENDESK["api_token"], secret):
        assert secret_value not in gateway.audit_path.read_text()
        assert secret_value not in gateway.log()


def test_services_run_only_on_what_the_program_deploys(provisioner, gateway, preview, seeded_vault):
    """Env = the ConfigMap's keys + the ExternalSecret's keys (+ VAULT_TOKEN, the local stand-in for k8s auth)."""
    for service, extra in ((provisioner, set()), (gateway, {"VAULT_TOKEN"})):
        config = preview.get("ConfigMap", f"{service.name}-config")["data"]
        secret_keys = {e["secretKey"] for e in preview.get("ExternalSecret", f"{service.name}-secrets")["spec"]["data"]}
        assert set(service.env) == set(config) | secret_keys | extra
        assert service.env["LOG_LEVEL"] == config["LOG_LEVEL"]
    stored = seeded_vault.client().secrets.kv.v2.read_secret_version(
        path=CONNECTOR.path, mount_point=CONNECTOR.mount, raise_on_deleted_version=True)["data"]["data"]
    assert gateway.env["SERVICE_JWT_SECRET"] == stored["service_jwt_secret"]
    assert provisioner.env["DATABASE_URL"].startswith("postgresql+psycopg://")


# --- make verify on the same deployment ---------------------------------------------------------------------


@pytest.fixture
def saleor(schema_dir):
    staff = load_config("dev").saleor.staff_email  # the staff user the dev stack logs in as
    with FakeSaleor(login_seconds=0.0, staff_email=staff) as fake:
        yield fake


def test_verify_passes_on_the_loopback_deployment(preview, provisioner, gateway, seeded_vault, control_plane,
                                                   saleor, tmp_path, monkeypatch, capsys):
    client = seeded_vault.client()
    for consumer in CONSUMERS:
        client.sys.create_or_update_acl_policy(consumer, consumer_policy_hcl(consumer))
    app_id, hooks = deploy_app(saleor, preview.outputs["webhookUrls"])
    saleor.record_delivery(hooks["ORDER_FULLY_PAID"], [(200, '{"status":"accepted"}')])
    secret = provisioner.env["SERVICE_JWT_SECRET"]
    probe = httpx.post(f"{control_plane.url}/instances", json={
        "order_id": "verify-probe", "offering_version_id": "ov_probe", "plan_id": "probe", "quantity": 1},
        headers={"Authorization": f"Bearer {service_token('cmp-provisioner', secret)}",
                 "Idempotency-Key": "saleor-order:verify-probe"}).json()["instance_id"]
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({**preview.outputs, "saleorAppId": app_id}))
    monkeypatch.setenv("VAULT_TOKEN", seeded_vault.root_token)
    monkeypatch.setenv("SALEOR_STAFF_PASSWORD", saleor.staff.password)
    for name in ("KUBECONFIG", "CMP_VERIFY_CP_JWT_SECRET", "CMP_PROBE_INSTANCE_ID"):
        monkeypatch.delenv(name, raising=False)  # the probe signs with the gateway's secret, read from Vault

    code = verify_main(["--stack", "dev", "--outputs", str(outputs), "--url", f"connectorGateway={gateway.url}",
                 "--url", f"provisioner={provisioner.url}", "--saleor-url", saleor.api_url,
                 "--vault-addr", seeded_vault.addr, "--control-plane-url", control_plane.url,
                 "--probe-instance-id", probe, "--json"])
    checks = json.loads(capsys.readouterr().out)["checks"]

    not_ok = [c for c in checks if c["status"] != "ok"]
    assert not_ok == [{"area": "ragflow", "name": "ragflow", "status": "skip",
                       "reason": "no cluster: pass --kubeconfig or set KUBECONFIG"}]
    assert code == 0
    assert {c["area"] for c in checks} == {"saleor", "vault", "control-plane", "services", "ragflow"}
    assert len([c for c in checks if c["area"] == "saleor"]) == 5  # app, three webhooks, deliveries
    assert control_plane.instances[probe].credits == 100  # the probe consumed nothing
