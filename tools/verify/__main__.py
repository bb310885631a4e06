"""`python -m tools.verify --stack <stack>`: check a deployed stack; one line per check, exit 1 on any FAIL.

Credentials (as `pulumi up` uses them) come from the environment: VAULT_TOKEN, SALEOR_STAFF_PASSWORD,
KUBECONFIG; CMP_VERIFY_CP_JWT_SECRET and CMP_PROBE_INSTANCE_ID optionally. docs/verify.md has the details.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.cli import OneLineParser
from tools.verify.result import Check

AREAS = ("saleor", "vault", "control-plane", "services", "ragflow")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m tools.verify", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="the stack (a Pulumi.<stack>.yaml beside Pulumi.yaml)")
    parser.add_argument("--outputs", type=Path, help="the stack's outputs as JSON (default: pulumi stack output)")
    parser.add_argument("--since", default="1h", help="window for failed Saleor deliveries: 30m, 2h (default 1h)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--url", action="append", default=[], metavar="SERVICE=URL",
                        help="a service's address instead of its in-cluster URL (connectorGateway=, provisioner=)")
    parser.add_argument("--saleor-url", help="Saleor's GraphQL URL (default: saleor.apiUrl)")
    parser.add_argument("--vault-addr", help="Vault's address (default: VAULT_ADDR, else vault.address)")
    parser.add_argument("--control-plane-url", help="the control plane's address (default: controlPlaneUrl)")
    parser.add_argument("--probe-instance-id", help="the stack's probe instance (default: CMP_PROBE_INSTANCE_ID)")
    parser.add_argument("--cp-issuer", default="cmp-connector", help="the service the probe calls as")
    parser.add_argument("--kubeconfig", help="cluster for the Ragflow checks (default: KUBECONFIG; none: skip)")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("--port-forward", action="store_true",
                        help="reach in-cluster addresses through kubectl port-forward (needs a kubeconfig)")
    parser.add_argument("--only", action="append", choices=AREAS, help="run only these areas (repeatable)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    return parser.parse_args(argv)


def run(target, areas: tuple[str, ...] = AREAS) -> list[Check]:
    from tools.verify import control_plane, ragflow, saleor, services, vault

    modules = {"saleor": saleor, "vault": vault, "control-plane": control_plane, "services": services,
               "ragflow": ragflow}
    checks: list[Check] = []
    for area in areas:
        checks += modules[area].check(target)
    return checks


def main(argv: list[str] | None = None, *, root: Path | None = None) -> int:
    from tools.verify.inputs import PROJECT_ROOT, InputError, Target, load_config, parse_duration, read_outputs
    from tools.verify.result import as_json, as_text, exit_code

    args = parse_args(argv)
    try:
        urls = {}
        for item in args.url:
            service, sep, url = item.partition("=")
            if not sep or not url:
                raise InputError(f"--url {item!r}: expected SERVICE=URL, e.g. provisioner=http://127.0.0.1:8001")
            urls[service] = url
        target = Target(stack=args.stack, outputs=read_outputs(args.stack, args.outputs),
                        config=load_config(args.stack, root or PROJECT_ROOT), service_urls=urls,
                        saleor_url=args.saleor_url, vault_addr=args.vault_addr,
                        control_plane_url=args.control_plane_url, since=parse_duration(args.since),
                        probe_instance_id=args.probe_instance_id, cp_issuer=args.cp_issuer,
                        kubeconfig=args.kubeconfig, kube_context=args.context, timeout=args.timeout)
    except InputError as exc:
        print(f"error: verify {args.stack}: {exc}", file=sys.stderr)
        return 2
    areas = tuple(args.only or AREAS)
    if not args.port_forward:
        checks = run(target, areas)
    else:
        from tools.verify.forward import ForwardError, forwarded

        urls = {f"service:{k}": v for k, v in target.service_urls.items()}
        urls |= {"saleor": target.saleor_url, "vault": target.vault_addr, "cp": target.control_plane_url}
        try:
            with forwarded(urls, target.kubeconfig, target.kube_context) as local:
                target.service_urls = {k.removeprefix("service:"): v for k, v in local.items()
                                       if k.startswith("service:")}
                target.saleor_url, target.vault_addr = local["saleor"], local["vault"]
                target.control_plane_url = local["cp"]
                checks = run(target, areas)
        except ForwardError as exc:
            print(f"error: verify {args.stack}: {exc}", file=sys.stderr)
            return 2
    sys.stdout.write(as_json(args.stack, checks) if args.json else as_text(checks))
    return exit_code(checks)


if __name__ == "__main__":
    sys.exit(main())
