"""Every workflow passes actionlint (with shellcheck on the run: scripts), every shell script passes shellcheck,
and both checks really find faults."""

from __future__ import annotations

import re
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


def _shell_scripts() -> list[Path]:
    """Every tracked file that is a shell script (by its #! line), wherever it lives."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    scripts = []
    for name in filter(None, tracked.decode().split("\0")):
        path = REPO / name
        if path.is_file():
            with path.open("rb") as handle:
                first = handle.readline()
            if re.match(rb"#!\s*/(usr/)?(bin/)?(env\s+)?(ba)?sh\b", first):
                scripts.append(path)
    return scripts


def test_every_shell_script_passes_shellcheck():
    scripts = _shell_scripts()
    assert REPO / ".ci" / "run" in scripts and REPO / ".ci" / "system-deps.sh" in scripts
    result = subprocess.run(["shellcheck", *map(str, scripts)], cwd=REPO, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_reports_a_broken_script(tmp_path):
    script = tmp_path / "bad.sh"
    script.write_text("#!/usr/bin/env bash\nrm -rf $TARGET/build\n")
    result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "SC2086" in result.stdout
