"""The real CrossGuard pack, served the way the Pulumi CLI runs it, answers over the Analyzer protocol."""

import subprocess
import sys
from pathlib import Path

import grpc
from google.protobuf import empty_pb2, struct_pb2

from infra.sdk_private import analyzer_pb2, analyzer_pb2_grpc
from policy.policies import RESOURCE_POLICIES, STACK_POLICIES
from tests.policy.test_policies import good_deployment
from tests.support.tiers import server_fixture

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"


@server_fixture(scope="module")
def analyzer():
    # Like the CLI's Python language host: `python -u <pack dir>` runs the pack folder's __main__.py.
    proc = subprocess.Popen([sys.executable, "-u", str(POLICY_DIR)], cwd=POLICY_DIR,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = int(proc.stdout.readline().strip() or 0)
        assert port, proc.stderr.read().decode()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=20)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def struct(props):
    s = struct_pb2.Struct()
    s.update(props)
    return s


def test_pack_registers_every_policy_as_mandatory(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "cmp-platform-policies"
    names = {p.name for p in info.policies}
    assert names == {p.name for p in RESOURCE_POLICIES} | {name for name, _, _ in STACK_POLICIES}
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}


def test_pack_reports_a_latest_image(analyzer):
    props = good_deployment()
    props["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:latest"
    resp = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(
        type="kubernetes:apps/v1:Deployment", properties=struct(props),
        urn="urn:pulumi:dev::cmp-platform::kubernetes:apps/v1:Deployment::d", name="d"))
    assert [(d.policyName, d.enforcementLevel) for d in resp.diagnostics] == [
        ("images-pinned", analyzer_pb2.MANDATORY)]
    assert "tag latest" in resp.diagnostics[0].message


def test_pack_passes_a_good_deployment(analyzer):
    resp = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(
        type="kubernetes:apps/v1:Deployment", properties=struct(good_deployment()),
        urn="urn:pulumi:dev::cmp-platform::kubernetes:apps/v1:Deployment::d", name="d"))
    assert list(resp.diagnostics) == []


def test_pack_stack_policy_sees_uncovered_workload(analyzer):
    resource = analyzer_pb2.AnalyzerResource(
        type="kubernetes:apps/v1:Deployment", properties=struct(good_deployment()),
        urn="urn:pulumi:dev::cmp-platform::kubernetes:apps/v1:Deployment::d", name="d")
    resp = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[resource]))
    assert [d.policyName for d in resp.diagnostics] == ["workloads-selected-by-network-policy"]
