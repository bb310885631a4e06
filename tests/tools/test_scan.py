"""tools/scan.py: which checkov findings are accepted, which fail, and the skip list's own rules."""

from __future__ import annotations

import json

import pytest

from tools.scan import SKIPS, Finding, ScanError, Skip, compare, findings_of, json_documents, load_skips


def finding(check="CKV_K8S_35", obj="Deployment.cmp.cmp-connector", stack="dev", path=None) -> Finding:
    path = path or f"build/preview/{stack}/manifests/1-manifest/x.yaml"
    return Finding(check=check, name="a check", object=obj, path=path, stack=stack)


REASON = "a reason long enough to say why it is accepted"


def test_the_committed_skip_list_loads_and_each_entry_says_why():
    skips = load_skips()
    assert skips and all(len(s.why) >= 20 and s.object and s.checks for s in skips)


def test_a_finding_no_entry_covers_is_new_and_an_entry_matching_nothing_is_stale():
    skips = [Skip(object="Deployment.cmp.cmp-*", checks=("CKV_K8S_35",), why=REASON),
             Skip(object="Deployment.rag.ragflow", checks=("CKV_K8S_22",), why=REASON)]
    covered, other = finding(), finding(obj="Deployment.cmp.cmp-provisioner")  # both match the wildcard
    new_check, new_object = finding(check="CKV_K8S_8"), finding(obj="Deployment.cmp.saleor")
    new, stale = compare([covered, other, new_check, new_object], skips)
    assert new == [new_check, new_object]
    assert [s.object for s in stale] == ["Deployment.rag.ragflow"]
    assert compare([covered], skips[:1]) == ([], [])


def test_an_entry_for_some_stacks_does_not_cover_the_others():
    skip = Skip(object="Deployment.*.*", checks=("CKV_K8S_43",), stacks=("dev", "staging"), why=REASON)
    assert skip.covers(finding(check="CKV_K8S_43", stack="staging"))
    assert not skip.covers(finding(check="CKV_K8S_43", stack="prod"))


def test_every_check_of_a_partial_patch():
    skip = Skip(object="Deployment.cmp.cmp-gateway", checks=("*",), why=REASON)
    assert skip.covers(finding(check="CKV_K8S_8", obj="Deployment.cmp.cmp-gateway"))
    assert not skip.covers(finding(check="CKV_K8S_8", obj="Deployment.cmp.cmp-connector"))


@pytest.mark.parametrize(("entry", "message"), [
    ({"object": "x", "checks": ["CKV_1"]}, r"entry 0 \(x\): why: Field required"),
    ({"object": "x", "checks": ["CKV_1"], "why": "because"}, "why: String should have at least 20 characters"),
    ({"object": "x", "checks": [], "why": REASON}, "checks: Tuple should have at least 1 item"),
    ({"object": "x", "checks": ["CKV_1"], "stacks": ["qa"], "why": REASON}, "stack 'qa' is not one of"),
    ({"object": "x", "checks": ["CKV_1"], "why": REASON, "until": "never"}, "until: Extra inputs"),
])
def test_a_malformed_entry_is_one_line_naming_it(tmp_path, entry, message):
    path = tmp_path / SKIPS.name
    path.write_text(json.dumps([entry]))
    with pytest.raises(ScanError, match=message):
        load_skips(path)


def test_checkov_reports_become_findings_with_repository_paths_and_stacks():
    kubernetes = {"check_type": "kubernetes", "results": {"failed_checks": [{
        "check_id": "CKV_K8S_43", "check_name": "Image should use digest", "resource": "Deployment.rag.ragflow",
        "file_path": "/build/preview/staging/manifests/1-manifest/apps_v1-deployment-rag-ragflow.yaml"}]}}
    dockerfile = {"check_type": "dockerfile", "results": {"failed_checks": [{
        "check_id": "CKV_DOCKER_2", "check_name": "HEALTHCHECK", "resource": "/provisioner/Dockerfile.",
        "file_path": "/provisioner/Dockerfile"}]}}
    text = json.dumps([kubernetes]) + "\n" + json.dumps(dockerfile)  # several -d: one document each
    reports = json_documents(text)
    assert len(reports) == 2
    (k8s,) = findings_of(reports[0], "build/preview")
    assert (k8s.object, k8s.stack) == ("Deployment.rag.ragflow", "staging")
    assert k8s.path.startswith("build/preview/staging/")
    (docker,) = findings_of(reports[1], "service_src")
    assert (docker.object, docker.path, docker.stack) == ("service_src/provisioner/Dockerfile",
                                                          "service_src/provisioner/Dockerfile", None)
