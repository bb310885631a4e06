"""One check's result and how results are printed."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    """``area`` groups checks (saleor, vault, control-plane, services, ragflow); ``reason`` is one line."""

    area: str
    name: str
    status: Status
    reason: str

    def line(self) -> str:
        return f"{self.status.value:<4} {self.name}: {self.reason}"


def ok(area: str, name: str, reason: str) -> Check:
    return Check(area, name, Status.OK, reason)


def fail(area: str, name: str, reason: str) -> Check:
    return Check(area, name, Status.FAIL, reason)


def skip(area: str, name: str, reason: str) -> Check:
    return Check(area, name, Status.SKIP, reason)


def exit_code(checks: Iterable[Check]) -> int:
    return 1 if any(c.status is Status.FAIL for c in checks) else 0


def as_text(checks: list[Check]) -> str:
    counts = {s: sum(1 for c in checks if c.status is s) for s in Status}
    summary = f"{counts[Status.OK]} ok, {counts[Status.FAIL]} FAIL, {counts[Status.SKIP]} skip"
    return "\n".join([*(c.line() for c in checks), summary]) + "\n"


def as_json(stack: str, checks: list[Check]) -> str:
    return json.dumps({"stack": stack, "ok": exit_code(checks) == 0,
                       "checks": [{**asdict(c), "status": c.status.value} for c in checks]}, indent=2) + "\n"
