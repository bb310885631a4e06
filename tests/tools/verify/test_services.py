"""Verify's service checks: /readyz, and the provisioner's catch-up lag read from its Prometheus /metrics."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI, Response
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from tests.support.net import run_uvicorn_in_thread
from tests.support.tiers import server_fixture
from tests.tools.verify.helpers import target
from tools.verify import services
from tools.verify.result import Status


class Provisioner:
    """/readyz and /metrics as the provisioner serves them; the lag gauge is what a test sets (None: not exported)."""

    def __init__(self) -> None:
        self.lag: float | None = 0.0
        self.app = FastAPI()

        @self.app.get("/readyz")
        async def readyz() -> dict:
            return {"status": "ready"}

        @self.app.get("/metrics")
        async def metrics() -> Response:
            registry = CollectorRegistry()
            if self.lag is not None:
                Gauge(services.CATCHUP_LAG, "catch-up cursor lag", registry=registry).set(self.lag)
            return Response(generate_latest(registry), media_type="text/plain")


@server_fixture
def provisioner() -> Iterator[tuple[Provisioner, str]]:
    fake = Provisioner()
    with run_uvicorn_in_thread(fake.app) as url:
        yield fake, url


def lag_check(url: str):
    checks = services.check(target(service_urls={"provisioner": url, "connectorGateway": url}))
    return {c.name: c for c in checks}["provisioner catch-up lag"]


def test_a_lag_within_the_alerts_bound_is_ok_and_past_it_fails(provisioner):
    fake, url = provisioner
    fake.lag = 290.0
    check = lag_check(url)
    assert (check.status, check.reason) == (Status.OK, "290 s behind (bound 1800 s)")
    fake.lag = 4000.0
    check = lag_check(url)
    assert check.status is Status.FAIL and check.reason.startswith("4000 s behind, over the bound of 1800 s")


def test_no_completed_read_and_no_metric_fail_saying_so(provisioner):
    fake, url = provisioner
    fake.lag = float("inf")  # the provisioner's value until a first read completed
    assert "has not completed a read of Saleor yet" in lag_check(url).reason
    fake.lag = None
    assert lag_check(url).reason.endswith("this provisioner does not catch up with Saleor")
