"""Benchmark: what a refresh and a one-URL change cost against Saleor, with the per-app read snapshot and
without it (the baseline: every Read does its own login and query, as a naive provider would).

One run, one machine, the local Saleor fake (tests/components/saleor/fake_saleor.py) on loopback: APPS
apps, each with the three order webhooks. A refresh is every resource's Read, issued concurrently by 4
threads (the provider host's gRPC pool). Figures: requests Saleor receives and wall time, per mode, and
the ratio baseline/snapshot. Writes build/bench/saleor.json. Run with `make bench-saleor`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from components.saleor.documents import ORDER_EVENTS, order_subscription  # noqa: E402
from components.saleor.provider import SaleorAppProvider, SaleorWebhookProvider  # noqa: E402
from components.saleor.read_cache import SNAPSHOTS  # noqa: E402
from tests.components.saleor.conftest import configured  # noqa: E402
from tests.components.saleor.fake_saleor import FakeSaleor  # noqa: E402

APPS = int(os.environ.get("BENCH_SALEOR_APPS", "5"))
ROUNDS = int(os.environ.get("BENCH_SALEOR_ROUNDS", "5"))
URL = "http://cmp-provisioner.cmp.svc.cluster.local:8000/webhooks/"


def deploy(fake: FakeSaleor) -> list[tuple[str, str, dict]]:
    """(kind, id, outputs) of every resource, as state holds them after `up`."""
    apps, hooks = configured(SaleorAppProvider, fake), configured(SaleorWebhookProvider, fake)
    resources = []
    for n in range(APPS):
        app = apps.create({"name": f"CMP Provisioner {n}", "permissions": ["MANAGE_ORDERS"]})
        resources.append(("app", app.id, app.outs))
        for event in ORDER_EVENTS:
            props = {"app_id": app.id, "name": event, "target_url": URL + event.lower(), "async_events": [event],
                     "query": order_subscription(event), "is_active": True, "custom_headers": {}}
            hook = hooks.create(props)
            resources.append(("hook", hook.id, hook.outs))
    return resources


def refresh(fake: FakeSaleor, resources, cache_seconds: float) -> tuple[int, float]:
    apps = configured(SaleorAppProvider, fake, readCacheSeconds=cache_seconds)
    hooks = configured(SaleorWebhookProvider, fake, readCacheSeconds=cache_seconds)
    SNAPSHOTS.clear()
    fake.reset_counts()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        reads = list(pool.map(lambda r: (apps if r[0] == "app" else hooks).read(r[1], r[2]), resources))
    elapsed = time.perf_counter() - started
    assert all(read.id for read in reads), "every resource must read back"
    return fake.count(), elapsed


def main() -> None:
    with FakeSaleor() as fake:
        resources = deploy(fake)
        figures: dict[str, dict[str, float]] = {}
        for mode, cache_seconds in (("baseline_no_snapshot", 0.0), ("snapshot", 15.0)):
            runs = [refresh(fake, resources, cache_seconds) for _ in range(ROUNDS)]
            times = sorted(t for _, t in runs)
            figures[mode] = {"requests": runs[0][0], "median_seconds": round(times[len(times) // 2], 4)}
        hooks = configured(SaleorWebhookProvider, fake)
        _, hook_id, outs = next(r for r in resources if r[0] == "hook")
        fake.reset_counts()
        hooks.update(hook_id, outs, dict(outs, target_url=URL + "moved"))
        update = {"requests": fake.count(), "mutations": fake.count("webhookUpdate")}
    base, snap = figures["baseline_no_snapshot"], figures["snapshot"]
    result = {
        "apps": APPS,
        "resources": len(resources),
        "refresh": figures,
        "request_ratio_baseline_over_snapshot": round(base["requests"] / snap["requests"], 2),
        "time_ratio_baseline_over_snapshot": round(base["median_seconds"] / snap["median_seconds"], 2),
        "requests_per_app_refresh": snap["requests"] / APPS,
        "url_change": update,
    }
    out = ROOT / "build" / "bench" / "saleor.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
