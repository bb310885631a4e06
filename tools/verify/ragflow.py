"""Ragflow (with a kubeconfig): its pods run on nodes whose kubernetes.io/arch the image supports, and no
container's last termination says `exec format error` (an image built for another architecture)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any

from components.ragflow.component import ARCH_LABEL
from infra.naming import NAME_LABEL
from tools.verify.inputs import Target, known
from tools.verify.result import Check, fail, ok, skip

AREA = "ragflow"
EXEC_FORMAT_ERROR = "exec format error"


def arches(platforms: Iterable[str], node_os: str = "linux") -> set[str]:
    return {p.split("/")[1] for p in platforms if p.count("/") >= 1 and p.split("/")[0] == node_os}


def _messages(status: Mapping[str, Any]) -> list[str]:
    """Every reason/message a container status carries (current and last state)."""
    found = []
    for key in ("state", "lastState"):
        for detail in (status.get(key) or {}).values():
            if isinstance(detail, Mapping):
                found += [str(detail.get("reason") or ""), str(detail.get("message") or "")]
    return found


def pod_checks(pods: Mapping[str, Any], nodes: Mapping[str, Any], platforms: list[str]) -> list[Check]:
    """Checks over `kubectl get pods -o json` and `kubectl get nodes -o json` documents."""
    supported = arches(platforms)
    node_arch = {n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get(ARCH_LABEL)
                 for n in nodes.get("items") or []}
    items = pods.get("items") or []
    if not items:
        return [fail(AREA, "ragflow pods", "no Ragflow pod exists")]
    checks = []
    for pod in items:
        name = f"ragflow pod {pod['metadata']['name']}"
        node = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase", "Unknown")
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        exec_errors = [s["name"] for s in statuses if any(EXEC_FORMAT_ERROR in m for m in _messages(s))]
        if exec_errors:
            checks.append(fail(AREA, name, f"container {exec_errors[0]} terminated with '{EXEC_FORMAT_ERROR}' on "
                                           f"node {node} ({node_arch.get(node)}): the image lacks that arch"))
        elif node is None:
            checks.append(fail(AREA, name, f"not scheduled ({phase})"))
        elif node_arch.get(node) not in supported:
            checks.append(fail(AREA, name, f"runs on node {node} of arch {node_arch.get(node)}; the image supports "
                                           f"{', '.join(sorted(platforms))}"))
        elif phase != "Running":
            checks.append(fail(AREA, name, f"is {phase} on node {node} ({node_arch[node]})"))
        else:
            checks.append(ok(AREA, name, f"Running on node {node} ({node_arch[node]}), which the image supports"))
    return checks


def kubectl_json(target: Target, *args: str) -> dict[str, Any]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("kubectl is not on PATH")
    argv = [kubectl, f"--kubeconfig={target.kubeconfig}", f"--request-timeout={int(target.timeout)}s"]
    if target.kube_context:
        argv.append(f"--context={target.kube_context}")
    proc = subprocess.run([*argv, *args, "-o", "json"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"kubectl {' '.join(args)}: {last}")
    return json.loads(proc.stdout)


def check(target: Target) -> list[Check]:
    rag = target.outputs.get("ragflow")
    if not rag:
        return [skip(AREA, "ragflow", "Ragflow is not enabled on this stack")]
    if not target.kubeconfig:
        return [skip(AREA, "ragflow", "no cluster: pass --kubeconfig or set KUBECONFIG")]
    platforms = [p for p in rag.get("platforms") or [] if known(p)]
    settings = target.config.ragflow
    try:
        pods = kubectl_json(target, "get", "pods", "-n", settings.namespace, "-l", f"{NAME_LABEL}={settings.name}")
        nodes = kubectl_json(target, "get", "nodes")
    except (RuntimeError, ValueError) as exc:
        return [fail(AREA, "ragflow", str(exc))]
    return pod_checks(pods, nodes, platforms)
