"""Benchmark: signed Saleor deliveries accepted per second into the PostgreSQL inbox, and delivery -> CP latency.

Run with ``make bench-provisioner``. It starts its own PostgreSQL 15 (fsync on, as in production), the real
``cmp-provisioner`` console script (one uvicorn process, default settings, INFO logs to a file), a minimal
control-plane stub in its own process, and drives the webhook with wrk from pre-signed bodies (each a new
order, so every request is a real insert, not a duplicate):
  1. HMAC-signed deliveries, worker off: accepted/s = rows committed / wall time;
  2. JWS-signed (RS256, b64:false, JWKS on loopback), worker off: the same;
  3. the worker alone (no deliveries arriving) draining the rows phases 1-2 left pending: rows/s;
  4. an open-loop sender at half the HMAC rate with the worker on: per order, the time from sending the
     delivery to the control plane receiving POST /instances (p50, p99).
Writes build/bench/provisioner.json. Figures depend on what else runs on the machine: the run prints its load.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
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
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.net import free_port, run_uvicorn_in_thread, wait_http  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

OUT = ROOT / "build" / "bench" / "provisioner.json"
SECRET = "bench-saleor-webhook-secret"
JWT_SECRET = "bench-service-jwt-secret-0123456789abcdef"
PATH = "/webhooks/order-fully-paid"
DURATION_S = int(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = 32


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


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


class Signer:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "bench-key"
        self.header_b64 = b64url(json.dumps({"alg": "RS256", "b64": False, "crit": ["b64"], "kid": self.kid}).encode())

    def jwks(self) -> dict:
        numbers = self.key.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return {"keys": [{"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": b64url(n), "e": b64url(e)}]}

    def jws(self, body: bytes) -> str:
        signature = self.key.sign(self.header_b64.encode() + b"." + body, padding.PKCS1v15(), hashes.SHA256())
        return f"{self.header_b64}..{b64url(signature)}"


def hmac_hex(body: bytes) -> str:
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


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
        if api ~= "" then headers["Saleor-Api-Url"] = api end
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


def raw_request(signature: str, body: bytes) -> bytes:
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Saleor-Event: order_fully_paid\r\nSaleor-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
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


def measure_latency(url: str, cp_port: int, prefix: str, rate: float, total: int, dsn: str) -> dict:
    """Send ``total`` new paid orders at ``rate``/s; per order, send -> the CP stub receiving POST /instances,
    and the part of it until the delivery was in the inbox (the rest is the worker's)."""
    orders = [(f"{prefix}-{i}", raw_request(hmac_hex(b := order_body(f"{prefix}-{i}")), b)) for i in range(total)]
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


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("bench-provisioner needs wrk (bash .ci/system-deps.sh)")
    print(f"load average before: {os.getloadavg()}; cpus: {os.cpu_count()}")
    work = Path(tempfile.mkdtemp(prefix="bench-prov-"))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    signer = Signer()
    jwks_app = _jwks_app(signer.jwks())
    results: dict = {}
    with PostgresServer(fsync=True) as pg, run_uvicorn_in_thread(jwks_app) as jwks_url:
        api_url = jwks_url + "/graphql/"
        cp_port = free_port()
        cp = subprocess.Popen([sys.executable, "-c", CP_STUB, str(cp_port)])
        try:
            wait_http(f"http://127.0.0.1:{cp_port}/arrivals")
            db = pg.create_database("bench")
            base_env = {
                "DATABASE_URL": db,
                "CONTROL_PLANE_URL": f"http://127.0.0.1:{cp_port}",
                "SERVICE_JWT_SECRET": JWT_SECRET,
                "SALEOR_LEGACY_HMAC": "true",
                "SALEOR_WEBHOOK_SECRET": SECRET,
                "SALEOR_ALLOWED_ORIGINS": jwks_url,
                "LOG_LEVEL": "INFO",
            }
            script = work / "deliveries.lua"
            script.write_text(WRK_LUA)

            # 1 + 2: acceptance, worker off.
            provisioner = Provisioner({**base_env, "WORKER_ENABLED": "false"}, work / "accept.log")
            try:
                for name in ("warmup", "hmac", "jws"):
                    seconds = 1 if name == "warmup" else DURATION_S
                    count = int(seconds * (6000 if name != "jws" else 4000))  # more than one process accepts
                    t0 = time.perf_counter()
                    if name == "jws":
                        rows = [(signer.jws(b := order_body(f"jws-{i}")), api_url, b) for i in range(count)]
                    else:
                        rows = [(hmac_hex(b := order_body(f"{name}-{i}")), "", b) for i in range(count)]
                    print(f"{name}: signed {count} bodies in {time.perf_counter() - t0:.1f}s")
                    requests_file = work / f"{name}.tsv"
                    write_requests(requests_file, rows)
                    before = rows_in(pg.dsn("bench"))
                    run = run_wrk(provisioner.url, script, requests_file, seconds)
                    stored = rows_in(pg.dsn("bench")) - before
                    if run["requests"] > count:
                        print(f"  warning: wrk sent {run['requests']} > {count} bodies; the rest were duplicates")
                    accepted = stored / run["seconds"]
                    print(
                        f"  {name}: {run['requests']} requests, {stored} new inbox rows, non-2xx {run['non_2xx']},"
                        f" {accepted:.0f} accepted/s (wrk p50 {run['wrk_p50_ms']} ms, {CONNECTIONS} connections)"
                    )
                    if name != "warmup":
                        results[name] = {
                            "accepted_per_s": round(accepted, 1),
                            "requests": run["requests"],
                            "non_2xx": run["non_2xx"],
                            "seconds": run["seconds"],
                        }
            finally:
                provisioner.stop()

            # 3: the worker alone, draining what phases 1-2 left pending.
            provisioner = Provisioner(base_env, work / "drain.log")
            try:
                results["worker_drain"] = measure_drain(pg.dsn("bench"), DURATION_S)
            finally:
                provisioner.stop()

            # 4: delivery -> control plane at half the HMAC rate, worker on; then at a light 50/s for contrast.
            # BENCH_RATE overrides it, to compare runs at one fixed rate.
            rate = float(os.environ.get("BENCH_RATE") or results["hmac"]["accepted_per_s"] / 2)
            # A fresh database: the rows of phases 1-2 are pending (no worker ran) and would be worked first.
            latency_env = {**base_env, "DATABASE_URL": pg.create_database("bench_latency")}
            provisioner = Provisioner(latency_env, work / "latency.log")
            try:
                dsn = pg.dsn("bench_latency")
                results["delivery_to_cp"] = measure_latency(
                    provisioner.url, cp_port, "half", rate, int(rate * DURATION_S), dsn
                )
                results["delivery_to_cp_at_50_per_s"] = measure_latency(
                    provisioner.url, cp_port, "light", 50, 150, dsn
                )
            finally:
                provisioner.stop()
        finally:
            cp.terminate()
            cp.wait(timeout=10)
    results["machine"] = {"cpus": os.cpu_count(), "load_average_after": os.getloadavg()}
    hmac_rate = results["hmac"]["accepted_per_s"]
    results["target"] = {"hmac_accepted_per_s": 1000, "met": hmac_rate >= 1000}
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"HMAC {hmac_rate:.0f}/s (target >= 1000: {'met' if hmac_rate >= 1000 else 'NOT met'}), "
        f"JWS {results['jws']['accepted_per_s']:.0f}/s, JWS/HMAC ratio "
        f"{results['jws']['accepted_per_s'] / hmac_rate:.2f}; wrote {OUT.relative_to(ROOT)}"
    )
    shutil.rmtree(work, ignore_errors=True)


def _jwks_app(document: dict):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = json.dumps(document).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    return app


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
