"""`python -m tools.verify` against the loopback deployment: everything the dev stack deploys checks out ok.

The deployment is the smoke's (services configured only from the dev preview, OpenBao seeded from the path
table, the control-plane fake) plus what `pulumi up` also leaves behind: the consumer policies in Vault and
the Saleor app with its webhooks (created in the Saleor fake with the provider's own mutations).
"""

from __future__ import annotations

import json

import httpx
import pytest

from components.vault.policies import CONSUMERS, consumer_policy_hcl
from tests.components.saleor.fake_saleor import FakeSaleor
from tests.support.control_plane import service_token
from tests.tools.verify.helpers import deploy_app
from tools.verify.__main__ import main
from tools.verify.inputs import load_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


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

    code = main(["--stack", "dev", "--outputs", str(outputs), "--url", f"connectorGateway={gateway.url}",
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
