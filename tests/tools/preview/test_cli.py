"""The preview CLI on a small project of our own: files, kustomization, secrets, errors, the change table."""

import json
import os

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from tests.support.cli import assert_one_line_usage_error
from tests.tools.preview import fake_project as fp
from tools.preview.__main__ import main


@pytest.fixture
def root(tmp_path):
    return fp.write_project(tmp_path / "proj", {"dev": fp.STACK, "prod": fp.STACK.replace(
        "app:1.0", "app:2.0")})


def run(root, *args, program=None, capsys=None):
    code = main([*args, "--out", str(root / "out")], root=root, program=program or fp.program(),
                check_config=fp.check_config, secret_keys=fp.secret_keys)
    out, err = capsys.readouterr()
    return code, out, err


def all_files(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_writes_manifests_kustomization_and_resources(root, capsys):
    code, out, err = run(root, "--stack", "dev", capsys=capsys)
    assert (code, err) == (0, "")
    manifests = root / "out" / "dev" / "manifests"
    files = {str(p.relative_to(manifests)) for p in all_files(manifests)} - {"kustomization.yaml"}
    assert files == {
        "1-manifest/apps_v1-deployment-cmp-app.yaml",
        "1-manifest/networking.k8s.io_v1-networkpolicy-cmp-app.yaml",
        "1-manifest/v1-configmap-cmp-app-config.yaml",
        "1-manifest/external-secrets.io_v1-externalsecret-cmp-app-secrets.yaml",
        "patches/apps_v1-deployment-cmp-cmp-gateway.yaml",
    }
    kustomization = yaml.safe_load((manifests / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(files)
    deployment = yaml.safe_load((manifests / "1-manifest/apps_v1-deployment-cmp-app.yaml").read_text())
    assert list(deployment)[:3] == ["apiVersion", "kind", "metadata"]
    assert deployment["spec"]["replicas"] == 2 and type(deployment["spec"]["replicas"]) is int
    port = deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    assert type(port) is int
    config_map = yaml.safe_load((manifests / "1-manifest/v1-configmap-cmp-app-config.yaml").read_text())
    assert config_map["data"]["PORT"] == "8000"  # a string that looks like a number stays a string
    patch = yaml.safe_load((manifests / "patches/apps_v1-deployment-cmp-cmp-gateway.yaml").read_text())
    assert patch["kind"] == "Deployment"
    assert patch["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "ServerSideApply=true"
    rows = json.loads((root / "out" / "dev" / "resources.json").read_text())
    assert {r["type"] for r in rows} >= {"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:DeploymentPatch"}
    assert all(set(r) == {"urn", "type", "name", "parent", "inputs"} for r in rows)
    assert "dev: 5 resources (+5 ~0 -0), 5 manifests, 0 policy violations" in out


def test_secrets_never_written_nor_printed(root, capsys):
    code, out, err = run(root, "--all", capsys=capsys)
    assert code == 0
    for path in all_files(root / "out"):
        text = path.read_text()
        assert fp.SECRET_LITERAL not in text and fp.CIPHERTEXT not in text, path
    assert fp.SECRET_LITERAL not in out + err
    rows = json.loads((root / "out" / "dev" / "resources.json").read_text())
    data = next(r for r in rows if r["name"] == "app-config")["inputs"]["data"]
    assert data == {"PORT": "8000", "TOKEN": "[secret]", "API": "[secret]"}
    assert json.loads((root / "out" / "dev" / "outputs.json").read_text())["secretOut"] == "[secret]"


def test_all_runs_every_stack(root, capsys):
    code, out, _ = run(root, "--all", capsys=capsys)
    assert code == 0
    assert sorted(p.name for p in (root / "out").iterdir()) == ["dev", "prod"]
    assert "dev: 5 resources" in out and "prod: 5 resources" in out
    prod = yaml.safe_load((root / "out/prod/manifests/1-manifest/apps_v1-deployment-cmp-app.yaml").read_text())
    assert prod["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/app:2.0"


def test_config_error_is_one_line_and_writes_nothing(root, capsys):
    (root / "Pulumi.dev.yaml").write_text(fp.STACK.replace("registry.local/app:1.0", "registry.local/app"))
    code, out, err = run(root, "--stack", "dev", capsys=capsys)
    assert code == 2 and out == ""
    assert err.splitlines() == ["error: dev: config error: cmp-platform:image = 'registry.local/app': "
                                "must be an image reference with a tag"]
    assert not (root / "out" / "dev").exists()


def test_config_error_keeps_the_previous_preview(root, capsys):
    assert run(root, "--stack", "dev", capsys=capsys)[0] == 0
    before = {p: p.read_text() for p in all_files(root / "out" / "dev")}
    (root / "Pulumi.dev.yaml").write_text("config: [not, a, mapping]\n")
    code, _, err = run(root, "--stack", "dev", capsys=capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "config must be a mapping" in err
    assert {p: p.read_text() for p in all_files(root / "out" / "dev")} == before


def test_unknown_stack_lists_the_known_ones(root, capsys):
    code, out, err = run(root, "--stack", "qa", capsys=capsys)
    assert code == 2 and out == ""
    assert err.splitlines() == ["error: unknown stack 'qa' (known: dev, prod)"]
    assert not (root / "out").exists()


def test_program_error_is_one_line(root, capsys):
    def boom():
        raise RuntimeError("preflight failed:\n  image has no amd64")

    code, out, err = run(root, "--stack", "dev", program=fp.program(boom), capsys=capsys)
    assert code == 2 and out == ""
    assert err.splitlines() == ["error: dev: RuntimeError: preflight failed: image has no amd64"]
    assert not (root / "out" / "dev").exists()


def test_invalid_manifest_names_object_path_and_rule(root, capsys):
    def bad_service():
        k8s.core.v1.Service("svc", metadata={"name": "svc", "namespace": "cmp"},
                            spec={"ports": [{"port": "http"}]})

    code, _, err = run(root, "--stack", "dev", program=fp.program(bad_service), capsys=capsys)
    assert code == 1
    assert ("error: dev: invalid manifest: v1 Service cmp/svc: spec.ports[0].port: 'http' is not of type "
            "'integer'" in err) and "(rule: type)" in err
    assert not (root / "out" / "dev").exists()


def test_policy_violation_exits_1_but_writes_files(root, capsys):
    def root_pod():
        fp.workload("rooty", "registry.local/rooty:latest", 1, "cmp")

    code, out, _ = run(root, "--stack", "dev", program=fp.program(root_pod), capsys=capsys)
    assert code == 1
    assert "policy: dev: [images-pinned] Deployment cmp/rooty: rooty: container 'rooty' image " \
           "'registry.local/rooty:latest': tag latest" in out
    assert "1 policy violations" in out and "files written to" in out
    assert (root / "out/dev/manifests/1-manifest/apps_v1-deployment-cmp-rooty.yaml").exists()


def table_ops(out):
    return {(line.split()[0], line.split()[2]) for line in out.splitlines()
            if line[:1] in "+~-" and len(line.split()) >= 3}


def test_change_table_against_previous_preview(root, capsys):
    _, out, _ = run(root, "--stack", "dev", capsys=capsys)
    assert table_ops(out) == {("+", n) for n in ("app", "app-config", "app-secrets", "gateway")}

    def extra():
        k8s.core.v1.ConfigMap("more", metadata={"name": "more", "namespace": "cmp"}, data={"a": "1"})

    (root / "Pulumi.dev.yaml").write_text(fp.STACK.replace("app:1.0", "app:1.1"))
    _, out, _ = run(root, "--stack", "dev", program=fp.program(extra), capsys=capsys)
    lines = [line for line in out.splitlines() if line.startswith(("+", "~", "-"))]
    assert ("~", "app") in table_ops(out) and ("+", "more") in table_ops(out)
    assert not any(line.startswith("-") for line in lines)
    assert "dev: 6 resources (+1 ~1 -0)" in out

    _, out, _ = run(root, "--stack", "dev", capsys=capsys)
    assert table_ops(out) == {("-", "more")}
    assert "dev: 5 resources (+0 ~0 -1)" in out


def test_stack_outputs_and_parents_in_resources_json(root, capsys):
    def component():
        class Box(pulumi.ComponentResource):
            def __init__(self):
                super().__init__("cmp:platform:Box", "box")
                k8s.core.v1.ServiceAccount("box-sa", metadata={"name": "box", "namespace": "cmp"},
                                           opts=pulumi.ResourceOptions(parent=self))
                self.register_outputs({})
        Box()

    run(root, "--stack", "dev", program=fp.program(component), capsys=capsys)
    rows = {r["name"]: r for r in json.loads((root / "out/dev/resources.json").read_text())}
    assert rows["box-sa"]["parent"] == rows["box"]["urn"]
    assert rows["box"]["type"] == "cmp:platform:Box"


@pytest.mark.parametrize("argv", [["--stack"], [], ["--all", "--bogus"], ["--stack", "dev", "--all"]])
def test_bad_arguments_are_one_line_with_the_usage(argv, capsys):
    """main() as `python -m tools.preview` runs it (tests/tools/test_cli.py runs the module itself)."""
    assert_one_line_usage_error(main, argv, capsys, "python -m tools.preview")


def test_an_unwritable_output_folder_is_one_line(root, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(["--stack", "dev", "--out", str(blocker / "out")], root=root, program=fp.program(),
                check_config=fp.check_config, secret_keys=fp.secret_keys)
    err = capsys.readouterr().err
    assert code == 2 and err.splitlines() == [f"error: dev: cannot write {blocker / 'out' / 'dev'}: Not a directory"]


def test_the_program_runs_offline_and_the_setting_is_undone_after(root, capsys, monkeypatch):
    from components.ragflow.oci_platforms import OFFLINE_ENV

    monkeypatch.delenv(OFFLINE_ENV, raising=False)
    seen = []

    def program():
        seen.append(os.environ.get(OFFLINE_ENV))
        fp.program()()

    code, _, err = run(root, "--stack", "dev", program=program, capsys=capsys)
    assert (code, err) == (0, "")
    assert seen == ["1"]
    assert OFFLINE_ENV not in os.environ
