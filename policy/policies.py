"""The platform's policies as plain functions, shared by the CrossGuard pack and the offline preview.

Each resource policy takes a Pulumi resource type and its props (the Kubernetes object's fields as
the program passed them, camelCase) and returns violation messages; an empty list means compliant.
The stack policy sees every resource at once. Nothing here imports pulumi_policy: constructing a
``PolicyPack`` starts a gRPC server and blocks, so only policy/__main__.py builds one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

try:
    from policy import oci_registry
except ImportError:  # run by the CrossGuard pack with this folder as the program: its modules are top-level
    import oci_registry  # type: ignore[no-redef]

Props = Mapping[str, Any]

WAIVER_ANNOTATION = "cmp.platform/security-exception"
# The waiver list: named exceptions that allow a workload to run as root, and why. A workload uses one
# by carrying WAIVER_ANNOTATION with the exception's name, so the exception is visible on the object
# in the cluster and reviewed here (components/ragflow/component.py sets "ragflow-runs-as-root").
ROOT_WAIVERS: dict[str, str] = {
    "ragflow-runs-as-root": "the upstream infiniflow/ragflow image runs as root (runAsUser 0)",
}
ARCH_LABEL = "kubernetes.io/arch"
# Images published per architecture under different tags: pods running them must pin the node arch.
ARCH_PINNED_IMAGES = ("infiniflow/ragflow",)

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}


@dataclass(frozen=True)
class PolicyDef:
    """One policy: its name (as the pack registers it), what it checks, and the check."""

    name: str
    description: str
    check: Callable[[str, Props], list[str]]


def kind_of(resource_type: str) -> str | None:
    """``kubernetes:apps/v1:Deployment`` -> ``Deployment``; None for non-Kubernetes types."""
    parts = resource_type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes" or "/" not in parts[1]:
        return None
    return parts[2]


def is_workload(resource_type: str) -> bool:
    return kind_of(resource_type) in WORKLOAD_KINDS


# The pack hands policies read-only proxies (Mapping / Sequence), the offline preview plain dicts.
def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, str) else []


def workload_name(props: Props) -> str:
    return str(_dict(props.get("metadata")).get("name", ""))


def pod_template(resource_type: str, props: Props) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(pod metadata, pod spec) of a workload; empty dicts when it has none."""
    kind = kind_of(resource_type)
    spec = _dict(props.get("spec"))
    if kind == "Pod":
        return _dict(props.get("metadata")), spec
    if kind == "CronJob":
        spec = _dict(_dict(spec.get("jobTemplate")).get("spec"))
    template = _dict(spec.get("template"))
    return _dict(template.get("metadata")), _dict(template.get("spec"))


def _containers(pod_spec: Mapping[str, Any], *, init: bool = True) -> list[Mapping[str, Any]]:
    keys = ("containers", "initContainers") if init else ("containers",)
    return [c for key in keys for c in _list(pod_spec.get(key)) if isinstance(c, Mapping)]


def _annotations(resource_type: str, props: Props) -> dict[str, Any]:
    pod_meta, _ = pod_template(resource_type, props)
    return {**_dict(pod_meta.get("annotations")), **_dict(_dict(props.get("metadata")).get("annotations"))}


