"""What changed since the previous preview in the same folder: + created, ~ updated, - deleted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CREATE, UPDATE, DELETE, SAME = "+", "~", "-", " "


@dataclass(frozen=True)
class Change:
    op: str
    type: str
    name: str
    parent: str | None
    urn: str


def read_previous(path: Path) -> list[dict[str, Any]]:
    """The previous resources.json rows; none when there is no previous preview (or it is unreadable)."""
    try:
        rows = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return []
    return rows if isinstance(rows, list) else []


def compare(previous: list[dict[str, Any]], current: list[dict[str, Any]]) -> list[Change]:
    """Current rows in order with their op, then the deleted ones."""
    before = {row.get("urn"): row for row in previous if isinstance(row, dict)}
    now = {row["urn"] for row in current}
    out = []
    for row in current:
        old = before.get(row["urn"])
        op = CREATE if old is None else SAME if old.get("inputs") == row["inputs"] else UPDATE
        out.append(Change(op, row["type"], row["name"], row.get("parent"), row["urn"]))
    out += [Change(DELETE, str(row.get("type")), str(row.get("name")), row.get("parent"), str(urn))
            for urn, row in before.items() if urn not in now]
    return out


def counts(changes: list[Change]) -> dict[str, int]:
    return {op: sum(c.op == op for c in changes) for op in (CREATE, UPDATE, DELETE)}


def _short(urn: str | None) -> str:
    """A parent URN as ``<type>::<name>`` of its last segment (the full URN is in resources.json)."""
    if not urn:
        return ""
    parts = urn.split("::")
    return f"{parts[-2].split('$')[-1]}::{parts[-1]}" if len(parts) >= 2 else urn


def table(changes: list[Change]) -> str:
    rows = [("op", "type", "name", "parent")] + [(c.op, c.type, c.name, _short(c.parent)) for c in changes]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip()
                     for r in rows)
