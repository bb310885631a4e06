"""The per-org limit shared by replicas through a real redis-server, and what happens while Redis is away."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx

from components.vault.paths import CONNECTOR_CREDENTIALS_PREFIX, CONNECTOR_MOUNT
from tests.services.connector_gateway.conftest import JWT_SECRET, auth
from tests.support.caller_keys import JWKS_PATH
from tests.support.net import client_tls, free_port, stop_process, wait_http
from tests.support.redis import RedisServer
from tests.support.tiers import server_fixture

GET_TICKET = {"binding": "zd", "arguments": {"ticket_id": 1}}
QUOTA = 10


@server_fixture
def redis_server():
    with RedisServer() as server:
        yield server


@server_fixture
def gateway_processes(seeded_openbao, policies, saas, tmp_path):
    """Starts ``cmp-connector-gateway`` processes (one worker each) with the given environment on top."""
    procs: list[tuple[subprocess.Popen, Path]] = []

    def start(**env: str) -> str:
        port = free_port()
        log = tmp_path / f"gateway-{port}.log"
        values = {
            "PATH": os.environ["PATH"], "CONTROL_PLANE_URL": policies.url, "SERVICE_JWT_SECRET": JWT_SECRET,
            "CALLER_JWKS_URL": policies.url + JWKS_PATH, "CALLER_ISSUER": policies.url,
            "VAULT_ADDR": seeded_openbao.addr, "VAULT_AUTH_METHOD": "token", "VAULT_TOKEN": seeded_openbao.root_token,
            "VAULT_CONNECTOR_MOUNT": CONNECTOR_MOUNT, "VAULT_CONNECTOR_PREFIX": CONNECTOR_CREDENTIALS_PREFIX,
            "ZENDESK_BASE_URL": saas.url, "AUDIT_LOG": str(tmp_path / f"audit-{port}.jsonl"), "LOG_LEVEL": "WARNING",
            **env,
        }
        with open(log, "wb") as out:
            proc = subprocess.Popen([str(Path(sys.executable).with_name("cmp-connector-gateway")), "--host",
                                     "127.0.0.1", "--port", str(port)], env=values, stdout=out,
                                    stderr=subprocess.STDOUT)
        procs.append((proc, log))
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz", timeout=60, proc=proc, log=log.read_text)
        return url

    yield start
    for proc, _ in procs:
        stop_process(proc)


async def _burst(urls: list[str], count: int, org: str = "acme") -> list[httpx.Response]:
    headers = auth(org=org)
    async with httpx.AsyncClient(timeout=10, verify=client_tls()) as client:
        return await asyncio.gather(*(
            client.post(f"{urls[i % len(urls)]}/v1/tools/zendesk.get_ticket:invoke", json=GET_TICKET, headers=headers)
            for i in range(count)))


def test_two_gateway_processes_on_one_redis_admit_exactly_the_quota(gateway_processes, redis_server):
    env = {"RATE_LIMIT_REQUESTS_PER_MINUTE": str(QUOTA), "RATE_LIMIT_STORAGE_URL": redis_server.url}
    urls = [gateway_processes(**env), gateway_processes(**env)]
    asyncio.run(_burst(urls, 2, org="globex"))  # each process has its caller keys and Vault login at hand
    answers = asyncio.run(_burst(urls, 3 * QUOTA))  # at once, half to each process
    # Per process, each would admit QUOTA (twice the quota together, as the next test shows); shared, the pair
    # admits exactly QUOTA.
    assert Counter(r.status_code for r in answers) == {200: QUOTA, 429: 2 * QUOTA}
    limited = next(r for r in answers if r.status_code == 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert f"{QUOTA} requests per minute" in limited.json()["message"]
    # Another org has its own window.
    assert Counter(r.status_code for r in asyncio.run(_burst(urls, 2, org="globex"))) == {200: 2}
    assert Counter(r.status_code for r in asyncio.run(_burst(urls, 2 * QUOTA, org="globex"))) == {
        200: QUOTA - 4, 429: QUOTA + 4}


def test_without_storage_each_gateway_keeps_its_own_quota(start_gateway):
    """Two gateways in this one process: even here, without storage, neither sees the other's count."""
    urls = [start_gateway(rate_limit_requests_per_minute=QUOTA).url for _ in range(2)]
    answers = asyncio.run(_burst(urls, 3 * QUOTA))
    assert Counter(r.status_code for r in answers) == {200: 2 * QUOTA, 429: QUOTA}


def test_redis_unreachable_fails_open_with_a_metric_and_one_log_line_then_recovers(start_gateway, caplog):
    redis_server = RedisServer()  # its port, not started yet
    caplog.set_level(logging.WARNING, logger="cmp.connector_gateway.ratelimit")
    gw = start_gateway(rate_limit_requests_per_minute=2, rate_limit_storage_url=redis_server.url,
                       rate_limit_storage_timeout_seconds=0.2)
    statuses = [gw.invoke("zendesk.get_ticket", GET_TICKET).status_code for _ in range(4)]
    assert statuses == [200] * 4  # open: admitted beyond the quota while Redis is away
    assert "cmp_connector_rate_limit_storage_errors_total 4.0" in gw.http.get("/metrics").text
    outage = [r.getMessage() for r in caplog.records]
    assert len(outage) == 1 and "rate-limit storage unreachable" in outage[0], outage
    assert "RATE_LIMIT_STORAGE_FAILURE=open" in outage[0]
    with redis_server:
        statuses = [gw.invoke("zendesk.get_ticket", GET_TICKET).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
    assert "reachable again" in caplog.records[-1].getMessage()


def test_redis_unreachable_fails_closed_when_set(start_gateway):
    gw = start_gateway(rate_limit_storage_url=f"redis://127.0.0.1:{free_port()}/0",
                       rate_limit_storage_failure="closed", rate_limit_storage_timeout_seconds=0.2)
    r = gw.invoke("zendesk.get_ticket", GET_TICKET)
    assert r.status_code == 503 and r.json()["error"] == "rate_limit_unavailable", r.text
    line = gw.audit()[-1]
    assert (line["org"], line["decision"], line["status"], line["error"]) == (
        "acme", "error", 503, "rate_limit_unavailable")
