"""`make scan`: zizmor on the workflows, checkov on every stack's rendered manifests, the Dockerfiles and the
workflows, offline; a finding that is neither fixed nor accepted fails.

Accepted findings live beside the workflows with their reasons: zizmor's in `.github/zizmor.yml` (zizmor reads
it itself), checkov's in `.github/checkov-skips.yaml`, one entry per object and checks, read here. An entry that
no longer matches any finding fails too, so the list never keeps a reason for something that is gone.
The scanners run from their own virtualenv (`SCAN_BIN`, made by `make scan`): checkov pins many libraries.
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ROOT = Path(__file__).resolve().parents[1]
SKIPS = ROOT / ".github" / "checkov-skips.yaml"
ZIZMOR_CONFIG = ROOT / ".github" / "zizmor.yml"
STACKS = ("dev", "staging", "prod")
# What checkov reads, as (framework, directory under the repository); the manifests come from `make preview`.
TARGETS = (("kubernetes", "build/preview"), ("dockerfile", "service_src"), ("github_actions", ".github/workflows"))
# Offline: no download of Prisma Cloud's policy metadata, no version check against PyPI.
CHECKOV_ENV = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}


class ScanError(Exception):
    """A scanner or the skip list could not be used; one line."""


@dataclass(frozen=True)
class Finding:
    check: str
    name: str  # the check's title
    object: str  # a Kubernetes object as checkov names it (Kind.namespace.name), else the file
    path: str  # the file, relative to the repository
    stack: str | None  # the stack whose rendered manifests hold it

    def line(self) -> str:
        where = f"{self.path}" + (f" (stack {self.stack})" if self.stack else "")
        return f"{self.check} {self.object} in {where}: {self.name}"


class Skip(BaseModel):
    """One accepted finding: which checks, on which object (in which stacks), and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    object: str = Field(min_length=1)
    checks: tuple[str, ...] = Field(min_length=1)  # check ids, or "*" for every check (a partial patch)
    stacks: tuple[str, ...] | None = None  # rendered manifests only: the stacks it applies in; None: all
    why: str = Field(min_length=20)

    @field_validator("stacks")
    @classmethod
    def _known_stacks(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for stack in value or ():
            if stack not in STACKS:
                raise ValueError(f"stack {stack!r} is not one of {', '.join(STACKS)}")
        return value

    def covers(self, finding: Finding) -> bool:
        return (fnmatch.fnmatchcase(finding.object, self.object)
                and ("*" in self.checks or finding.check in self.checks)
                and (self.stacks is None or finding.stack in self.stacks))


def load_skips(path: Path = SKIPS) -> list[Skip]:
    data = yaml.safe_load(path.read_text()) or []
    if not isinstance(data, list):
        raise ScanError(f"{path.name}: expected a list of {{object, checks, why}} entries")
    skips = []
    for i, entry in enumerate(data):
        try:
            skips.append(Skip.model_validate(entry))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "entry"
            raise ScanError(f"{path.name} entry {i} ({(entry or {}).get('object', '?')}): {field}: "
                            f"{first['msg']}") from None
    return skips


def json_documents(text: str) -> list[dict[str, Any]]:
    """checkov prints one JSON report per framework (a list when several); read them all."""
    decoder, docs, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return docs
        value, i = decoder.raw_decode(text, i)
        docs.extend(value if isinstance(value, list) else [value])


def stack_of(path: str) -> str | None:
    parts = Path(path).parts
    for stack in STACKS:
        if ("preview", stack) in itertools.pairwise(parts):
            return stack
    return None


def findings_of(report: dict[str, Any], directory: str) -> list[Finding]:
    """A checkov report's failed checks. checkov gives Kubernetes paths from the working directory and the others
    from the scanned directory; both become paths from the repository."""
    out = []
    for failed in report.get("results", {}).get("failed_checks", []):
        file_path = failed["file_path"].lstrip("/")
        path = file_path if file_path.startswith(directory) else f"{directory}/{file_path}"
        kubernetes = report.get("check_type") == "kubernetes"
        out.append(Finding(check=failed["check_id"], name=failed.get("check_name", ""),
                           object=failed["resource"] if kubernetes else path, path=path,
                           stack=stack_of(path) if kubernetes else None))
    return out


def run_checkov(scan_bin: Path, framework: str, directory: str) -> list[Finding]:
    if not (ROOT / directory).is_dir():
        raise ScanError(f"checkov: {directory} does not exist (make scan renders build/preview first)")
    argv = [str(scan_bin / "checkov"), "--skip-download", "--quiet", "--compact", "--output", "json",
            "--framework", framework, "--directory", directory]
    result = subprocess.run(argv, cwd=ROOT, env={**os.environ, **CHECKOV_ENV}, capture_output=True, text=True,
                            timeout=600, check=False)
    if result.returncode not in (0, 1):  # 1: findings; anything else: checkov itself failed
        raise ScanError(f"checkov {framework} on {directory} exited {result.returncode}: "
                        f"{(result.stderr.strip().splitlines() or ['no message'])[-1]}")
    findings: dict[tuple[str, str, str], Finding] = {}
    for report in json_documents(result.stdout):
        for finding in findings_of(report, directory):
            findings.setdefault((finding.check, finding.object, finding.path), finding)
    return list(findings.values())


def compare(findings: Iterable[Finding], skips: Sequence[Skip]) -> tuple[list[Finding], list[Skip]]:
    """The findings no skip covers, and the skips that cover no finding."""
    findings = list(findings)
    new = [f for f in findings if not any(s.covers(f) for s in skips)]
    stale = [s for s in skips if not any(s.covers(f) for f in findings)]
    return new, stale


def run_zizmor(scan_bin: Path) -> list[str]:
    """zizmor at its default persona on the workflows and the Dependabot config; its lines when it finds
    anything its config does not accept."""
    argv = [str(scan_bin / "zizmor"), "--offline", "--no-progress", "--config", str(ZIZMOR_CONFIG),
            "--format", "plain", "."]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode == 0:
        return []
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return lines or [f"zizmor exited {result.returncode}: {result.stderr.strip()[-500:]}"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.scan", description=__doc__.splitlines()[0])
    parser.add_argument("--scan-bin", type=Path, default=Path(os.environ.get("SCAN_BIN", ROOT / "build/scan-venv/bin")),
                        help="directory holding the checkov and zizmor executables")
    args = parser.parse_args(argv)
    try:
        problems = [f"zizmor: {line}" for line in run_zizmor(args.scan_bin)]
        skips = load_skips()
        findings = [f for framework, directory in TARGETS for f in run_checkov(args.scan_bin, framework, directory)]
    except (ScanError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"error: scan: {exc}", file=sys.stderr)
        return 2
    new, stale = compare(findings, skips)
    problems += [f"checkov: new finding {f.line()}: fix it, or accept it in {SKIPS.relative_to(ROOT)} "
                 "with the object and why" for f in new]
    problems += [f"checkov: {SKIPS.relative_to(ROOT)} accepts {', '.join(s.checks)} on {s.object}, which no "
                 "longer fails: remove the entry" for s in stale]
    for line in problems:
        print(line)
    accepted = len(findings) - len(new)
    print(f"scan: zizmor {'clean' if not any(p.startswith('zizmor') for p in problems) else 'FAILED'}; "
          f"checkov {len(findings)} finding(s), {accepted} accepted, {len(new)} new, {len(stale)} stale skip(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
