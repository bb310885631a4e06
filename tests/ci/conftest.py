"""Helpers for the workflow tests: load workflows and run a step's shell script the way a runner does."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"


def load_workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def run_step_script(script: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a `run:` block with the runner's shell flags (bash --noprofile --norc -eo pipefail)."""
    full_env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **env}
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        env=full_env, cwd=cwd, capture_output=True, text=True, timeout=30, check=False,
    )


def stand_in(directory: Path, name: str, script: str) -> Path:
    """An executable ``name`` in ``directory/bin`` (a stand-in for a CLI that talks to an outside service);
    returns the bin directory to put first on PATH."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(exist_ok=True)
    command = bin_dir / name
    command.write_text(script)
    command.chmod(0o755)
    return bin_dir


@pytest.fixture(scope="session")
def workflows() -> dict[str, dict]:
    return {path.name: load_workflow(path.name) for path in sorted(WORKFLOWS.glob("*.yml"))}
