"""--port-forward: reach in-cluster addresses from outside the cluster through `kubectl port-forward`.

Each URL whose host is a Service's cluster DNS name (``<service>.<namespace>.svc[.cluster.local]``) gets a
`kubectl port-forward svc/<service>` on a free local port (kubectl picks it and prints it); the URL is
rewritten to ``http://127.0.0.1:<port>`` with the same path. The forwards end with the context.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

_CLUSTER_HOST = re.compile(r"^(?P<service>[a-z0-9-]+)\.(?P<namespace>[a-z0-9-]+)\.svc(\.cluster\.local)?$")
_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) ->")


class ForwardError(Exception):
    """kubectl could not forward: one line."""


@dataclass(frozen=True)
class InCluster:
    service: str
    namespace: str
    port: int


def in_cluster(url: str) -> InCluster | None:
    """The Service a cluster-DNS URL names, or None for any other URL."""
    parts = urlsplit(url)
    match = _CLUSTER_HOST.match(parts.hostname or "")
    if not match:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return InCluster(match["service"], match["namespace"], port)


def local_url(url: str, local_port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, f"127.0.0.1:{local_port}", parts.path, parts.query, parts.fragment))


@contextmanager
def forwarded(urls: dict[str, str], kubeconfig: str | None, context: str | None = None,
              timeout: float = 30.0) -> Iterator[dict[str, str]]:
    """``urls`` with every in-cluster URL replaced by a forwarded local one; other URLs as they are."""
    kubectl = shutil.which("kubectl")
    procs: list[subprocess.Popen] = []
    ports: dict[InCluster, int] = {}
    try:
        result = {}
        for key, url in urls.items():
            target = in_cluster(url)
            if target is None:
                result[key] = url
                continue
            if target not in ports:
                if kubectl is None:
                    raise ForwardError("--port-forward needs kubectl on PATH")
                argv = [kubectl, "port-forward", "-n", target.namespace, f"svc/{target.service}", f":{target.port}",
                        f"--pod-running-timeout={int(timeout)}s"]
                if kubeconfig:
                    argv.insert(1, f"--kubeconfig={kubeconfig}")
                if context:
                    argv.insert(1, f"--context={context}")
                proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                procs.append(proc)
                first = proc.stdout.readline() if proc.stdout else ""
                match = _FORWARDING.search(first)
                if not match:
                    proc.kill()
                    err = (proc.stderr.read() if proc.stderr else "").strip().splitlines() or [first.strip()]
                    raise ForwardError(f"kubectl port-forward -n {target.namespace} svc/{target.service}: {err[-1]}")
                ports[target] = int(match[1])
            result[key] = local_url(url, ports[target])
        yield result
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
