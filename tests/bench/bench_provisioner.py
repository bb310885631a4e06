"""Benchmark: Saleor deliveries accepted per second into the PostgreSQL inbox, beside what that PostgreSQL can
commit, and delivery -> CP latency.

Run with ``make bench-provisioner``. It starts its own PostgreSQL 15 (fsync on, as in production), the real
``cmp-provisioner`` console script (one uvicorn process, default settings, INFO logs to a file), a minimal
control-plane stub in its own process, and drives the webhook with wrk from bodies signed as Saleor signs them
(detached JWS, RS256, ``b64:false``, the key at a JWKS on loopback), each a new order, so every request is a
real insert, not a duplicate:
  1. deliveries, worker off: accepted/s = rows committed / wall time;
  2. the floor: durable single-row commits/s on one psycopg connection to the same PostgreSQL (an INSERT of a
     delivery-sized row, then COMMIT, waiting for the WAL flush), so the ratio says how the service compares
     with one row per transaction on this machine and this disk;
  3. the worker alone (no deliveries arriving) draining the rows phase 1 left pending: rows/s;
  4. an open-loop sender at half the accepted rate with the worker on: per order, the time from sending the
     delivery to the control plane receiving POST /instances (p50, p99).
Writes build/bench/provisioner.json. Figures depend on what else runs on the machine: the run prints its load.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.services.provisioner.helpers import SigningKey, serving_jwks  # noqa: E402
from tests.support.net import free_port, wait_http  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

OUT = ROOT / "build" / "bench" / "provisioner.json"
JWT_SECRET = "bench-service-jwt-secret-0123456789abcdef"
PATH = "/webhooks/order-fully-paid"
DURATION_S = int(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = 32
TARGET_ACCEPTED_PER_S = 1000


def order_body(order_id: str) -> bytes:
    payload = {
        "__typename": "OrderFullyPaid",
        "order": {
            "id": order_id,
            "number": "42",
            "userEmail": "buyer@example.com",
            "channel": {"slug": "default-channel"},
            "total": {"gross": {"amount": 10.0, "currency": "USD"}},
            "lines": [
                {
                    "id": "T3JkZXJMaW5lOjE=",
                    "quantity": 1,
                    "productSku": "ov_100:pro",
                    "variant": {
                        "id": "UHJvZHVjdFZhcmlhbnQ6MQ==",
                        "sku": "ov_100:pro",
                        "metadata": [
                            {"key": "cmp.offering_version_id", "value": "ov_100"},
                            {"key": "cmp.plan_id", "value": "pro"},
                        ],
                    },
                }
            ],
        },
    }
    return json.dumps(payload, separators=(",", ":")).encode()


WRK_LUA = textwrap.dedent(
    """
    local requests = {}
    local count = 0
    local i = 0
    init = function(args)
      for line in io.lines(args[1]) do
        local sig, api, body = line:match("^([^\\t]*)\\t([^\\t]*)\\t(.*)$")
        local headers = {["Content-Type"] = "application/json", ["Saleor-Event"] = "order_fully_paid",
                         ["Saleor-Signature"] = sig}
        headers["Saleor-Api-Url"] = api
        count = count + 1
        requests[count] = wrk.format("POST", "WEBHOOK_PATH", headers, body)
      end
    end
    request = function()
      i = i + 1
      if i > count then i = 1 end
      return requests[i]
    end
    """
).replace("WEBHOOK_PATH", PATH)


def write_requests(path: Path, rows: list[tuple[str, str, bytes]]) -> None:
    with path.open("wb") as handle:
        for signature, api_url, body in rows:
            handle.write(signature.encode() + b"\t" + api_url.encode() + b"\t" + body + b"\n")


def run_wrk(url: str, script: Path, requests_file: Path, seconds: float) -> dict:
    result = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            url + PATH,
            "--",
            str(requests_file),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr.strip() or result.stdout}")
    out = result.stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = re.search(r"(\d+) requests in ([\d.]+)s", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "requests": int(total.group(1)),
        "seconds": float(total.group(2)),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "wrk_p50_ms": float(p50.group(1)) * scale[p50.group(2)] if p50 else None,
    }


def rows_in(dsn: str, where: str = "TRUE") -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return conn.execute(f"SELECT count(*) FROM provisioner_inbox WHERE {where}").fetchone()[0]


def measure_drain(dsn: str, seconds: float) -> dict:
    """Rows the (running) worker settles per second while nothing new arrives."""
    pending = rows_in(dsn, "status = 'pending'")
    start, left = time.perf_counter(), pending
    while time.perf_counter() - start < seconds and left:
        time.sleep(0.1)
        left = rows_in(dsn, "status = 'pending'")
    elapsed = time.perf_counter() - start
    figures = {"rows_per_s": round((pending - left) / elapsed, 1), "rows": pending - left, "seconds": round(elapsed, 2)}
    print(f"  worker drain: {pending - left} of {pending} pending in {elapsed:.1f}s, {figures['rows_per_s']:.0f}/s")
    return figures


CP_STUB = textwrap.dedent(
    """
    import json, sys, time, itertools
    import uvicorn
    arrivals = {}
    ids = itertools.count(1)
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/instances":
            arrivals.setdefault(json.loads(body)["order_id"], time.time())
            answer, status = json.dumps({"instance_id": f"inst_{next(ids)}", "status": "active"}).encode(), 201
        elif scope["path"] == "/arrivals":
            answer, status = json.dumps(arrivals).encode(), 200
        else:
            answer, status = b"{}", 404
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
    """
)


class Provisioner:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        script = shutil.which("cmp-provisioner", path=str(Path(sys.executable).parent))
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [script, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_http(self.url + "/readyz", ok=lambda r: r.status_code == 200)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self._log.close()


async def open_loop(url: str, rows: list[tuple[str, bytes]], rate: float, connections: int = 16) -> dict[str, float]:
    """Send ``rows`` at ``rate``/s over keep-alive connections without waiting for answers; send time by order."""
    host, port = "127.0.0.1", int(url.rsplit(":", 1)[1])
    sent: dict[str, float] = {}
    statuses: dict[int, int] = {}
    pipes = [await asyncio.open_connection(host, port) for _ in range(connections)]

    async def read_responses(reader: asyncio.StreamReader, expected: int) -> None:
        for _ in range(expected):
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            statuses[status] = statuses.get(status, 0) + 1
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)

    per_conn = [0] * connections
    for index in range(len(rows)):
        per_conn[index % connections] += 1
    readers = [asyncio.create_task(read_responses(r, per_conn[i])) for i, (r, _) in enumerate(pipes)]
    start = time.perf_counter()
    for index, (order_id, request) in enumerate(rows):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        writer = pipes[index % connections][1]
        sent[order_id] = time.time()
        writer.write(request)
    await asyncio.gather(*readers)
    for _, writer in pipes:
        writer.close()
    if set(statuses) != {200}:
        raise RuntimeError(f"latency phase got statuses {statuses}")
    return sent


def raw_request(signature: str, api_url: str, body: bytes) -> bytes:
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Saleor-Event: order_fully_paid\r\nSaleor-Signature: {signature}\r\nSaleor-Api-Url: {api_url}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def committed_at(dsn: str, prefix: str) -> dict[str, float]:
    """When each order's delivery was committed to the inbox (its ``received_at``, naive UTC), epoch seconds."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT order_id, extract(epoch FROM received_at) FROM provisioner_inbox WHERE order_id LIKE %s",
            (prefix + "-%",),
        ).fetchall()
    return {order_id: float(at) for order_id, at in rows}


