"""Schema validation in a helper process, started before the preview imports the Pulumi SDK.

Why: importing jsonschema and kubernetes-validate and loading the schema definitions is a fixed
cost of every preview (~0.1-0.2 s) that does not depend on the program. Forked while the process is
still small, the helper pays it on the other core while this process imports the SDK and runs the
program; validation itself then costs one round trip of the manifests per stack. The helper runs
the same ``infra.preview.validation.validate_all``; nothing else changes.

One channel (a request pipe and a reply pipe) per process that validates: the command previews
stacks side by side in forked processes (infra/preview/side_by_side.py), each on its own channel;
the helper answers whichever channel has a request. Protocol on each channel: length-prefixed JSON.
Request ``{"version", "objects": [[obj, partial], ...]}``; reply
``{"violations": [{obj, path, rule, message}, ...]}`` or ``{"error": <type>, "message": <text>}``.
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

from infra.preview.pipes import read_exact, write_all
from infra.preview.validation import SchemaViolation

_LEN = struct.Struct("!I")
# Called in the helper, before the first request: the Kubernetes versions worth loading ahead.
WarmVersions = Callable[[], Iterable[str]]


def _write(fd: int, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    write_all(fd, _LEN.pack(len(data)) + data)


def _read(fd: int) -> dict[str, Any]:
    (size,) = _LEN.unpack(read_exact(fd, _LEN.size))
    return json.loads(read_exact(fd, size))


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


def _answer(request: dict[str, Any]) -> dict[str, Any]:
    from infra.preview import validation

    try:
        found = validation.validate_all(((o, bool(p)) for o, p in request["objects"]), request["version"])
        return {"violations": [vars(v) for v in found]}
    except Exception as exc:
        return {"error": type(exc).__name__, "message": str(exc)}


def _serve(channels: list[tuple[int, int]], warm_versions: WarmVersions) -> None:
    """The helper's loop: warm up, then answer each channel until every writer has closed it."""
    import selectors

    _warm_up(warm_versions)
    with selectors.DefaultSelector() as selector:
        for requests, replies in channels:
            selector.register(requests, selectors.EVENT_READ, replies)
        while selector.get_map():
            for key, _ in selector.select():
                try:
                    request = _read(key.fd)
                except EOFError:
                    selector.unregister(key.fd)
                    continue
                _write(key.data, _answer(request))


class ValidatorWorker:
    """The parent's handle: ``validate_all`` has the signature of ``validation.validate_all``."""

    def __init__(self, pid: int, channels: list[tuple[int, int]]):
        self.pid, self._channels = pid, channels
        self._channel = 0
        self._closed = False

    @classmethod
    def start(cls, warm_versions: WarmVersions = tuple, *, channels: int = 1) -> ValidatorWorker:
        """Fork the helper now (call it early, before the heavy imports), with ``channels`` channels."""
        pipes = [(os.pipe(), os.pipe()) for _ in range(max(1, channels))]
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child; exercised through the parent's calls)
            status = 0
            try:
                for (_, req_w), (rep_r, _) in pipes:
                    os.close(req_w)
                    os.close(rep_r)
                _serve([(req_r, rep_w) for (req_r, _), (_, rep_w) in pipes], warm_versions)
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        for (req_r, _), (_, rep_w) in pipes:
            os.close(req_r)
            os.close(rep_w)
        return cls(pid, [(req_w, rep_r) for (_, req_w), (rep_r, _) in pipes])

    def use_channel(self, index: int) -> None:
        """Talk on channel ``index`` from now on: each process that validates uses its own channel."""
        if not 0 <= index < len(self._channels):
            raise ValueError(f"schema validator channel {index}: the helper has {len(self._channels)}")
        self._channel = index

    def validate_all(self, objects: Iterable[tuple[dict[str, Any], bool]],
                     kubernetes_version: str) -> list[SchemaViolation]:
        if self._closed:
            raise RuntimeError(f"schema validator process {self.pid} was closed")
        requests, replies = self._channels[self._channel]
        try:
            _write(requests, {"version": kubernetes_version,
                              "objects": [[obj, partial] for obj, partial in objects]})
            reply = _read(replies)
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
        for channel in self._channels:
            for fd in channel:
                with contextlib.suppress(OSError):
                    os.close(fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