def _container_runs_as_root(pod_ctx: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    ctx = _dict(container.get("securityContext"))
    user = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
    if user == 0:
        return "runAsUser is 0"
    if non_root is not True:
        return "runAsNonRoot is not true"
    return None


def check_non_root(resource_type: str, props: Props) -> list[str]:
    """Pods run as non-root, unless the workload is on the waiver list AND carries the waiver annotation."""
    if not is_workload(resource_type):
        return []
    name = workload_name(props)
    _, pod_spec = pod_template(resource_type, props)
    pod_ctx = _dict(pod_spec.get("securityContext"))
    problems = [f"container {c.get('name')!r}: {why}" for c in _containers(pod_spec)
                if (why := _container_runs_as_root(pod_ctx, c))]
    if not problems:
        return []
    exception = _annotations(resource_type, props).get(WAIVER_ANNOTATION)
    if exception in ROOT_WAIVERS:
        return []
    why = (f"its {WAIVER_ANNOTATION} {exception!r} is not on the waiver list {sorted(ROOT_WAIVERS)}"
           if exception else f"no {WAIVER_ANNOTATION} annotation naming a waiver {sorted(ROOT_WAIVERS)}")
    return [f"{name}: must run as non-root ({p}); {why}" for p in problems]


def check_resources(resource_type: str, props: Props) -> list[str]:
    """Every container sets cpu and memory requests and limits (scheduling and noisy neighbours)."""
    if not is_workload(resource_type):
        return []
    _, pod_spec = pod_template(resource_type, props)
    out = []
    for c in _containers(pod_spec):
        res = _dict(c.get("resources"))
        for section in ("requests", "limits"):
            missing = [k for k in ("cpu", "memory") if k not in _dict(res.get(section))]
            if missing:
                out.append(f"{workload_name(props)}: container {c.get('name')!r} has no resources.{section} "
                           f"for {', '.join(missing)}")
    return out


def check_probes(resource_type: str, props: Props) -> list[str]:
    """Long-running containers declare liveness and readiness probes (init containers and Jobs exit)."""
    if kind_of(resource_type) not in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod"}:
        return []
    _, pod_spec = pod_template(resource_type, props)
    return [f"{workload_name(props)}: container {c.get('name')!r} has no {probe}"
            for c in _containers(pod_spec, init=False)
            for probe in ("livenessProbe", "readinessProbe") if not c.get(probe)]


def image_problem(image: Any) -> str | None:
    """Why an image reference is not pinned, or None. A digest pins; otherwise a tag other than latest."""
    if not isinstance(image, str) or not image:
        return "no image"
    if "@" in image:
        return None if image.split("@", 1)[1].startswith("sha256:") else "malformed digest"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "untagged (implies latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return "tag latest"
    return None


def check_images(resource_type: str, props: Props) -> list[str]:
    """No ``latest`` or untagged images: a rollout must name what it runs. Patches are checked too."""
    if not (is_workload(resource_type) or resource_type.endswith("Patch")):
        return []
    _, pod_spec = pod_template(resource_type.removesuffix("Patch"), props)
    return [f"{workload_name(props)}: container {c.get('name')!r} image {c.get('image')!r}: {why}"
            for c in _containers(pod_spec)
            if (why := image_problem(c.get("image"))) and not (resource_type.endswith("Patch") and "image" not in c)]


def check_no_plaintext_secret(resource_type: str, props: Props) -> list[str]:
    """No v1 Secret with data or stringData: secret values come from Vault through ExternalSecrets."""
    if resource_type != "kubernetes:core/v1:Secret":
        return []
    fields = [f for f in ("data", "stringData") if props.get(f)]
    if not fields:
        return []
    return [f"Secret {workload_name(props)!r} carries plaintext {' and '.join(fields)}; "
            "use an ExternalSecret (Vault) instead"]


def image_repository(image: Any) -> str:
    """``registry:5000/infiniflow/ragflow:v1@sha256:..`` -> ``registry:5000/infiniflow/ragflow``."""
    text = str(image or "").split("@", 1)[0]
    head, _, last = text.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def check_arch_pinned(resource_type: str, props: Props) -> list[str]:
    """Ragflow's images are single-arch per tag: pods running them must pin the node architecture."""
    if not is_workload(resource_type):
        return []
    _, pod_spec = pod_template(resource_type, props)
    images = [c.get("image") for c in _containers(pod_spec)
              if any(image_repository(c.get("image")).endswith(repo) for repo in ARCH_PINNED_IMAGES)]
    if not images or _dict(pod_spec.get("nodeSelector")).get(ARCH_LABEL):
        return []
    return [f"{workload_name(props)}: runs {images[0]} and must set nodeSelector {ARCH_LABEL} "
            "(exec format error otherwise)"]


# --- digests: real ones only --------------------------------------------------------------------------------

_PINNED = re.compile(r"^(?P<name>[^@]+)@sha256:(?P<hex>[0-9a-f]{64})$")
_HEX_CYCLE = "0123456789abcdef" * 2
_HEX_WORDS = ("deadbeef", "cafebabe", "feedface", "badc0ffe", "c0ffee00", "0ddba11", "abad1dea", "facefeed")


def placeholder_digest(hex_digest: str) -> str | None:
    """Why 64 hex digits look typed rather than computed, or None. A sha256 spreads over ~16 distinct digits
    with no structure; these patterns have a chance below 1e-6 of occurring in a real one."""
    if len(set(hex_digest)) < 8:
        return f"uses only {len(set(hex_digest))} distinct hex digits"
    for period in range(1, 17):
        if hex_digest == (hex_digest[:period] * (64 // period + 1))[:64]:
            return f"repeats {hex_digest[:period]!r}"
    for start in range(0, 64 - 7):
        window = hex_digest[start:start + 8]
        if window in _HEX_CYCLE or window[::-1] in _HEX_CYCLE:
            return f"holds the run {window!r}"
    word = next((w for w in _HEX_WORDS if w in hex_digest), None)
    return f"holds the word {word!r}" if word else None


@functools.cache
def _digest_known(image: str, timeout: float, offline: bool) -> bool | None:
    location = oci_registry.locate_pinned(image)
    if location is None:
        return None
    try:
        return oci_registry.manifest_known(location, timeout=timeout)
    except oci_registry.RegistryError:
        return None


def digest_resolves(image: str, timeout: float = 5.0) -> bool | None:
    """Whether the image's registry knows its digest (HEAD /v2/<repo>/manifests/<digest>, anonymous token
    when asked): True, False (404: it does not resolve), or None (not asked: offline; or the registry could not
    tell: unreachable, refused, needs credentials)."""
    return _digest_known(image, timeout, oci_registry.offline())


def _pinned_containers(resource_type: str, props: Props) -> list[tuple[Mapping[str, Any], str, str]]:
    """(container, image, digest hex) of every container whose image is pinned by a sha256 digest."""
    if not is_workload(resource_type):
        return []
    _, pod_spec = pod_template(resource_type, props)
    return [(c, image, match["hex"]) for c in _containers(pod_spec) for image in [c.get("image")]
            if isinstance(image, str) and (match := _PINNED.match(image))]


def unchecked_digests(resource_type: str, props: Props) -> list[str]:
    """The pinned images whose digest no registry was asked about (offline) or could answer for: the checks
    ``check_digests`` could not make, for a report to name."""
    return [image for _, image, hex_digest in _pinned_containers(resource_type, props)
            if not placeholder_digest(hex_digest) and digest_resolves(image) is None]


def check_digests(resource_type: str, props: Props) -> list[str]:
    """A pinned digest must be real: not a typed placeholder, and known to its registry."""
    out = []
    for c, image, hex_digest in _pinned_containers(resource_type, props):
        why = placeholder_digest(hex_digest)
        if why:
            out.append(f"{workload_name(props)}: container {c.get('name')!r} image {image!r}: the digest {why}: "
                       "a placeholder, not one a registry returned")
        elif digest_resolves(image) is False:
            out.append(f"{workload_name(props)}: container {c.get('name')!r} image {image!r}: the digest does not "
                       "resolve in its registry (manifest unknown)")
    return out


RESOURCE_POLICIES: tuple[PolicyDef, ...] = (
    PolicyDef("pods-run-as-non-root", "Pods run as non-root except waived workloads.", check_non_root),
    PolicyDef("resources-requests-and-limits", "Containers set cpu/memory requests and limits.",
              check_resources),
    PolicyDef("liveness-and-readiness-probes", "Containers declare liveness and readiness probes.",
              check_probes),
    PolicyDef("images-pinned", "No latest or untagged images.", check_images),
    PolicyDef("image-digests-real", "Pinned digests resolve in their registry and are no placeholders.",
              check_digests),
    PolicyDef("no-plaintext-secrets", "No v1 Secret with data/stringData.", check_no_plaintext_secret),
    PolicyDef("ragflow-arch-pinned", "Ragflow pins kubernetes.io/arch.", check_arch_pinned),
)


# --- stack policy: every workload is selected by some NetworkPolicy in its namespace ---

def _expression_matches(expr: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    key, op, values = expr.get("key"), expr.get("operator"), _list(expr.get("values"))
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False


def selector_matches(selector: Any, labels: Mapping[str, Any]) -> bool:
    """Kubernetes label-selector semantics; an empty selector selects everything."""
    selector = _dict(selector)
    match_labels = _dict(selector.get("matchLabels"))
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    return all(_expression_matches(_dict(e), labels) for e in _list(selector.get("matchExpressions")))


def _namespace(props: Props) -> str:
    return str(_dict(props.get("metadata")).get("namespace") or "default")


def check_network_policy_coverage(resources: Iterable[tuple[str, Props]]) -> list[str]:
    """Each workload's pods are selected by at least one NetworkPolicy in the same namespace."""
    resources = list(resources)
    policies = [(_namespace(p), _dict(p.get("spec")).get("podSelector")) for t, p in resources
                if kind_of(t) == "NetworkPolicy"]
    out = []
    for resource_type, props in resources:
        if not is_workload(resource_type):
            continue
        pod_meta, _ = pod_template(resource_type, props)
        labels = _dict(pod_meta.get("labels"))
        ns = _namespace(props)
        if not any(pns == ns and selector_matches(sel, labels) for pns, sel in policies):
            out.append(f"{kind_of(resource_type)} {ns}/{workload_name(props)}: no NetworkPolicy selects "
                       f"its pods (labels {labels})")
    return out


STACK_POLICIES: tuple[tuple[str, str, Callable[[Iterable[tuple[str, Props]]], list[str]]], ...] = (
    ("workloads-selected-by-network-policy", "Every workload is selected by a NetworkPolicy.",
     check_network_policy_coverage),
)


@dataclass(frozen=True)
class Violation:
    policy: str
    resource: str
    message: str


def evaluate(resources: Iterable[tuple[str, str, Props]]) -> list[Violation]:
    """All mandatory violations over (urn or name, type, props) triples, as the offline preview needs."""
    resources = list(resources)
    found = [Violation(p.name, ref, msg) for ref, rtype, props in resources for p in RESOURCE_POLICIES
             for msg in p.check(rtype, props)]
    for name, _, check in STACK_POLICIES:
        found += [Violation(name, "stack", msg) for msg in check((t, p) for _, t, p in resources)]
    return found
