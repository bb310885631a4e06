"""The repository's shape: imports run one way between the top-level folders, and nothing points outside it."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    """import-linter with the contracts in pyproject.toml: infra <- components <- stacks <- tools; the
    policies and both services import nothing of the program, and the services nothing of each other; the
    program reaches a service only through its settings model (from that piece's config), which imports
    nothing else of the service."""
    proc = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert f"{len(contracts)} kept, 0 broken" in proc.stdout


def tracked_text_files():
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in names:
        path = ROOT / name
        if path.suffix in {".py", ".md", ".yaml", ".yml", ".toml", ".graphql", ".sh", ""} and path.is_file():
            yield name, path.read_text(errors="replace")


def test_nothing_points_outside_the_repository():
    """Someone who clones the repository has neither the design notes nor the audit reference: the facts the
    code relies on are in docs/ (docs/contracts.md). Schemas come through CMP_SCHEMA_DIR, never a path."""
    pattern = re.compile(r"DESIGN\.md|reference section|p0-gtm-fixes|\.\./shared|shared/contracts")
    allowed = {"Makefile", ".ci/run"}  # they point CMP_SCHEMA_DIR at the contracts beside the clone
    offenders = [f"{name}: {m.group(0)}" for name, text in tracked_text_files() if name not in allowed
                 and name != "tests/test_layers.py" for m in [pattern.search(text)] if m]
    assert offenders == []


def test_no_third_party_schema_is_carried():
    """Saleor's GraphQL schemas and operators' CRDs are read through CMP_SCHEMA_DIR, never copied in."""
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    copies = [n for n in names if re.search(r"saleor-3\.\d+\.\d+\.graphql$|\.io_[a-z]+\.yaml$|/schemas/", n)]
    assert copies == []
