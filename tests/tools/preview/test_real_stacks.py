"""The offline preview of the real program and its dev/staging/prod stack files."""

import json
import re
import shutil
import subprocess

import pytest
import yaml

from policy.policies import ROOT_WAIVERS, WAIVER_ANNOTATION
from tools.preview.__main__ import main
from tools.preview.runner import PROJECT_ROOT

STACKS = ["dev", "staging", "prod"]


# The committed stack files hold no ciphertext (a made-up one would not decrypt under a real backend), so
# the preview runs on copies that carry one, as `pulumi config set --secret` leaves them.
CIPHERTEXTS = {stack: f"v1:ZmFrZS1jaXBoZXJ0ZXh0LWZvci1{stack}" for stack in STACKS}


@pytest.fixture(scope="module")
def preview(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    for path in PROJECT_ROOT.glob("Pulumi*.yaml"):
        shutil.copy(path, root / path.name)
    for stack, ciphertext in CIPHERTEXTS.items():
        path = root / f"Pulumi.{stack}.yaml"
        text = path.read_text().replace(
            "config:\n", f"config:\n  cmp-platform:saleorStaffPassword:\n    secure: {ciphertext}\n", 1)
        path.write_text(text)
    out = tmp_path_factory.mktemp("preview")
    code = main(["--all", "--out", str(out)], root=root)
    return code, out, root


def test_every_stack_previews_clean(preview):
    code, out, _ = preview
    assert code == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_kustomization_lists_every_manifest(preview, stack):
    manifests = preview[1] / stack / "manifests"
    on_disk = {str(p.relative_to(manifests)) for p in manifests.rglob("*.yaml")} - {"kustomization.yaml"}
    listed = yaml.safe_load((manifests / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(on_disk) and len(listed) == len(set(listed))
    for rel in on_disk:
        obj = yaml.safe_load((manifests / rel).read_text())
        meta = obj["metadata"]
        expected = (f"{obj['apiVersion'].replace('/', '_')}-{obj['kind'].lower()}-"
                    f"{meta.get('namespace') or 'default'}-{meta['name']}.yaml")
        assert rel.split("/", 1)[1] == expected


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_material_in_any_file(preview, stack):
    ciphertexts = set(CIPHERTEXTS.values())
    for path in (preview[1] / stack).rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not any(c in text for c in ciphertexts), path
            assert "kind: Secret\n" not in text, path


def test_ragflow_exception_is_on_the_waiver_list(preview):
    # staging: prod's Ragflow image digest is known only at deploy, so its Deployment is not exported.
    docs = [yaml.safe_load(p.read_text()) for p in (preview[1] / "staging" / "manifests").rglob("*.yaml")]
    rag = [d for d in docs if d.get("kind") == "Deployment"
           and any("ragflow" in c.get("image", "") for c in d["spec"]["template"]["spec"]["containers"])]
    assert rag, "staging should deploy Ragflow"
    assert rag[0]["metadata"]["annotations"][WAIVER_ANNOTATION] in ROOT_WAIVERS


def test_second_run_reports_no_changes_and_writes_the_same_bytes(preview, capsys):
    folder = preview[1] / "dev"
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["--stack", "dev", "--out", str(preview[1])], root=preview[2]) == 0
    summary = capsys.readouterr().out.splitlines()[-1]
    assert re.fullmatch(r"dev: \d+ resources \(\+0 ~0 -0\), \d+ manifests, 0 policy violations", summary)
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


@pytest.fixture
def project_copy(tmp_path):
    for path in PROJECT_ROOT.glob("Pulumi*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def edit(root, stack, old, new):
    path = root / f"Pulumi.{stack}.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_bad_stack_value_is_one_line_and_nothing_written(project_copy, capsys):
    edit(project_copy, "staging", "cmp-platform:controlPlaneUrl: ", "cmp-platform:controlPlaneUrl: ftp:/")
    code = main(["--stack", "staging", "--out", str(project_copy / "out")], root=project_copy)
    _, err = capsys.readouterr()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: staging: config error: cmp-platform:controlPlaneUrl = 'ftp:/")
    assert not (project_copy / "out" / "staging").exists()


def test_ragflow_tag_without_the_node_arch_is_one_line(project_copy, capsys):
    text = (project_copy / "Pulumi.dev.yaml").read_text()
    text = re.sub(r"tag: \S+", "tag: dev-slim-arm64", text, count=1)
    text = re.sub(r"platforms: \[[^\]]*\]", "platforms: [linux/arm64]", text, count=1)
    (project_copy / "Pulumi.dev.yaml").write_text(text)
    code = main(["--stack", "dev", "--out", str(project_copy / "out")], root=project_copy)
    _, err = capsys.readouterr()
    assert code == 2 and len(err.splitlines()) == 1
    assert "dev-slim-arm64" in err and "linux/arm64" in err and "amd64" in err
    assert not (project_copy / "out" / "dev").exists()


# --- config as the Pulumi CLI writes and reads it ---------------------------------------------------------------


def append_config(root, stack, text):
    path = root / f"Pulumi.{stack}.yaml"
    path.write_text(path.read_text() + text)


def preview_one(root, stack, capsys):
    code = main(["--stack", stack, "--out", str(root / "out")], root=root)
    out, err = capsys.readouterr()
    return code, out, err


def test_provider_config_from_the_readme_passes_through(project_copy, capsys):
    # README "Running it for real" and "Moving off the Argo CD apps", as `pulumi config set` writes them
    append_config(project_copy, "dev", "  vault:address: https://vault.example:8200\n"
                                       "  vault:token:\n    secure: v1:AAABAHZhdWx0LXRva2Vu\n"
                                       "  kubernetes:upsertExistingObjects: \"true\"\n"
                                       "  aws:region: eu-west-1\n")  # a namespace the program does not know
    code, _, err = preview_one(project_copy, "dev", capsys)
    assert code == 0, err
    assert (project_copy / "out" / "dev" / "manifests" / "kustomization.yaml").exists()


@pytest.mark.parametrize(("line", "message"), [
    ("  vault:address: vault.example:8200\n",
     "error: dev: config error: vault:address = 'vault.example:8200': must be an http:// or https:// URL "
     "(Pulumi.dev.yaml)"),
    ("  kubernetes:upsertExistingObjects: yes\n",
     "error: dev: config error: kubernetes:upsertExistingObjects = 'yes': must be true or false (Pulumi.dev.yaml)"),
    ("  vault:token: s.hunter2\n",
     "error: dev: config error: vault:token = [secret]: is a secret: set it with "
     "`pulumi config set --secret vault:token <value>`, never as plain text (Pulumi.dev.yaml)"),
    ("  cmp-platform:saleorStaffPassword: hunter2\n",
     "error: dev: config error: cmp-platform:saleorStaffPassword = [secret]: is a secret: set it with "
     "`pulumi config set --secret`, never as plain text (Pulumi.dev.yaml)"),
])
def test_bad_or_plain_text_provider_and_secret_values_are_one_line(project_copy, capsys, line, message):
    append_config(project_copy, "dev", line)
    code, out, err = preview_one(project_copy, "dev", capsys)
    assert code == 2 and err.splitlines() == [message]
    assert "hunter2" not in out + err
    assert not (project_copy / "out" / "dev").exists()


def test_plain_scalars_keep_their_text(project_copy, capsys):
    # unquoted 1.30 is the text "1.30" to the CLI; a date inside a structured value stays its text
    append_config(project_copy, "dev", "  cmp-platform:kubernetesVersion: 1.30\n")
    edit(project_copy, "dev", "    address: http://vault.vault.svc.cluster.local:8200\n",
         "    address: http://vault.vault.svc.cluster.local:8200\n"
         "    rotations: {cmp/connector.service_jwt_secret: 2026-11-01}\n")
    code, _, err = preview_one(project_copy, "dev", capsys)
    assert code == 0, err
    rows = json.loads((project_copy / "out" / "dev" / "resources.json").read_text())
    seeds = [r for r in rows if r["name"] == "vault-seed-cmp-connector"]
    assert "2026-11-01" in json.dumps(seeds[0]["inputs"])


def test_a_number_where_text_is_expected_is_one_line(project_copy, capsys):
    append_config(project_copy, "dev", "  cmp-platform:kubernetesVersion: 1.3\n")
    code, _, err = preview_one(project_copy, "dev", capsys)
    assert code == 2
    assert err.splitlines() == ["error: dev: config error: cmp-platform:kubernetesVersion = '1.3': must be a "
                                "Kubernetes minor version 1.25 to 1.37, like 1.33 (Pulumi.dev.yaml)"]


def test_values_as_pulumi_config_set_writes_them_are_accepted(project_copy, capsys):
    """`pulumi config set --path 'cmp-platform:ragflow.resources.limits.cpu' 4` writes the integer 4, and
    `--path ...rotations[...] 2027` an integer trigger: both are what Kubernetes and the seeds take."""
    edit(project_copy, "dev", "      limits: {cpu: \"2\", memory: 6Gi}", "      limits: {cpu: 4, memory: 6442450944}")
    edit(project_copy, "dev", "    address: http://vault.vault.svc.cluster.local:8200\n",
         "    address: http://vault.vault.svc.cluster.local:8200\n"
         "    rotations: {cmp/connector.service_jwt_secret: 2027}\n")
    code, _, err = preview_one(project_copy, "dev", capsys)
    assert code == 0, err
    ragflow = yaml.safe_load((project_copy / "out" / "dev" / "manifests" / "1-manifest" /
                              "apps_v1-deployment-rag-ragflow.yaml").read_text())
    limits = ragflow["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "4", "memory": "6442450944"}


def test_every_config_error_is_reported_together_naming_its_file(project_copy, capsys):
    edit(project_copy, "dev", "cmp-platform:controlPlaneUrl: ", "cmp-platform:controlPlaneUrl: ftp:/")
    edit(project_copy, "dev", "      limits: {cpu: \"2\", memory: 6Gi}", "      limits: {cpu: true, memory: 6Gi}")
    append_config(project_copy, "dev", "  debug: true\n  vault:address: vault.example\n")
    code, out, err = preview_one(project_copy, "dev", capsys)
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "error: dev: config error: debug = 'true': a stack file key needs a namespace, as Pulumi reads it: "
        "`cmp-platform:debug` for this project's, `<provider>:debug` for a provider's (Pulumi.dev.yaml)",
        "error: dev: config error: vault:address = 'vault.example': must be an http:// or https:// URL "
        "(Pulumi.dev.yaml)",
        "error: dev: config error: cmp-platform:controlPlaneUrl = 'ftp:/http://cmp-control-plane.cmp.svc.cluster.local"
        ":8000': must be an http:// or https:// URL (Pulumi.dev.yaml)",
        "error: dev: config error: cmp-platform:ragflow.resources.limits.cpu = true: Input should be a valid string "
        "(Pulumi.dev.yaml)"]


def test_a_stack_key_set_with_secret_is_refused_and_its_placeholders_are_not_judged(project_copy, capsys):
    """`pulumi config set --path --secret 'cmp-platform:vault.address' ...` writes a `secure:` leaf. The key is
    rendered into plain objects (the gateway's ConfigMap), so it is refused by name, as `pulumi preview` refuses it;
    its placeholder meets no other rule (no VAULT_ADDR error), and a bad value elsewhere is still reported."""
    edit(project_copy, "dev", "    address: http://vault.vault.svc.cluster.local:8200",
         "    address: {secure: v1:AAAABBBB}")
    edit(project_copy, "dev", "cmp-platform:controlPlaneUrl: ", "cmp-platform:controlPlaneUrl: ftp:/")
    code, out, err = preview_one(project_copy, "dev", capsys)
    assert code == 2 and out == ""
    refused, other = err.splitlines()
    assert refused.startswith("error: dev: config error: cmp-platform:vault = [secret]: is set with --secret, ")
    assert other == ("error: dev: config error: cmp-platform:controlPlaneUrl = 'ftp:/http://cmp-control-plane.cmp.svc."
                     "cluster.local:8000': must be an http:// or https:// URL (Pulumi.dev.yaml)")
    assert refused.endswith("(Pulumi.dev.yaml)") and "v1:AAAABBBB" not in err and "VAULT_ADDR" not in err


def test_a_misspelled_namespace_is_a_warning_naming_the_closest_known_one(project_copy, capsys):
    append_config(project_copy, "dev", "  cmp-platfrom:gatewayBilling:\n    retries: 2\n  vualt:address: x\n")
    code, out, err = preview_one(project_copy, "dev", capsys)
    assert code == 0, err
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: dev: config warning: Pulumi.dev.yaml: cmp-platfrom:gatewayBilling: namespace 'cmp-platfrom' is "
        "neither the project's nor a provider's this program uses, so nothing reads it; did you mean 'cmp-platform'?",
        "warning: dev: config warning: Pulumi.dev.yaml: vualt:address: namespace 'vualt' is neither the project's "
        "nor a provider's this program uses, so nothing reads it; did you mean 'vault'?"]


# --- exports that never pretend ----------------------------------------------------------------------------------


def test_a_built_image_is_not_exported_as_deployable(project_copy, capsys):
    # images.build: true -> the image ref and digest exist only after `pulumi up` builds and pushes
    append_config(project_copy, "dev", "  cmp-platform:images:\n    build: true\n"
                                       "    registry: registry.example:5000/cmp\n    tag: abc123\n")
    code, out, err = preview_one(project_copy, "dev", capsys)
    assert code == 0, err
    folder = project_copy / "out" / "dev"
    manifests = folder / "manifests"
    # nothing under manifests/ carries an unknown value, and the kustomization lists only what is there
    assert not [p for p in manifests.rglob("*.yaml") if "[unknown]" in p.read_text()]
    listed = yaml.safe_load((manifests / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(str(p.relative_to(manifests)) for p in manifests.rglob("*.yaml")
                                    if p.name != "kustomization.yaml")
    held = sorted(p.name for p in (folder / "not-deployable").rglob("*.yaml"))
    assert held == ["apps_v1-deployment-cmp-cmp-connector.yaml", "apps_v1-deployment-cmp-cmp-provisioner.yaml"]
    for name in held:
        obj = yaml.safe_load(next((folder / "not-deployable").rglob(name)).read_text())
        assert obj["metadata"]["annotations"]["cmp.platform/not-deployable"] == (
            "unknown until pulumi up: spec.template.spec.containers[0].image")
        assert "image" not in obj["spec"]["template"]["spec"]["containers"][0]
    # the report says so, once per object, and the summary counts them
    lines = out.splitlines()
    assert sum(line.startswith("dev: not deployable, left out of the GitOps export: Deployment cmp/cmp-")
               for line in lines) == 2
    assert re.fullmatch(r"dev: \d+ resources \(\+\d+ ~0 -0\), \d+ manifests \(2 not deployable\), "
                        r"0 policy violations", lines[-1])
    # an image the preview cannot see is not a policy violation (CrossGuard does not run such a check in a
    # preview either); the report names the checks not run
    assert "policy: dev: [images-pinned] Deployment cmp/cmp-connector: not run in a preview" in out


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_export_with_built_images_still_builds_with_kustomize(project_copy, capsys):
    append_config(project_copy, "dev", "  cmp-platform:images:\n    build: true\n"
                                       "    registry: registry.example:5000/cmp\n    tag: abc123\n")
    assert preview_one(project_copy, "dev", capsys)[0] == 0
    proc = subprocess.run(["kubectl", "kustomize", str(project_copy / "out" / "dev" / "manifests")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(proc.stdout)]
    assert "ExternalSecret" in kinds and "[unknown]" not in proc.stdout


def test_esc_environments_are_named_as_not_read(project_copy, capsys):
    path = project_copy / "Pulumi.dev.yaml"
    path.write_text("environment:\n  - cmp/dev\n" + path.read_text())
    code, out, err = preview_one(project_copy, "dev", capsys)
    assert code == 0, err
    assert out.splitlines()[0] == ("dev: Pulumi.dev.yaml imports Pulumi ESC environments (environment:), which the "
                                   "offline preview cannot read: their config values are not in this preview")
