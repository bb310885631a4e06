"""Verify's Ragflow checks: pods on nodes of an architecture the image supports, no `exec format error`."""

from __future__ import annotations

from tests.tools.verify.helpers import target
from tools.verify import ragflow
from tools.verify.result import Status

PLATFORMS = ["linux/amd64", "linux/arm64"]


def node(name, arch):
    return {"metadata": {"name": name, "labels": {"kubernetes.io/arch": arch}}}


def pod(name, node_name, phase="Running", last_state=None):
    status = {"name": "ragflow", "state": {"running": {}}, "lastState": last_state or {}}
    return {"metadata": {"name": name}, "spec": {"nodeName": node_name},
            "status": {"phase": phase, "containerStatuses": [status]}}


NODES = {"items": [node("n-amd", "amd64"), node("n-s390", "s390x")]}


def test_a_pod_running_on_a_supported_node_is_ok():
    checks = ragflow.pod_checks({"items": [pod("ragflow-1", "n-amd")]}, NODES, PLATFORMS)
    assert [(c.status, c.reason) for c in checks] == [
        (Status.OK, "Running on node n-amd (amd64), which the image supports")]


def test_an_exec_format_error_in_the_last_termination_fails():
    crashed = {"terminated": {"reason": "Error", "exitCode": 255,
                              "message": "exec /usr/bin/python3: exec format error"}}
    checks = ragflow.pod_checks({"items": [pod("ragflow-1", "n-amd", last_state=crashed)]}, NODES, ["linux/arm64"])
    assert checks[0].status is Status.FAIL
    assert checks[0].reason == ("container ragflow terminated with 'exec format error' on node n-amd (amd64): "
                                "the image lacks that arch")


def test_a_node_arch_the_image_lacks_and_no_pod_fail():
    checks = ragflow.pod_checks({"items": [pod("ragflow-1", "n-s390")]}, NODES, PLATFORMS)
    assert checks[0].reason == "runs on node n-s390 of arch s390x; the image supports linux/amd64, linux/arm64"
    assert ragflow.pod_checks({"items": []}, NODES, PLATFORMS)[0].reason == "no Ragflow pod exists"
    pending = ragflow.pod_checks({"items": [pod("ragflow-1", None, phase="Pending")]}, NODES, PLATFORMS)
    assert pending[0].reason == "not scheduled (Pending)"


def test_no_cluster_is_a_skip_and_ragflow_disabled_too():
    rag = {"ragflow": {"image": "infiniflow/ragflow:v0.15.1", "platforms": PLATFORMS, "nodeArch": "amd64"}}
    assert [(c.status, c.reason) for c in ragflow.check(target(rag))] == [
        (Status.SKIP, "no cluster: pass --kubeconfig or set KUBECONFIG")]
    assert ragflow.check(target({}))[0].reason == "Ragflow is not enabled on this stack"


def test_an_unreachable_cluster_is_one_fail_line_from_kubectl(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n")
    rag = {"ragflow": {"platforms": PLATFORMS}}
    checks = ragflow.check(target(rag, kubeconfig=str(kubeconfig)))
    assert len(checks) == 1 and checks[0].status is Status.FAIL
    assert checks[0].reason.startswith("kubectl get pods -n rag -l app.kubernetes.io/name=ragflow: ")
    assert "127.0.0.1:9" in checks[0].reason
