"""No deploy job can start without a green test result for the same commit.

A deploy job is any call of pulumi-stack.yml whose command is not a literal `preview` or `destroy`. It is gated
when either
- it needs (directly, or through jobs that themselves only run on success) a call of test.yml whose `ref` is
  the deploy's own `ref`, and no job on that path overrides the success requirement in its `if`
  (always(), failure(), cancelled()) without requiring that job's result to be success; or
- its workflow runs on `workflow_run` of the `test` workflow (completed), its `if` requires the run's
  conclusion to be success and this event, and it deploys exactly that run's commit (head_sha).
The checker is run on the real workflows and on broken copies of them, which it must reject.
"""

from __future__ import annotations

import copy
import re

import pytest

TEST_CALL = "./.github/workflows/test.yml"
STACK_CALL = "./.github/workflows/pulumi-stack.yml"
STATUS_FUNCTIONS = re.compile(r"\b(always|failure|cancelled)\(\)")
WORKFLOW_RUN_SHA = "${{ github.event.workflow_run.head_sha }}"


def _conjuncts(condition: object) -> list[str] | None:
    """The `&&` parts of an `if`, or None when it has a top-level `||` (then no part is guaranteed)."""
    text = str(condition or "").strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    if "||" in text:
        return None
    return [part.strip() for part in text.split("&&") if part.strip()]


def _needs(job: dict) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def _requires_success_of(job: dict, needed: str) -> bool:
    """True when `job` runs only if `needed` succeeded (the implicit success(), or an explicit result check)."""
    parts = _conjuncts(job.get("if"))
    if parts is None:
        return False
    if any(STATUS_FUNCTIONS.search(part) for part in parts):
        return f"needs.{needed}.result == 'success'" in parts
    return True


def _gated_by_tests(jobs: dict, job_id: str, ref: object, seen: frozenset = frozenset()) -> bool:
    job = jobs[job_id]
    for needed in _needs(job):
        if needed in seen or needed not in jobs or not _requires_success_of(job, needed):
            continue
        dep = jobs[needed]
        if dep.get("uses") == TEST_CALL and dep.get("with", {}).get("ref") == ref:
            return True
        if _gated_by_tests(jobs, needed, ref, seen | {job_id}):
            return True
    return False


def _gated_by_workflow_run(workflow: dict, job: dict, test_name: str) -> bool:
    run = workflow["on"].get("workflow_run") if isinstance(workflow["on"], dict) else None
    if not run or run.get("workflows") != [test_name] or run.get("types") != ["completed"]:
        return False
    parts = _conjuncts(job.get("if")) or []
    return (
        "github.event.workflow_run.conclusion == 'success'" in parts
        and (set(workflow["on"]) == {"workflow_run"} or "github.event_name == 'workflow_run'" in parts)
        and job.get("with", {}).get("ref") == WORKFLOW_RUN_SHA
    )


def deploy_jobs(workflows: dict):
    for name, workflow in workflows.items():
        for job_id, job in workflow["jobs"].items():
            if job.get("uses") == STACK_CALL and job.get("with", {}).get("command") not in ("preview", "destroy"):
                yield name, job_id, job


def ungated(workflows: dict) -> list[str]:
    """Every deploy job that could start without a green test of the commit it deploys."""
    test_name = workflows["test.yml"]["name"]
    problems = []
    for name, job_id, job in deploy_jobs(workflows):
        ref = job.get("with", {}).get("ref")
        if not ref:
            problems.append(f"{name}:{job_id} deploys whatever commit triggered it (no ref)")
        elif not (_gated_by_tests(workflows[name]["jobs"], job_id, ref)
                  or _gated_by_workflow_run(workflows[name], job, test_name)):
            problems.append(f"{name}:{job_id} can start without a green test of {ref}")
    return problems


# --- the real workflows ------------------------------------------------------------------------------------


def test_every_deploy_job_waits_for_a_green_test_of_its_commit(workflows):
    found = {(name, job_id) for name, job_id, _ in deploy_jobs(workflows)}
    assert found == {("deploy.yml", "up-dev"), ("deploy.yml", "up-promoted"), ("rollback.yml", "redeploy")}
    assert ungated(workflows) == []


