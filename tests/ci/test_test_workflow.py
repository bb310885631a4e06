"""The `test` workflow runs the README's test command the way the development machines do, and keeps its report.

Also: `make test` (what the README and .ci/run call) runs the whole suite over every core and takes extra pytest
options; Dependabot proposes pip and Actions updates.
"""

from __future__ import annotations

import os
import re
import subprocess

import yaml

from tests.ci.conftest import REPO

JUNIT = "build/test-results/junit.xml"


def _test_job(workflows) -> dict:
    return workflows["test.yml"]["jobs"]["test"]


def _step(job: dict, uses_prefix: str, path: str | None = None) -> dict:
    return next(s for s in job["steps"] if s.get("uses", "").startswith(uses_prefix)
                and (path is None or s["with"]["path"] == path))


def test_runs_on_pull_requests_and_pushes_to_main(workflows):
    on = workflows["test.yml"]["on"]
    assert on["pull_request"]["branches"] == ["main"]
    assert on["push"]["branches"] == ["main"]
    assert _test_job(workflows)["runs-on"] == "ubuntu-latest"


def test_installs_debian_packages_with_the_projects_script_as_root_on_bookworm(workflows):
    job = _test_job(workflows)
    assert job["container"]["image"].endswith("-bookworm")  # the Debian release .ci/system-deps.sh names
    assert "--privileged" in job["container"]["options"]  # buildah's chroot isolation and unshare --net
    runs = [s.get("run", "") for s in job["steps"]]
    assert "bash .ci/system-deps.sh" in runs
    assert runs.index("bash .ci/system-deps.sh") < next(i for i, r in enumerate(runs) if r.startswith("make test"))


def test_runs_the_readme_test_command_and_uploads_its_junit_report(workflows):
    readme = (REPO / "README.md").read_text()
    assert re.search(r"^make test\s+#", readme, re.M), "the README's test command is no longer `make test`"
    job = _test_job(workflows)
    command = next(s["run"] for s in job["steps"] if s.get("run", "").startswith("make test"))
    assert command == f'make test PYTEST_ARGS="--junitxml={JUNIT}"'
    upload = _step(job, "actions/upload-artifact@")
    assert upload["with"]["path"] == JUNIT
    assert upload["if"] == "${{ !cancelled() }}"  # failing runs are the ones whose report matters


def test_caches_pip_and_the_image_base_keyed_on_files_that_exist(workflows):
    job = _test_job(workflows)
    pip = _step(job, "actions/cache@", "~/.cache/pip")
    base = _step(job, "actions/cache@", "build/images/base")
    for cache in (pip, base):
        for pattern in re.findall(r"hashFiles\('([^']+)'\)", cache["with"]["key"]):
            assert (REPO / pattern).is_file(), f"cache key hashes {pattern}, which does not exist"
    assert "hashFiles('tools/images/base.py')" in base["with"]["key"]
    assert "def recipe_key" in (REPO / "tools/images/base.py").read_text()  # the base's recipe lives there


def test_make_test_runs_the_whole_suite_on_every_core_with_extra_options():
    dry = subprocess.run(["make", "-n", "test", "PYTEST_ARGS=--junitxml=x.xml"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    pytest_line = next(line for line in dry.splitlines() if "-m pytest" in line)
    workers = len(os.sched_getaffinity(0)) + 1  # one per core, plus one while the image tests wait on copies
    assert f"-n {workers} --dist loadfile --no-loadscope-reorder" in pytest_line
    assert pytest_line.endswith("--junitxml=x.xml")
    assert " -m " not in pytest_line.split("-m pytest", 1)[1]
    fast = subprocess.run(["make", "-n", "test-fast"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "-m \"not server\"" in fast and "-n auto" in fast
    ci_run = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci_run, re.M)


def test_dependabot_proposes_pip_scanner_and_actions_updates_after_a_cooldown():
    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    assert config["version"] == 2
    updates = {(u["package-ecosystem"], u["directory"]): u for u in config["updates"]}
    assert set(updates) == {("pip", "/"), ("pip", "/.github"), ("github-actions", "/")}
    for update in updates.values():
        assert update["schedule"]["interval"] in {"daily", "weekly", "monthly"}
        assert update["cooldown"]["default-days"] >= 7
    assert (REPO / "pyproject.toml").is_file()  # where Dependabot's pip updater reads the dependencies
    assert (REPO / ".github" / "scan-requirements.txt").is_file()  # and the scanners' pins


# --- pinned actions and the scan job ---------------------------------------------------------------------

SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def _uses_lines() -> list[tuple[str, str]]:
    lines = []
    for path in sorted((REPO / ".github" / "workflows").glob("*.yml")):
        for line in path.read_text().splitlines():
            match = re.match(r"^\s*(?:- )?uses: (.+)$", line)
            if match and not match[1].startswith("./"):
                lines.append((path.name, match[1].strip()))
    return lines


def test_every_action_is_pinned_by_commit_with_its_release_or_named_as_not_pinned():
    policies = yaml.safe_load((REPO / ".github" / "zizmor.yml").read_text())["rules"]["unpinned-uses"]["config"][
        "policies"]
    assert policies.pop("*") == "hash-pin"
    not_pinned = {action for action, policy in policies.items() if policy == "ref-pin"}
    pinned = set()
    for name, ref in _uses_lines():
        action = ref.split("@")[0]
        if action in not_pinned:
            assert re.fullmatch(r"[\w./-]+@v\d+", ref), f"{name}: {ref}"
        else:
            assert SHA_PIN.match(ref), f"{name}: {ref} is neither pinned by SHA with '# vX.Y.Z' nor listed"
            pinned.add(ref)
    # One SHA per action: two releases of one action in the workflows would be a half-done update.
    assert len({p.split("@")[0] for p in pinned}) == len(pinned)
    assert not any("docker/login-action" in ref for _, ref in _uses_lines()), "the registry password stays ours"


def test_the_scan_job_runs_make_scan_from_a_pinned_checkout(workflows):
    job = workflows["test.yml"]["jobs"]["scan"]
    assert job["steps"][-1]["run"] == "make scan"
    assert job["steps"][0]["with"] == {"ref": "${{ inputs.ref }}", "persist-credentials": False}
    dry = subprocess.run(["make", "-n", "scan"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "-m tools.scan --scan-bin build/scan-venv/bin" in dry and "tools.preview --all" in dry
    makefile = (REPO / "Makefile").read_text()
    assert "$(SCAN_VENV)/bin/pip install -q -r .github/scan-requirements.txt" in makefile  # not into .venv
    assert re.search(r"^make scan$", (REPO / ".ci" / "run").read_text(), re.M)


def test_pip_audit_runs_weekly_on_the_installed_versions_without_secrets(workflows):
    audit = workflows["audit.yml"]
    assert set(audit["on"]) == {"schedule", "workflow_dispatch"} and audit["permissions"] == {"contents": "read"}
    (job,) = audit["jobs"].values()
    assert "environment" not in job and "secrets." not in str(job)
    scripts = "\n".join(step.get("run", "") for step in job["steps"])
    assert "pip install -q -e '.[all]'" in scripts and "pip freeze --exclude-editable" in scripts
    assert "-r .github/audit-requirements.txt" in scripts
    assert "--no-deps --disable-pip" in scripts  # the frozen versions, not a new resolution
    assert re.search(r"^pip-audit==\d", (REPO / ".github" / "audit-requirements.txt").read_text(), re.M)
