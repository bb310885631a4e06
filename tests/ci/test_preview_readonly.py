"""The `<stack>-preview` environments are read-only: nothing but `pulumi preview` runs with their credentials.

Checked three ways: the guard step of pulumi-stack.yml is run with bash against real inputs; every caller that
names a `-preview` environment asks for `preview`; and no other step of the Pulumi job runs a Pulumi command
that writes (`up`, `destroy`, `refresh`, `import`, `state`, `stack rm`, `cancel`) where the guard cannot see it.
"""

from __future__ import annotations

import copy
import re

import pytest

from tests.ci.conftest import run_step_script

REUSABLE = "./.github/workflows/pulumi-stack.yml"
# What a step script may ask of the pulumi CLI: log in to the backend, write the local stack file's config.
READ_ONLY_CLI = {"login", "config"}
# `pulumi <sub>` where a command starts: a line, or after ; & | ( then do else.
PULUMI_CALL = re.compile(r"(?:^|[;&|(]|\b(?:then|do|else))\s*pulumi\s+([a-z-]+)", re.MULTILINE)


def _job(workflows) -> dict:
    return workflows["pulumi-stack.yml"]["jobs"]["pulumi"]


def _guard(workflows) -> dict:
    (step,) = [s for s in _job(workflows)["steps"] if s.get("name") == "Check the operation"]
    return step


def preview_environment_problems(workflows: dict) -> list[str]:
    """Every way a `-preview` environment could get a command other than `pulumi preview`."""
    problems = []
    for name, wf in workflows.items():
        for job_id, job in wf["jobs"].items():
            with_ = job.get("with") or {}
            if job.get("uses") == REUSABLE and str(with_.get("environment", "")).endswith("-preview") \
                    and with_.get("command") != "preview":
                problems.append(f"{name}:{job_id} runs {with_.get('command')!r} with {with_['environment']}")
    steps = _job(workflows)["steps"]
    guard = next((i for i, s in enumerate(steps) if s.get("name") == "Check the operation"), None)
    for i, step in enumerate(steps):
        uses = str(step.get("uses", ""))
        if uses.startswith("pulumi/actions@") and "command" in (step.get("with") or {}):
            if step["with"]["command"] != "${{ inputs.command }}":
                problems.append(f"step {step.get('name', uses)} runs {step['with']['command']!r}, not the guarded "
                                "inputs.command")
            if guard is None or i < guard:
                problems.append(f"step {step.get('name', uses)} runs before the guard")
        for sub in PULUMI_CALL.findall(step.get("run", "")):
            if sub not in READ_ONLY_CLI:
                problems.append(f"step {step.get('name')!r} runs `pulumi {sub}` outside the guarded command")
    return problems


def test_no_preview_environment_can_run_a_writing_command(workflows):
    assert preview_environment_problems(workflows) == []
    callers = [job for wf in workflows.values() for job in wf["jobs"].values() if job.get("uses") == REUSABLE
               and str((job.get("with") or {}).get("environment", "")).endswith("-preview")]
    assert len(callers) >= 2, "the previews and the drift checks use the -preview environments"


@pytest.mark.parametrize("command", ["up", "destroy"])
@pytest.mark.parametrize("environment", ["dev-preview", "staging-preview", "prod-preview"])
def test_the_guard_refuses_a_writing_command_with_a_preview_environment(workflows, command, environment):
    result = run_step_script(_guard(workflows)["run"],
                             {"COMMAND": command, "STACK": "dev", "TARGET_ENVIRONMENT": environment})
    assert result.returncode == 1
    assert result.stdout.strip() == (f"::error::environment '{environment}' is read-only: it runs pulumi "
                                     f"preview only, not '{command}'")


@pytest.mark.parametrize(("command", "environment"), [
    ("preview", "prod-preview"), ("preview", "dev"), ("up", "dev"), ("up", "prod"), ("destroy", "staging")])
def test_the_guard_lets_previews_and_the_deploy_environments_through(workflows, command, environment):
    result = run_step_script(_guard(workflows)["run"],
                             {"COMMAND": command, "STACK": "dev", "TARGET_ENVIRONMENT": environment})
    assert result.returncode == 0 and result.stdout == ""


def test_the_guard_reads_the_environment_the_job_runs_in(workflows):
    assert _guard(workflows)["env"]["TARGET_ENVIRONMENT"] == "${{ inputs.environment }}"
    assert _job(workflows)["environment"] == "${{ inputs.environment }}"


def _with(workflows, name: str, job_id: str, **changes) -> dict:
    broken = copy.deepcopy(workflows)
    broken[name]["jobs"][job_id]["with"].update(changes)
    return broken


@pytest.mark.parametrize(("name", "job_id", "changes", "problem"), [
    ("drift.yml", "drift", {"command": "up"}, "drift.yml:drift runs 'up'"),
    ("preview.yml", "pulumi-preview", {"command": "destroy"}, "preview.yml:pulumi-preview runs 'destroy'"),
])
def test_the_checker_rejects_a_writing_caller(workflows, name, job_id, changes, problem):
    problems = preview_environment_problems(_with(workflows, name, job_id, **changes))
    assert any(p.startswith(problem) for p in problems), problems


@pytest.mark.parametrize("script", ["pulumi up --yes --stack dev", "pulumi refresh --yes", "pulumi state delete x",
                                    "pulumi import kubernetes:core/v1:Secret s cmp/s", "pulumi destroy -y"])
def test_the_checker_rejects_a_step_that_writes_beside_the_guard(workflows, script):
    broken = copy.deepcopy(workflows)
    _job(broken)["steps"].append({"name": "sneaky", "run": f"echo hi\n{script}\n"})
    sub = script.split()[1]
    assert f"step 'sneaky' runs `pulumi {sub}` outside the guarded command" in preview_environment_problems(broken)


def test_the_checker_rejects_a_pulumi_action_with_its_own_command(workflows):
    broken = copy.deepcopy(workflows)
    _job(broken)["steps"].insert(0, {"name": "early", "uses": "pulumi/actions@v7", "with": {"command": "up"}})
    problems = preview_environment_problems(broken)
    assert "step early runs 'up', not the guarded inputs.command" in problems
    assert "step early runs before the guard" in problems