def test_the_test_workflow_tests_the_commit_it_is_given_with_the_readme_command(workflows):
    wf = workflows["test.yml"]
    assert wf["on"]["workflow_call"]["inputs"]["ref"]["type"] == "string"
    steps = wf["jobs"]["test"]["steps"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["ref"] == "${{ inputs.ref }}"
    assert any(s.get("run", "").startswith("make test") for s in steps)
    stack_checkout = next(s for s in workflows["pulumi-stack.yml"]["jobs"]["pulumi"]["steps"]
                          if s.get("uses", "").startswith("actions/checkout@"))
    assert stack_checkout["with"]["ref"] == "${{ inputs.ref }}"


def test_dev_deploys_only_after_a_push_run_of_this_repository(workflows):
    parts = _conjuncts(workflows["deploy.yml"]["jobs"]["up-dev"]["if"])
    assert "github.event.workflow_run.event == 'push'" in parts
    assert "github.event.workflow_run.head_repository.full_name == github.repository" in parts
    assert workflows["deploy.yml"]["on"]["workflow_run"]["workflows"] == [workflows["test.yml"]["name"]]


def test_the_stack_workflow_cannot_be_started_on_its_own(workflows):
    assert list(workflows["pulumi-stack.yml"]["on"]) == ["workflow_call"]


# --- broken copies the checker must reject -------------------------------------------------------------------


def _broken(workflows, name: str, job_id: str, **changes) -> dict:
    broken = copy.deepcopy(workflows)
    job = broken[name]["jobs"][job_id]
    for key, value in changes.items():
        if value is None:
            job.pop(key, None)
        elif key == "with":
            job["with"] = {**job["with"], **value}
        else:
            job[key] = value
    return broken


@pytest.mark.parametrize(("name", "job_id", "changes", "problem"), [
    pytest.param("deploy.yml", "up-promoted", {"needs": ["resolve"]}, "up-promoted can start",
                 id="promoted-without-tests"),
    pytest.param("deploy.yml", "up-promoted", {"if": "always() && github.event_name == 'workflow_dispatch'"},
                 "up-promoted can start", id="promoted-runs-always"),
    pytest.param("deploy.yml", "up-promoted", {"if": "github.event_name == 'workflow_dispatch' || true"},
                 "up-promoted can start", id="promoted-or-condition"),
    pytest.param("deploy.yml", "tests", {"with": {"ref": "main"}}, "up-promoted can start",
                 id="tests-of-another-ref"),
    pytest.param("deploy.yml", "up-promoted", {"with": {"ref": "main"}}, "up-promoted can start",
                 id="promotes-another-ref"),
    pytest.param("deploy.yml", "up-dev",
                 {"if": "github.event_name == 'workflow_run' && github.event.workflow_run.event == 'push'"},
                 "up-dev can start", id="dev-ignores-conclusion"),
    pytest.param("deploy.yml", "up-dev", {"with": {"ref": "${{ github.sha }}"}}, "up-dev can start",
                 id="dev-deploys-the-default-branch-head"),
    pytest.param("deploy.yml", "up-dev", {"with": {"ref": ""}}, "up-dev deploys whatever", id="dev-without-ref"),
    pytest.param("rollback.yml", "redeploy", {"needs": "validate"}, "redeploy can start",
                 id="rollback-without-tests"),
    pytest.param("rollback.yml", "redeploy",
                 {"if": "!cancelled() && inputs.action == 'redeploy'"}, "redeploy can start",
                 id="rollback-after-failed-tests"),
])
def test_the_checker_rejects_a_deploy_that_skips_the_tests(workflows, name, job_id, changes, problem):
    problems = ungated(_broken(workflows, name, job_id, **changes))
    assert any(problem in p for p in problems), problems


def test_the_checker_accepts_an_explicit_success_check_after_a_status_function(workflows):
    fixed = _broken(workflows, "rollback.yml", "redeploy",
                    **{"if": "!cancelled() && needs.tests.result == 'success' && inputs.action == 'redeploy'"})
    fixed = _broken(fixed, "rollback.yml", "redeploy", needs=["tests"])
    assert ungated(fixed) == []


def test_a_new_deploy_job_without_tests_is_caught(workflows):
    broken = copy.deepcopy(workflows)
    broken["drift.yml"]["jobs"]["sneaky"] = {
        "uses": STACK_CALL, "with": {"stack": "prod", "environment": "prod", "command": "up", "ref": "main"},
    }
    assert ungated(broken) == ["drift.yml:sneaky can start without a green test of main"]