def measure_latency(url: str, cp_port: int, saleor, prefix: str, rate: float, total: int, dsn: str) -> dict:
    """Send ``total`` new paid orders at ``rate``/s; per order, send -> the CP stub receiving POST /instances,
    and the part of it until the delivery was in the inbox (the rest is the worker's)."""
    key = saleor.keys[0]
    orders = [
        (f"{prefix}-{i}", raw_request(key.sign(b := order_body(f"{prefix}-{i}")), saleor.api_url, b))
        for i in range(total)
    ]
    sent = asyncio.run(open_loop(url, orders, rate))
    deadline = time.monotonic() + 120
    while True:
        arrivals = httpx.get(f"http://127.0.0.1:{cp_port}/arrivals", timeout=10).json()
        if all(o in arrivals for o in sent) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    latencies = [(arrivals[o] - sent[o]) * 1000 for o in sent if o in arrivals]
    committed = committed_at(dsn, prefix)
    to_inbox = [(committed[o] - sent[o]) * 1000 for o in sent if o in committed]
    figures = {
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "to_inbox_p50_ms": round(percentile(to_inbox, 0.50), 2),
        "to_inbox_p99_ms": round(percentile(to_inbox, 0.99), 2),
        "rate_per_s": round(rate, 1),
        "orders": len(sent),
        "missing": len(sent) - len(latencies),
    }
    print(
        f"  delivery->CP at {rate:.0f}/s over {len(sent)} orders: p50 {figures['p50_ms']} ms, "
        f"p99 {figures['p99_ms']} ms, missing {figures['missing']} (to the inbox: p50 {figures['to_inbox_p50_ms']} ms,"
        f" p99 {figures['to_inbox_p99_ms']} ms)"
    )
    return figures


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure_floor(dsn: str, body_bytes: int, seconds: float) -> dict:
    """Durable single-row commits/s on one connection: INSERT one delivery-sized row, COMMIT (synchronous_commit
    on, so each waits for its WAL flush), again, for ``seconds``. The table is dropped after."""
    import psycopg

    payload = b"x" * body_bytes
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_floor (id bigserial PRIMARY KEY, order_id text UNIQUE, payload bytea)")
        try:
            count, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds:
                conn.execute("INSERT INTO bench_floor (order_id, payload) VALUES (%s, %s)", (f"floor-{count}", payload))
                count += 1
        finally:
            conn.execute("DROP TABLE bench_floor")
    figures = {"commits_per_s": round(count / elapsed, 1), "commits": count, "seconds": round(elapsed, 2)}
    print(f"  floor: {count} single-row commits in {elapsed:.1f}s on one connection, {figures['commits_per_s']:.0f}/s")
    return figures


