"""Every workflow passes actionlint (with shellcheck on the run: scripts), and the check really finds faults."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.ci.conftest import REPO, WORKFLOWS

ACTIONLINT = Path(sys.executable).parent / "actionlint"


def _actionlint(*files: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ACTIONLINT), "-no-color", *map(str, files)], cwd=cwd, capture_output=True, text=True, timeout=120,
        check=False,
    )


def test_shellcheck_is_installed_so_run_scripts_are_checked():
    # actionlint silently skips run: scripts when shellcheck is absent; .ci/system-deps.sh installs it.
    assert shutil.which("shellcheck"), "shellcheck missing: run .ci/system-deps.sh"


def test_every_workflow_passes_actionlint():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert len(files) >= 5
    result = _actionlint(*files, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_a_broken_workflow(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    wf = tmp_path / ".github" / "workflows"
    wf.mkdir(parents=True)
    bad = (WORKFLOWS / "drift.yml").read_text().replace("expect-no-changes: true", "expect-no-change: true")
    (wf / "pulumi-stack.yml").write_text((WORKFLOWS / "pulumi-stack.yml").read_text())
    (wf / "drift.yml").write_text(bad)
    (wf / "unquoted.yml").write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo $UNQUOTED_VAR\n"
    )
    result = _actionlint(*sorted(wf.glob("*.yml")), cwd=tmp_path)
    assert result.returncode == 1
    assert "expect-no-change" in result.stdout
    assert "SC2086" in result.stdout  # shellcheck ran on the run: script
