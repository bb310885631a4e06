"""Benchmark: the Saleor requests (and wall time) of what `pulumi` does with the app and its three webhooks,
through Pulumi's real provider host, against the local Saleor fake (tests/components/saleor/fake_saleor.py),
which throttles staff logins per address as Saleor does and answers every request after LATENCY seconds.

Each scenario starts a fresh host process, as each `pulumi` command does:
- first_up: create the app, then its three webhooks at once (the engine's parallelism);
- noop_refresh: read the four resources at once;
- up_across_expiry: the app, then a wait until the staff token is near expiry, then the three webhooks;
- baseline_login_per_operation: the same first up with a login per operation (no shared token), in this
  process with four threads: what the provider did before the token was shared.
Writes build/bench/saleor.json. Run with `make bench-saleor`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import components.saleor.client as saleor_client  # noqa: E402
from components.saleor.auth import TokenStore  # noqa: E402
from components.saleor.documents import ORDER_EVENTS, order_subscription  # noqa: E402
from components.saleor.provider import SaleorAppProvider, SaleorWebhookProvider  # noqa: E402
from tests.components.saleor.conftest import configured, stack_config  # noqa: E402
from tests.components.saleor.fake_saleor import FakeSaleor  # noqa: E402
from tests.support.provider_host import ProviderHost  # noqa: E402

LATENCY = float(os.environ.get("BENCH_SALEOR_LATENCY", "0.02"))
LOGIN_SECONDS = 0.1  # Saleor's password hash check, during which the address is blocked for other logins
TOKEN_SECONDS = 1.5  # the access token's life in up_across_expiry (Saleor's is 5 minutes)
APP = {"name": "CMP Provisioner", "identifier": "cmp-provisioner", "permissions": ["MANAGE_ORDERS"]}
URL = "http://cmp-provisioner.cmp.svc.cluster.local:8000/webhooks/"


def hook(app_id: str, event: str) -> dict:
    return {"app_id": app_id, "name": ORDER_EVENTS[event], "target_url": URL + event.lower(),
            "async_events": [event], "query": order_subscription(event), "is_active": True, "custom_headers": {}}


def at_once(*calls):
    with ThreadPoolExecutor(max_workers=4) as pool:
        return [f.result() for f in [pool.submit(fn, *args) for fn, *args in calls]]


class Host:
    """A fresh provider host serving both providers, configured for `fake`."""

    def __init__(self, fake: FakeSaleor) -> None:
        self.apps = ProviderHost(SaleorAppProvider())
        self.apps.configure(stack_config(fake, retryBackoffSeconds=0.05))
        self.hooks = self.apps.serving(SaleorWebhookProvider())

    def close(self) -> None:
        self.apps.close()


def first_up(host, wait_before_webhooks: float = 0.0) -> dict:
    app_id, app_outs = host.apps.create(dict(APP))
    time.sleep(wait_before_webhooks)
    hooks = at_once(*[(host.hooks.create, hook(app_id, event)) for event in ORDER_EVENTS])
    return {"app": (app_id, app_outs), "hooks": hooks}


def measure(fake: FakeSaleor, run) -> dict:
    fake.reset_counts()
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    counts = fake.counts()
    return {"requests": sum(v for k, v in counts.items() if ":" not in k), "counts": counts,
            "seconds": round(seconds, 3), "result": result}


def scenario_hosts() -> dict:
    figures: dict[str, dict] = {}
    with FakeSaleor(login_seconds=LOGIN_SECONDS, latency_seconds=LATENCY) as fake:
        host = Host(fake)
        up = measure(fake, lambda: first_up(host))
        host.close()
        figures["first_up"] = up

        host = Host(fake)
        app_id, app_outs = up["result"]["app"]
        reads = [(host.apps.read, app_id, app_outs)] + [(host.hooks.read, i, o) for i, o in up["result"]["hooks"]]
        figures["noop_refresh"] = measure(fake, lambda: at_once(*reads))
        host.close()

    with FakeSaleor(login_seconds=LOGIN_SECONDS, latency_seconds=LATENCY, access_ttl_seconds=TOKEN_SECONDS) as fake:
        host = Host(fake)
        figures["up_across_expiry"] = measure(fake, lambda: first_up(host, wait_before_webhooks=TOKEN_SECONDS * 0.85))
        host.close()
    return figures


class _LoginPerOperation(TokenStore):
    """What the provider did before: every operation logs in for itself."""

    def grant(self, key, password, login, refresh):
        return login()


def baseline() -> dict:
    saleor_client.TOKENS = _LoginPerOperation()
    logging.getLogger("components.saleor").setLevel(logging.ERROR)  # its throttled logins are counted, not logged
    with FakeSaleor(login_seconds=LOGIN_SECONDS, latency_seconds=LATENCY) as fake:
        apps = configured(SaleorAppProvider, fake, retryBackoffSeconds=0.05)
        hooks = configured(SaleorWebhookProvider, fake, retryBackoffSeconds=0.05)

        def run():
            app = apps.create(dict(APP))
            at_once(*[(hooks.create, hook(app.id, event)) for event in ORDER_EVENTS])

        return measure(fake, run)


def main() -> None:
    figures = scenario_hosts()
    figures["baseline_login_per_operation"] = baseline()
    for found in figures.values():
        found.pop("result", None)
    out = ROOT / "build" / "bench" / "saleor.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"latency_seconds": LATENCY, "login_seconds": LOGIN_SECONDS, "scenarios": figures}
    out.write_text(json.dumps(result, indent=2) + "\n")
    for name, found in figures.items():
        counts = ", ".join(f"{k} {v}" for k, v in sorted(found["counts"].items()))
        print(f"{name:30s} {found['requests']:3d} requests in {found['seconds']:6.3f} s   ({counts})")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
