"""Offline means offline: no step of the preview opens a network socket, and a digest it cannot check
offline is named as not checked; ``--online`` (make preview-online) asks the registries."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from tests.tools.preview import fake_project as fp
from tools.preview.__main__ import main

ROOT = Path(__file__).resolve().parents[3]
# Every network use of the socket module raises its audit event first (Python's audit events table):
# the hook records the attempt and refuses it, so any step that tried would show here.
GUARD = """
import runpy, sys
NETWORK = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
           "socket.bind", "socket.sendto", "socket.sendmsg"}
def refuse(event, args):
    if event in NETWORK:
        sys.__stderr__.write(f"SOCKET-ATTEMPT {event} {args[1:] if event.endswith('connect') else args}\\n")
        raise OSError(f"network refused in this test: {event}")
sys.addaudithook(refuse)
sys.argv = ["tools.preview", *sys.argv[1:]]
runpy.run_module("tools.preview", run_name="__main__", alter_sys=True)
"""
REAL_DIGEST = "sha256:" + hashlib.sha256(b"an image manifest").hexdigest()


def preview_process(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", GUARD, "--all", "--out", str(tmp_path / "out"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_preview_of_every_stack_opens_no_socket_and_the_guard_sees_one_online(tmp_path):
    offline = preview_process(tmp_path)
    assert offline.returncode == 0, offline.stderr
    assert "SOCKET-ATTEMPT" not in offline.stderr
    assert any(line.startswith("prod: ") and " resources " in line for line in offline.stdout.splitlines())
    # The guard works: with --online, prod's Ragflow registryPreflight asks Docker Hub, and the hook sees it.
    online = preview_process(tmp_path, "--online")
    assert "SOCKET-ATTEMPT socket.getaddrinfo ('registry-1.docker.io'" in online.stderr


def _pinned_stack(root: Path, image: str) -> Path:
    return fp.write_project(root, {"dev": fp.STACK.replace("registry.local/app:1.0", image)})


def _run(root: Path, capsys, *args: str) -> tuple[int, str]:
    code = main(["--stack", "dev", "--out", str(root / "out"), *args], root=root, program=fp.program(),
                 check_config=fp.check_config, secret_keys=fp.secret_keys)
    return code, capsys.readouterr().out


def test_a_pinned_digest_is_named_as_not_checked_offline(tmp_path, capsys):
    image = f"registry.local/app:1.0@{REAL_DIGEST}"
    code, out = _run(_pinned_stack(tmp_path / "proj", image), capsys)
    assert code == 0
    assert (f"policy: dev: [image-digests-real] Deployment cmp/app: digest of {image} not checked: no registry is "
            "asked offline (`make preview-online` asks it)") in out.splitlines()


def test_online_a_registry_that_cannot_answer_is_named_too(tmp_path, capsys):
    image = f"127.0.0.1:9/team/app:1.0@{REAL_DIGEST}"  # nothing listens on the discard port
    code, out = _run(_pinned_stack(tmp_path / "proj", image), capsys, "--online")
    assert code == 0
    assert (f"policy: dev: [image-digests-real] Deployment cmp/app: digest of {image} not checked: its registry "
            "could not tell (unreachable, refused, or needs credentials)") in out.splitlines()
