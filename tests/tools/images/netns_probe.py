"""Run a command inside a fresh network namespace and probe it there (used as `unshare --net python -m ...`).

Each image listens on its real port 8000 without touching the host's ports, and the probe reaches it
from the same namespace. Prints one JSON object: {"status", "body", "seconds", "output"}.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with tempfile.TemporaryFile() as log:
        return _probe(args.url, args.timeout, command, log)


def _probe(url: str, timeout: float, command: list[str], log) -> int:
    start = time.monotonic()
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    status, body = None, ""
    try:
        while time.monotonic() - start < timeout and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    status, body = resp.status, resp.read().decode(errors="replace")
                    break
            except urllib.error.HTTPError as exc:
                status, body = exc.code, exc.read().decode(errors="replace")
                break
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
    finally:
        elapsed = time.monotonic() - start
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.seek(0)
        output = log.read().decode(errors="replace")[-4000:]
    print(json.dumps({"status": status, "body": body, "seconds": round(elapsed, 2), "output": output,
                      "exit": proc.returncode}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