def measure_acceptance(provisioner: Provisioner, saleor, work: Path, dsn: str) -> dict:
    """wrk on the webhook with pre-signed new orders, the worker off: a short warm-up, then the measured run."""
    script = work / "deliveries.lua"
    script.write_text(WRK_LUA)
    key = saleor.keys[0]
    figures = {}
    for name, seconds in (("warmup", 1), ("jws", DURATION_S)):
        count = int(seconds * 4000)  # more than one process accepts, so no body is sent twice
        t0 = time.perf_counter()
        rows = [(key.sign(b := order_body(f"{name}-{i}")), saleor.api_url, b) for i in range(count)]
        print(f"{name}: signed {count} bodies in {time.perf_counter() - t0:.1f}s")
        requests_file = work / f"{name}.tsv"
        write_requests(requests_file, rows)
        before = rows_in(dsn)
        run = run_wrk(provisioner.url, script, requests_file, seconds)
        stored = rows_in(dsn) - before
        if run["requests"] > count:
            print(f"  warning: wrk sent {run['requests']} > {count} bodies; the rest were duplicates")
        accepted = stored / run["seconds"]
        print(
            f"  {name}: {run['requests']} requests, {stored} new inbox rows, non-2xx {run['non_2xx']},"
            f" {accepted:.0f} accepted/s (wrk p50 {run['wrk_p50_ms']} ms, {CONNECTIONS} connections)"
        )
        figures = {
            "accepted_per_s": round(accepted, 1),
            "requests": run["requests"],
            "non_2xx": run["non_2xx"],
            "seconds": run["seconds"],
        }
    return figures


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("bench-provisioner needs wrk (bash .ci/system-deps.sh)")
    print(f"load average before: {os.getloadavg()}; cpus: {os.cpu_count()}")
    work = Path(tempfile.mkdtemp(prefix="bench-prov-"))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    with PostgresServer(fsync=True) as pg, serving_jwks([SigningKey("bench-key")]) as saleor:
        cp_port = free_port()
        cp = subprocess.Popen([sys.executable, "-c", CP_STUB, str(cp_port)])
        try:
            wait_http(f"http://127.0.0.1:{cp_port}/arrivals")
            base_env = {
                "DATABASE_URL": pg.create_database("bench"),
                "CONTROL_PLANE_URL": f"http://127.0.0.1:{cp_port}",
                "SERVICE_JWT_SECRET": JWT_SECRET,
                "SALEOR_ALLOWED_ORIGINS": saleor.origin,
                "LOG_LEVEL": "INFO",
            }
            dsn = pg.dsn("bench")
            # 1: acceptance, worker off; 2: the floor on the same PostgreSQL, right after.
            provisioner = Provisioner({**base_env, "WORKER_ENABLED": "false"}, work / "accept.log")
            try:
                results["jws"] = measure_acceptance(provisioner, saleor, work, dsn)
            finally:
                provisioner.stop()
            results["floor"] = measure_floor(dsn, len(order_body("floor-0")), DURATION_S)

            # 3: the worker alone, draining what phase 1 left pending.
            provisioner = Provisioner(base_env, work / "drain.log")
            try:
                results["worker_drain"] = measure_drain(dsn, DURATION_S)
            finally:
                provisioner.stop()

            # 4: delivery -> control plane at half the accepted rate, worker on; then at a light 50/s for
            # contrast. BENCH_RATE overrides it, to compare runs at one fixed rate.
            rate = float(os.environ.get("BENCH_RATE") or results["jws"]["accepted_per_s"] / 2)
            # A fresh database: the rows of phase 1 are pending (no worker ran) and would be worked first.
            latency_env = {**base_env, "DATABASE_URL": pg.create_database("bench_latency")}
            provisioner = Provisioner(latency_env, work / "latency.log")
            try:
                dsn = pg.dsn("bench_latency")
                results["delivery_to_cp"] = measure_latency(
                    provisioner.url, cp_port, saleor, "half", rate, int(rate * DURATION_S), dsn
                )
                results["delivery_to_cp_at_50_per_s"] = measure_latency(
                    provisioner.url, cp_port, saleor, "light", 50, 150, dsn
                )
            finally:
                provisioner.stop()
        finally:
            cp.terminate()
            cp.wait(timeout=10)
    results["machine"] = {"cpus": os.cpu_count(), "load_average_after": os.getloadavg()}
    accepted, floor = results["jws"]["accepted_per_s"], results["floor"]["commits_per_s"]
    results["jws_to_floor_ratio"] = round(accepted / floor, 2)
    results["target"] = {"jws_accepted_per_s": TARGET_ACCEPTED_PER_S, "met": accepted >= TARGET_ACCEPTED_PER_S}
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"JWS deliveries {accepted:.0f}/s (target >= {TARGET_ACCEPTED_PER_S}: "
        f"{'met' if results['target']['met'] else 'NOT met'}); floor: {floor:.0f} durable single-row commits/s "
        f"on one connection; ratio {results['jws_to_floor_ratio']:.2f}; wrote {OUT.relative_to(ROOT)}"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
