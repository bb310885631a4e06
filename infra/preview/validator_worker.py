"""Schema validation in a helper process, started before the preview imports the Pulumi SDK.

Why: importing jsonschema and kubernetes-validate and loading the schema definitions is a fixed
cost of every preview (~0.1-0.2 s) that does not depend on the program. Forked while the process is
still small, the helper pays it on the other core while this process imports the SDK and runs the
program; validation itself then costs one round trip of the manifests per stack. The helper runs
the same ``infra.preview.validation.validate_all``; nothing else changes.

Protocol on two pipes: length-prefixed JSON. Request ``{"version", "objects": [[obj, partial], ...]}``;
reply ``{"violations": [{obj, path, rule, message}, ...]}`` or ``{"error": <type>, "message": <text>}``.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import struct
import sys
from collections.abc import Callable, Iterable
from typing import Any

from infra.preview.validation import SchemaViolation

_LEN = struct.Struct("!I")
# Called in the helper, before the first request: the Kubernetes versions worth loading ahead.
WarmVersions = Callable[[], Iterable[str]]


def _write(fd: int, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    view = memoryview(_LEN.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            raise EOFError("validator pipe closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read(fd: int) -> dict[str, Any]:
    (size,) = _LEN.unpack(_read_exact(fd, _LEN.size))
    return json.loads(_read_exact(fd, size))


def _warm_up(warm_versions: WarmVersions) -> None:
    """Import jsonschema/kubernetes-validate and load the definitions of the versions stacks will ask for."""
    from infra.preview import validation

    try:
        versions = list(warm_versions())
    except Exception:
        versions = []
    for version in versions:
        try:
            validation._definitions(validation._schema_dir(version))
        except Exception:  # noqa: S112 (a bad version is reported when a stack asks for it)
            continue


def _serve(requests: int, replies: int, warm_versions: WarmVersions) -> None:
    """The helper's loop: warm up, then validate until the parent closes its end."""
    from infra.preview import validation

    _warm_up(warm_versions)
    while True:
        try:
            request = _read(requests)
        except EOFError:
            return
        try:
            found = validation.validate_all(((o, bool(p)) for o, p in request["objects"]), request["version"])
            reply: dict[str, Any] = {"violations": [vars(v) for v in found]}
        except Exception as exc:
            reply = {"error": type(exc).__name__, "message": str(exc)}
        _write(replies, reply)


class ValidatorWorker:
    """The parent's handle: ``validate_all`` has the signature of ``validation.validate_all``."""

    def __init__(self, pid: int, requests: int, replies: int):
        self.pid, self._requests, self._replies = pid, requests, replies
        self._closed = False

    @classmethod
    def start(cls, warm_versions: WarmVersions = tuple) -> ValidatorWorker:
        """Fork the helper now (call it early, before the heavy imports)."""
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child; exercised through the parent's calls)
            os.close(req_w)
            os.close(rep_r)
            status = 0
            try:
                _serve(req_r, rep_w, warm_versions)
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        os.close(req_r)
        os.close(rep_w)
        return cls(pid, req_w, rep_r)

    def validate_all(self, objects: Iterable[tuple[dict[str, Any], bool]],
                     kubernetes_version: str) -> list[SchemaViolation]:
        if self._closed:
            raise RuntimeError(f"schema validator process {self.pid} was closed")
        try:
            _write(self._requests, {"version": kubernetes_version,
                                    "objects": [[obj, partial] for obj, partial in objects]})
            reply = _read(self._replies)
        except (EOFError, BrokenPipeError) as exc:
            raise RuntimeError(f"schema validator process {self.pid} stopped ({exc})") from None
        if "error" in reply:
            kind = getattr(builtins, reply["error"], None)
            if not (isinstance(kind, type) and issubclass(kind, Exception)):
                kind = RuntimeError
            raise kind(reply["message"])
        return [SchemaViolation(**v) for v in reply["violations"]]

    def close(self) -> None:
        """Close the pipes (the helper exits) and reap it; a second call does nothing (fds may be reused)."""
        if self._closed:
            return
        self._closed = True
        for fd in (self._requests, self._replies):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
