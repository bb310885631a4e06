"""The audit trail: one JSON line per tool call, allowed or denied.

A line holds who (org, project, sub), what (tool, binding), the decision, the HTTP status, the latency and
the SHA-256 of the canonical arguments. It never holds credentials or the arguments themselves.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from typing import IO, Any

import structlog

from service_src.connector_gateway.auth import Caller


def arguments_hash(arguments: Any) -> str | None:
    """sha256 over canonical JSON (or over raw bytes when the body did not parse)."""
    if arguments is None:
        return None
    if isinstance(arguments, bytes | bytearray):
        data = bytes(arguments)
    else:
        data = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          default=str).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(slots=True)
class AuditRecord:
    request_id: str
    transport: str
    tool: str | None = None
    binding: str | None = None
    caller: Caller | None = None
    args_sha256: str | None = None


def _open(target: str) -> IO[str]:
    if target == "stdout":
        return sys.stdout
    if target == "stderr":
        return sys.stderr
    return open(target, "a", buffering=1, encoding="utf-8")  # lives as long as the app


class AuditLog:
    def __init__(self, target: str = "stdout") -> None:
        self._file = _open(target)
        self._owns = target not in ("stdout", "stderr")
        self._log = structlog.wrap_logger(
            structlog.PrintLogger(self._file),
            processors=[
                structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
                structlog.processors.JSONRenderer(sort_keys=False),
            ],
        )

    def record(self, rec: AuditRecord, *, decision: str, status: int, latency_ms: float,
               error: str | None = None) -> None:
        caller = rec.caller
        self._log.msg(
            "tool_call",
            request_id=rec.request_id,
            transport=rec.transport,
            org=caller.org if caller else None,
            project=caller.project if caller else None,
            sub=caller.sub if caller else None,
            binding=rec.binding,
            tool=rec.tool,
            decision=decision,
            status=status,
            latency_ms=round(latency_ms, 3),
            args_sha256=rec.args_sha256,
            error=error,
        )

    def close(self) -> None:
        if self._owns:
            self._file.close()
