"""What the platform team relies on in the workflows, checked on the files and by running their scripts."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.ci.conftest import run_step_script

STACKS = ["dev", "staging", "prod"]
REUSABLE = "./.github/workflows/pulumi-stack.yml"
ALL_SECRETS = {
    "SECRET_PULUMI_ACCESS_TOKEN": "pul-token-123",
    "SECRET_PULUMI_BACKEND_URL": "",
    "SECRET_PULUMI_CONFIG_PASSPHRASE": "passphrase-456",
    "SECRET_KUBECONFIG": "apiVersion: v1\nkind: Config\n",
    "SECRET_VAULT_TOKEN": "hvs.vault-789",
    "SECRET_SALEOR_STAFF_PASSWORD": "saleor-pw-000",
    "SECRET_PROVISIONER_DATABASE_URL": "postgresql+psycopg://u:pg-pw-111@db/cmp",
    "SECRET_LANGFLOW_API_KEY": "langflow-222",
    "SECRET_OPENAI_API_KEY": "sk-openai-333",
}


def _stack_job(workflows):
    return workflows["pulumi-stack.yml"]["jobs"]["pulumi"]


def _secret_check(workflows) -> dict:
    return _stack_job(workflows)["steps"][0]


def _callers(workflows):
    for name, wf in workflows.items():
        for job_id, job in wf["jobs"].items():
            if job.get("uses") == REUSABLE:
                yield name, job_id, job


# --- the secret check ------------------------------------------------------------------------------------


def test_secret_check_is_the_first_step_and_only_job_with_an_environment(workflows):
    assert _secret_check(workflows)["name"] == "Require environment secrets"
    assert _stack_job(workflows)["environment"] == "${{ inputs.environment }}"
    for name, wf in workflows.items():
        for job_id, job in wf["jobs"].items():
            if name != "pulumi-stack.yml":
                assert "environment" not in job, f"{name}:{job_id} must deploy through pulumi-stack.yml"


def test_secret_check_names_every_missing_secret_in_one_line(workflows):
    step = _secret_check(workflows)
    env = {k: "" for k in ALL_SECRETS} | {"TARGET_ENVIRONMENT": "prod"}
    result = run_step_script(step["run"], env)
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert lines == [
        "::error::environment 'prod' is missing secrets: PULUMI_ACCESS_TOKEN or PULUMI_BACKEND_URL, "
        "PULUMI_CONFIG_PASSPHRASE, KUBECONFIG, VAULT_TOKEN, SALEOR_STAFF_PASSWORD, PROVISIONER_DATABASE_URL, "
        "LANGFLOW_API_KEY, OPENAI_API_KEY"
    ]


def test_secret_check_names_only_what_is_missing_and_never_prints_values(workflows):
    step = _secret_check(workflows)
    env = ALL_SECRETS | {"SECRET_VAULT_TOKEN": "", "TARGET_ENVIRONMENT": "staging"}
    result = run_step_script(step["run"], env)
    assert result.returncode == 1
    assert result.stdout.strip() == "::error::environment 'staging' is missing secrets: VAULT_TOKEN"
    for value in ALL_SECRETS.values():
        if value:
            assert value not in result.stdout + result.stderr


@pytest.mark.parametrize("backend", ["token", "url"])
def test_secret_check_passes_silently_with_either_backend(workflows, backend):
    env = dict(ALL_SECRETS, TARGET_ENVIRONMENT="dev")
    if backend == "url":
        env |= {"SECRET_PULUMI_ACCESS_TOKEN": "", "SECRET_PULUMI_BACKEND_URL": "s3://state-bucket"}
    result = run_step_script(_secret_check(workflows)["run"], env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_secret_check_env_maps_each_secret_it_checks(workflows):
    step = _secret_check(workflows)
    for var in ALL_SECRETS:
        assert step["env"][var] == "${{ secrets." + var.removeprefix("SECRET_") + " }}"


def test_secrets_reach_scripts_only_through_env_and_only_in_the_environment_job(workflows, tmp_path):
    for name, wf in workflows.items():
        for job_id, job in wf["jobs"].items():
            for step in job.get("steps", []):
                assert "secrets." not in step.get("run", ""), f"{name}:{job_id}: secret interpolated into a script"
            if name != "pulumi-stack.yml":
                assert "secrets." not in str(job), f"{name}:{job_id} reads secrets outside the environment job"
            if job.get("uses") == REUSABLE:
                assert job["secrets"] == "inherit"


# --- what each workflow does -----------------------------------------------------------------------------


def test_pull_requests_preview_every_stack_with_policy_comment_and_manifests(workflows):
    caller = workflows["test.yml"]["jobs"]["preview"]
    assert "pull_request" in workflows["test.yml"]["on"]
    assert caller["uses"] == "./.github/workflows/preview.yml"
    assert "github.event_name == 'pull_request'" in caller["if"]
    wf = workflows["preview.yml"]
    assert list(wf["on"]) == ["workflow_call"]
    offline = wf["jobs"]["offline-preview"]
    assert offline["strategy"]["matrix"]["stack"] == STACKS
    assert any("make preview" in s.get("run", "") for s in offline["steps"])
    upload = next(s for s in offline["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "build/preview/${{ matrix.stack }}"
    real = wf["jobs"]["pulumi-preview"]
    assert real["strategy"]["matrix"]["stack"] == STACKS
    assert real["with"]["command"] == "preview"
    assert real["with"]["comment-on-pr"] is True
    assert real["with"].get("policy-pack", True) is True
    stack_inputs = workflows["pulumi-stack.yml"]["on"]["workflow_call"]["inputs"]
    assert stack_inputs["policy-pack"]["default"] is True
    action = next(s for s in _stack_job(workflows)["steps"] if s.get("with", {}).get("command"))
    assert action["uses"].startswith("pulumi/actions@")
    assert "'policy'" in action["with"]["policyPacks"]
    assert "comment-on-pr" not in action["with"]  # the workflow writes its own comment (test_preview_comment.py)


def test_dev_deploys_after_a_green_push_to_main_and_staging_prod_only_by_dispatch(workflows):
    wf = workflows["deploy.yml"]
    assert set(wf["on"]) == {"workflow_run", "workflow_dispatch"}
    assert wf["on"]["workflow_run"]["branches"] == ["main"]
    assert wf["on"]["workflow_dispatch"]["inputs"]["stack"]["options"] == ["staging", "prod"]
    dev = wf["jobs"]["up-dev"]
    assert "github.event.workflow_run.event == 'push'" in dev["if"]
    assert "github.event.workflow_run.head_repository.full_name == github.repository" in dev["if"]
    assert (dev["with"]["stack"], dev["with"]["environment"], dev["with"]["command"]) == ("dev", "dev", "up")
    promoted = wf["jobs"]["up-promoted"]
    assert promoted["if"] == "github.event_name == 'workflow_dispatch'"
    assert promoted["with"]["environment"] == promoted["with"]["stack"] == "${{ inputs.stack }}"


def test_every_stack_changing_run_holds_the_stack_concurrency_group(workflows):
    changing = [
        (name, job_id, job) for name, job_id, job in _callers(workflows) if job["with"]["command"] != "preview"
    ]
    assert len(changing) >= 3
    for name, job_id, job in changing:
        group = job["concurrency"]["group"]
        assert re.fullmatch(r"pulumi-(dev|\$\{\{ inputs\.stack \}\})", group), f"{name}:{job_id}: {group}"
        assert job["concurrency"]["cancel-in-progress"] is False
    for name, job_id, job in _callers(workflows):
        if job["with"]["command"] == "preview":  # a preview must never cancel a queued deployment
            assert not job["concurrency"]["group"].startswith("pulumi-"), f"{name}:{job_id}"


def test_drift_detection_refreshes_every_stack_and_fails_on_changes(workflows):
    wf = workflows["drift.yml"]
    assert wf["on"]["schedule"][0]["cron"]
    job = wf["jobs"]["drift"]
    assert job["strategy"]["matrix"]["stack"] == STACKS
    assert job["with"].items() >= {"command": "preview", "refresh": True, "expect-no-changes": True}.items()
    action = next(s for s in _stack_job(workflows)["steps"] if s.get("with", {}).get("command"))
    assert action["with"]["refresh"] == "${{ inputs.refresh }}"
    assert action["with"]["expect-no-changes"] == "${{ inputs.expect-no-changes }}"


# --- rollback's request check, run against a real git history ---------------------------------------------


@pytest.fixture
def history(tmp_path):
    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True, text=True).stdout

    git("init", "-q", "-b", "main")
    git("config", "user.email", "ci@example.com")
    git("config", "user.name", "ci")
    shas = {}
    for name in ("first", "second"):
        (tmp_path / name).write_text(name)
        git("add", name)
        git("commit", "-q", "-m", name)
        shas[name] = git("rev-parse", "HEAD").strip()
    git("checkout", "-q", "-b", "feature")
    (tmp_path / "side").write_text("side")
    git("add", "side")
    git("commit", "-q", "-m", "side")
    shas["side"] = git("rev-parse", "HEAD").strip()
    git("update-ref", "refs/remotes/origin/main", shas["second"])
    return tmp_path, shas


def _rollback_check(workflows, history, **inputs):
    repo, shas = history
    step = workflows["rollback.yml"]["jobs"]["validate"]["steps"][1]
    out = repo / "github_output"
    out.write_text("")
    env = {"STACK": "prod", "ACTION": "redeploy", "COMMIT": "", "CONFIRM": "", "GITHUB_OUTPUT": str(out),
           "GITHUB_SHA": shas["second"]} | inputs
    result = run_step_script(step["run"], env, cwd=repo)
    return result, out.read_text()


def test_rollback_redeploys_an_earlier_commit_of_main(workflows, history):
    _, shas = history
    result, output = _rollback_check(workflows, history, COMMIT=shas["first"][:10])
    assert result.returncode == 0, result.stdout
    assert output == f"ref={shas['first']}\n"
    job = workflows["rollback.yml"]["jobs"]["redeploy"]
    assert job["with"]["ref"] == "${{ needs.validate.outputs.ref }}"
    assert (job["if"], job["with"]["command"]) == ("inputs.action == 'redeploy'", "up")


@pytest.mark.parametrize(
    ("commit", "message"),
    [
        ("side", "is not on main"),
        ("0" * 40, "does not exist"),
        ("HEAD~1; rm -rf /", "is not a commit SHA"),
    ],
)
def test_rollback_refuses_commits_not_on_main(workflows, history, commit, message):
    _, shas = history
    result, output = _rollback_check(workflows, history, COMMIT=shas.get(commit, commit))
    assert result.returncode == 1
    assert len(result.stdout.strip().splitlines()) == 1
    assert message in result.stdout
    assert output == ""


def test_destroy_needs_the_typed_confirmation(workflows, history):
    _, shas = history
    result, output = _rollback_check(workflows, history, ACTION="destroy", CONFIRM="destroy dev")
    assert result.returncode == 1
    assert result.stdout.strip() == "::error::confirm must be exactly 'destroy prod' to destroy stack prod"
    assert output == ""
    result, output = _rollback_check(workflows, history, ACTION="destroy", CONFIRM="destroy prod")
    assert result.returncode == 0
    assert output == f"ref={shas['second']}\n"
    job = workflows["rollback.yml"]["jobs"]["destroy"]
    assert (job["if"], job["with"]["command"]) == ("inputs.action == 'destroy'", "destroy")
    assert job["needs"] == "validate"
