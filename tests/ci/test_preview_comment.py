"""The pull request's preview comment says whether the pull request's tests passed.

The comment step runs here with a stand-in `gh` (GitHub's API is outside this project) that records each call
and the comment body it was given, and answers the comment listing with the ids in ``EXISTING``.
"""

from __future__ import annotations

import pytest

from tests.ci.conftest import run_step_script, stand_in

GH = """#!/usr/bin/env bash
# Stand-in for the GitHub CLI: logs each call; `-F body=@FILE` logs the file's text; listing prints EXISTING.
for arg in "$@"; do
  case "${arg}" in body=@*) cp "${arg#body=@}" "${BODY_COPY}" ;; esac
done
printf '%s\\n' "$*" >> "${CALLS}"
case "$*" in *"--paginate"*) [ -n "${EXISTING}" ] && printf '%s\\n' ${EXISTING} ;; esac
exit 0
"""


def _comment_step(workflows) -> dict:
    steps = workflows["pulumi-stack.yml"]["jobs"]["pulumi"]["steps"]
    return next(s for s in steps if s.get("name") == "Comment on the pull request")


@pytest.fixture
def run_comment(workflows, tmp_path):
    bin_dir = stand_in(tmp_path, "gh", GH)

    def run(tests_result: str, *, existing: str = "", output: str = "+ 3 to create\n", outcome: str = "success"):
        calls, body = tmp_path / "calls.txt", tmp_path / "body.md"
        calls.write_text("")
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(calls), "BODY_COPY": str(body), "EXISTING": existing,
            "RUNNER_TEMP": str(tmp_path), "GITHUB_SHA": "0123abc", "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "acme/cmp-platform", "GITHUB_RUN_ID": "42", "GH_TOKEN": "t", "STACK": "staging",
            "PR_NUMBER": "7", "TESTS_RESULT": tests_result, "PREVIEW_OUTCOME": outcome, "PREVIEW_OUTPUT": output,
        }
        result = run_step_script(_comment_step(workflows)["run"], env)
        assert result.returncode == 0, result.stderr
        return calls.read_text().splitlines(), body.read_text()

    return run


def test_the_comment_runs_only_for_a_pull_request_preview_and_whatever_the_tests_said(workflows):
    condition = _comment_step(workflows)["if"]
    assert "inputs.comment-on-pr" in condition and "github.event_name == 'pull_request'" in condition
    assert "!cancelled()" in condition  # also after a failed preview
    assert _comment_step(workflows)["env"]["TESTS_RESULT"] == "${{ inputs.tests-result }}"
    preview = workflows["preview.yml"]["jobs"]["pulumi-preview"]
    assert preview["with"]["tests-result"] == "${{ inputs.tests-result }}"
    assert workflows["test.yml"]["jobs"]["preview"]["with"]["tests-result"] == "${{ needs.test.result }}"
    assert workflows["test.yml"]["jobs"]["preview"]["needs"] == "test"


def test_passed_tests_are_stated_with_the_preview_report(run_comment):
    calls, body = run_comment("success")
    assert body.splitlines()[:2] == ["<!-- cmp-platform pulumi preview staging -->",
                                     "#### pulumi preview on staging: success"]
    assert "**Tests passed on 0123abc.**" in body
    assert "https://github.com/acme/cmp-platform/actions/runs/42" in body
    assert "+ 3 to create" in body
    assert calls[-1].startswith("api --method POST repos/acme/cmp-platform/issues/7/comments")


@pytest.mark.parametrize(("result", "says"), [
    ("failure", "**Tests FAILED on 0123abc: do not merge.**"),
    ("cancelled", "**Tests did not pass on 0123abc (cancelled).**"),
    ("", "**Tests did not pass on 0123abc (no result).**"),
])
def test_tests_that_did_not_pass_are_stated(run_comment, result, says):
    _, body = run_comment(result)
    assert says in body
    assert "Tests passed" not in body


def test_a_later_push_edits_the_stacks_comment_instead_of_adding_one(run_comment):
    calls, _ = run_comment("failure", existing="555 777")
    assert calls[-1].startswith("api --method PATCH repos/acme/cmp-platform/issues/comments/555 ")
    assert not any("--method POST" in call for call in calls)


def test_a_failed_preview_still_says_how_the_tests_went(run_comment):
    _, body = run_comment("success", output="", outcome="failure")
    assert "#### pulumi preview on staging: failure" in body
    assert "**Tests passed on 0123abc.**" in body
    assert "The preview printed no report; the run log says why." in body
