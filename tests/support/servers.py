"""The real servers a test session started, so a failing test's report names each one it used and its log.

Server classes call ``announce(self, kind, address, log)`` once they answer. The suite's conftest adds a
"servers used" section to a failed test's report: every announced server among the test's fixture values,
every one started while the test ran, and any fixture value that carries an address and a log path of its
own (``url``/``addr``/``address`` with ``log_path``), e.g. a service process the test started. A test without
the ``server`` marker that announced a server fails, naming it (tests/support/tiers.py).

Logs are kept after a server stops (the report is read after the session has stopped them): under
``LOG_DIR`` when the session sets it (the conftest points it at pytest's temporary directory, which keeps
the last runs), otherwise in the server's own temporary directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

LOG_DIR: Path | None = None

_ADDRESS_ATTRS = ("url", "addr", "address", "api_url", "base_url")
_LOG_ATTRS = ("log_path", "log_file", "server_log_path")


@dataclass(frozen=True)
class ServerInfo:
    kind: str
    address: str
    log: Path | None

    def line(self) -> str:
        return f"{self.kind} at {self.address}" + (f", log {self.log}" if self.log else "")


_started: list[tuple[object, ServerInfo]] = []


def log_path(name: str, fallback_dir: Path) -> Path:
    """Where a server started now writes its log: ``LOG_DIR/<name>.log``, or ``fallback_dir/server.log``."""
    if LOG_DIR is None:
        return fallback_dir / "server.log"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return LOG_DIR / f"{name}.log"


def announce(owner: object, kind: str, address: str, log: Path | None) -> ServerInfo:
    info = ServerInfo(kind, address, log)
    _started.append((owner, info))
    return info


def mark() -> int:
    """A position in the start order; ``started_since(mark)`` lists what started after it."""
    return len(_started)


def started_since(position: int) -> list[ServerInfo]:
    return [info for _owner, info in _started[position:]]


def info_of(value: object) -> ServerInfo | None:
    """The announced server ``value`` is, or a description of a value with an address and a log file."""
    for owner, info in _started:
        if owner is value:
            return info
    address = next((getattr(value, a) for a in _ADDRESS_ATTRS if isinstance(getattr(value, a, None), str)), None)
    log = next((getattr(value, a) for a in _LOG_ATTRS if isinstance(getattr(value, a, None), str | os.PathLike)),
               None)
    if address and log:
        name = getattr(value, "name", None)
        return ServerInfo(name if isinstance(name, str) else type(value).__name__, address, Path(log))
    return None


def report_lines(fixture_values: list[object], since: int) -> list[str]:
    """One line per server a test used, each once, in the order they started."""
    seen: dict[str, None] = {}
    for value in fixture_values:
        info = info_of(value)
        if info is not None:
            seen.setdefault(info.line())
    for info in started_since(since):
        seen.setdefault(info.line())
    return list(seen)
