"""`python -m tools.verify`: one line per check, --json, exit 1 on any FAIL, 2 when it cannot start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tools.verify.__main__ import main

ROOT = Path(__file__).resolve().parents[3]
OUTPUTS = {"environment": "dev", "serviceUrls": {"connectorGateway": "http://127.0.0.1:9",
                                                 "provisioner": "http://127.0.0.1:9"}}


def outputs_file(tmp_path, outputs=OUTPUTS):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    return str(path)


def test_a_fail_prints_its_line_and_exits_1(tmp_path, capsys):
    code = main(["--stack", "dev", "--outputs", outputs_file(tmp_path), "--only", "services", "--only", "ragflow",
                 "--timeout", "2"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out == ["FAIL connectorGateway /readyz: http://127.0.0.1:9 unreachable (ConnectError)",
                   "FAIL provisioner /readyz: http://127.0.0.1:9 unreachable (ConnectError)",
                   "skip ragflow: Ragflow is not enabled on this stack",
                   "0 ok, 2 FAIL, 1 skip"]


def test_skips_alone_exit_0_and_json_carries_every_check(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CMP_PROBE_INSTANCE_ID", raising=False)
    code = main(["--stack", "dev", "--outputs", outputs_file(tmp_path), "--only", "control-plane", "--json"])
    answer = json.loads(capsys.readouterr().out)
    assert code == 0
    assert answer == {"stack": "dev", "ok": True, "checks": [{
        "area": "control-plane", "name": "control plane routes", "status": "skip",
        "reason": "no probe instance id for stack dev (--probe-instance-id or CMP_PROBE_INSTANCE_ID)"}]}


def test_url_overrides_replace_the_in_cluster_addresses(tmp_path, capsys):
    main(["--stack", "dev", "--outputs", outputs_file(tmp_path), "--only", "services",
          "--url", "provisioner=http://127.0.0.1:10", "--timeout", "2"])
    assert "FAIL provisioner /readyz: http://127.0.0.1:10 unreachable" in capsys.readouterr().out


def test_inputs_it_cannot_use_are_one_error_line_and_exit_2(tmp_path, capsys):
    assert main(["--stack", "dev", "--outputs", str(tmp_path / "nope.json")]) == 2
    assert capsys.readouterr().err.startswith(f"error: verify dev: --outputs {tmp_path / 'nope.json'}: ")
    assert main(["--stack", "dev", "--outputs", outputs_file(tmp_path), "--since", "yesterday"]) == 2
    assert capsys.readouterr().err == (
        "error: verify dev: --since 'yesterday': expected a number and s, m, h or d, like 1h\n")
    assert main(["--stack", "qa", "--outputs", outputs_file(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: verify qa: unknown stack 'qa' (known: dev, ")
    assert main(["--stack", "dev", "--outputs", outputs_file(tmp_path), "--url", "provisioner"]) == 2


def test_the_module_runs_as_make_verify_runs_it(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tools.verify", "--stack", "dev", "--outputs",
                           outputs_file(tmp_path), "--only", "ragflow"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "skip ragflow: Ragflow is not enabled on this stack\n0 ok, 0 FAIL, 1 skip\n"


def test_port_forward_rewrites_only_cluster_addresses():
    from tools.verify.forward import in_cluster, local_url

    assert in_cluster("http://cmp-provisioner.cmp.svc.cluster.local:8000/webhooks/x").port == 8000
    assert in_cluster("http://vault.vault.svc:8200").namespace == "vault"
    assert in_cluster("https://saleor.example.com/graphql/") is None
    assert local_url("http://saleor-api.saleor.svc.cluster.local:8000/graphql/", 41000) == (
        "http://127.0.0.1:41000/graphql/")


def test_port_forward_without_a_reachable_cluster_is_one_error_line(tmp_path, capsys):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n")
    outputs = {"serviceUrls": {"provisioner": "http://cmp-provisioner.cmp.svc.cluster.local:8000"}}
    code = main(["--stack", "dev", "--outputs", outputs_file(tmp_path, outputs), "--port-forward",
                 "--kubeconfig", str(kubeconfig), "--only", "services"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: verify dev: kubectl port-forward -n cmp svc/cmp-provisioner: ")
    assert len(err.splitlines()) == 1
