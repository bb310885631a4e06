"""Benchmark: added latency and throughput of the connector gateway against one nginx hop and the direct call.

One run, one machine, the same upstream fake (tests/services/connector_gateway/fakes.py, Zendesk's
``GET /api/v2/tickets/{id}.json``) reached three ways:
  direct   the load generator calls the fake;
  nginx    through Debian's nginx as a keep-alive reverse proxy (config generated into a temp dir);
  gateway  ``POST /v1/tools/zendesk.get_ticket:invoke`` through ``cmp-connector-gateway`` (uvicorn, 2 workers),
           with a real OpenBao and the control-plane fake behind it, policy and credentials warm in cache, the
           caller's ES256 token verified against the control-plane fake's JWKS (CALLER_AUTH_MODE=jwks); tracing off.
  traced   the same gateway with traces on, every call sampled (OTEL_TRACES_SAMPLER=always_on), exported over
           OTLP/HTTP to a local sink that accepts them; shown beside the targets, which are the untraced gateway's.
Latency: an open-loop async client at a fixed rate (RATE calls/s). The three targets take turns in short rounds;
"added" is the median over rounds of (target - direct) within the same round, so a noisy neighbour on the
shared machine, which lasts seconds, shifts both sides of a difference rather than one target.
Throughput: wrk (closed loop, a few connection counts); the best error-free requests/s.
Writes build/bench/gateway.json. Run with `make bench-gateway`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from base64 import b64encode
from contextlib import ExitStack
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from components.vault.paths import CONNECTOR_CREDENTIALS_PREFIX, CONNECTOR_MOUNT  # noqa: E402
from tests.support.control_plane import ControlPlaneFake  # noqa: E402
from tests.support.net import free_port, wait_http  # noqa: E402
from tests.support.openbao import OpenBaoServer  # noqa: E402

RATE = float(os.environ.get("BENCH_RATE", "200"))
LATENCY_SECONDS = float(os.environ.get("BENCH_LATENCY_SECONDS", "1.5"))
LATENCY_ROUNDS = int(os.environ.get("BENCH_LATENCY_ROUNDS", "5"))
WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "4"))
CONNECTIONS = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "16,32,64").split(",")]
GATEWAY_WORKERS = os.environ.get("BENCH_GATEWAY_WORKERS", "2")
JWT_SECRET = "bench-connector-jwt-secret-0123456789"
ZENDESK_EMAIL, ZENDESK_TOKEN = "bot@acme.test", "zd-bench-token"
BASIC = "Basic " + b64encode(f"{ZENDESK_EMAIL}/token:{ZENDESK_TOKEN}".encode()).decode()
TICKET_PATH = "/api/v2/tickets/1.json"
INVOKE_PATH = "/v1/tools/zendesk.get_ticket:invoke"
INVOKE_BODY = json.dumps({"binding": "zd", "arguments": {"ticket_id": 1}})

ZENDESK_LOGINS = {f"{ZENDESK_EMAIL}/token": ZENDESK_TOKEN}
# A trace collector for the traced gateway: takes every OTLP/HTTP export (an empty 200 is a valid answer) and
# counts them at GET /count.
OTLP_SINK_APP = """
exports = 0


async def app(scope, receive, send):
    global exports
    while (await receive()).get("more_body"):
        pass
    body = b""
    if scope["method"] == "POST":
        exports += 1
    else:
        body = str(exports).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/x-protobuf")]})
    await send({"type": "http.response.body", "body": body})
"""
UPSTREAM_APP = (
    "from tests.services.connector_gateway.fakes import SaaSFake\n"
    f"app = SaaSFake(zendesk_logins={ZENDESK_LOGINS!r}, record=False)\n"
)

NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fcgi;
  uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  upstream saas {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://saas;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }}
  }}
}}
"""


def start(cmd: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def fixed_rate(url: str, method: str, headers: dict[str, str], body: str | None, rate: float,
                     seconds: float) -> list[float]:
    """Open loop: one request every 1/rate s regardless of answers; latency in ms of each 200."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        for _ in range(4):  # warm the pools, and every worker's caches (concurrent calls spread over workers)
            await asyncio.gather(*(client.request(method, url, headers=headers, content=body) for _ in range(32)))

        async def one() -> None:
            nonlocal errors
            t0 = time.perf_counter()
            r = await client.request(method, url, headers=headers, content=body)
            if r.status_code == 200:
                latencies.append((time.perf_counter() - t0) * 1000)
            else:
                errors += 1

        tasks = []
        start_at = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            delay = start_at + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    if errors:
        raise RuntimeError(f"{url}: {errors} non-200 answers at {rate}/s")
    return latencies


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def wrk(url: str, connections: int, seconds: int, script: Path) -> tuple[float, int]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(x) for x in sock.groups())
    return rps, errors


def wrk_script(path: Path, method: str, headers: dict[str, str], body: str | None) -> Path:
    lines = [f'wrk.method = "{method}"']
    for key, value in headers.items():
        lines.append(f'wrk.headers["{key}"] = "{value}"')
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    results: dict[str, dict[str, float]] = {}
    with ExitStack() as stack:
        upstream_port, nginx_port, gateway_port = free_port(), free_port(), free_port()
        (tmp / "upstream_app.py").write_text(UPSTREAM_APP)
        upstream = start([sys.executable, "-m", "uvicorn", "upstream_app:app", "--app-dir", str(tmp), "--port",
                          str(upstream_port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                          "--log-level", "warning"], env={"PYTHONPATH": str(ROOT)}, log=tmp / "upstream.log")
        stack.callback(stop, upstream)

        openbao = OpenBaoServer().start()
        stack.callback(openbao.stop)
        openbao.client().secrets.kv.v2.create_or_update_secret(
            path=f"{CONNECTOR_CREDENTIALS_PREFIX}/acme/support/zd", mount_point=CONNECTOR_MOUNT,
            secret={"subdomain": "acme", "email": ZENDESK_EMAIL, "api_token": ZENDESK_TOKEN})
        cp = ControlPlaneFake({"cmp-connector": JWT_SECRET}).start()
        stack.callback(cp.stop)
        cp.set_policy("acme", "support", [{"binding": "zd", "connector": "zendesk", "tools": ["zendesk.get_ticket"]}],
                      ttl_seconds=3600)

        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=tmp, upstream=upstream_port, port=nginx_port))
        nginx = start(["nginx", "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"], log=tmp / "nginx.out")
        stack.callback(stop, nginx)

        gateway_env = {
            "CONTROL_PLANE_URL": cp.url, "SERVICE_JWT_SECRET": JWT_SECRET, "VAULT_ADDR": openbao.addr,
            "CALLER_JWKS_URL": f"{cp.url}/.well-known/jwks.json", "CALLER_ISSUER": cp.url,
            "VAULT_AUTH_METHOD": "token", "VAULT_TOKEN": openbao.root_token,
            "ZENDESK_BASE_URL": f"http://127.0.0.1:{upstream_port}", "RATE_LIMIT_REQUESTS_PER_MINUTE": "100000000",
            "CREDENTIAL_CACHE_TTL_SECONDS": "3600", "AUDIT_LOG": str(tmp / "audit.jsonl"), "LOG_LEVEL": "WARNING",
        }
        gateway_env["OTEL_SDK_DISABLED"] = "true"  # off whatever this shell exports
        gateway = start([str(Path(sys.executable).with_name("cmp-connector-gateway")), "--host", "127.0.0.1",
                         "--port", str(gateway_port), "--workers", GATEWAY_WORKERS], env=gateway_env,
                        log=tmp / "gateway.log")
        stack.callback(stop, gateway)
        sink_port, traced_port = free_port(), free_port()
        (tmp / "otlp_sink.py").write_text(OTLP_SINK_APP)
        sink = start([sys.executable, "-m", "uvicorn", "otlp_sink:app", "--app-dir", str(tmp), "--port",
                      str(sink_port), "--lifespan", "off", "--no-access-log", "--log-level", "warning"],
                     log=tmp / "sink.log")
        stack.callback(stop, sink)
        traced_env = {**gateway_env, "OTEL_SDK_DISABLED": "false", "OTEL_TRACES_SAMPLER": "always_on",
                      "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
                      "AUDIT_LOG": str(tmp / "audit-traced.jsonl")}
        traced = start([str(Path(sys.executable).with_name("cmp-connector-gateway")), "--host", "127.0.0.1",
                        "--port", str(traced_port), "--workers", GATEWAY_WORKERS], env=traced_env,
                       log=tmp / "gateway-traced.log")
        stack.callback(stop, traced)

        direct_url = f"http://127.0.0.1:{upstream_port}{TICKET_PATH}"
        nginx_url = f"http://127.0.0.1:{nginx_port}{TICKET_PATH}"
        gateway_url = f"http://127.0.0.1:{gateway_port}{INVOKE_PATH}"
        traced_url = f"http://127.0.0.1:{traced_port}{INVOKE_PATH}"
        for url in (direct_url, nginx_url, f"http://127.0.0.1:{gateway_port}/healthz",
                    f"http://127.0.0.1:{traced_port}/healthz", f"http://127.0.0.1:{sink_port}/count"):
            wait_http(url, timeout=30, ok=lambda r: r.status_code in (200, 401))

        token = cp.caller_keys.mint({"org": "acme", "project": "support", "sub": "bench"}, alg="ES256",
                                    lifetime=3600)
        get_headers = {"authorization": BASIC}
        invoke_headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        targets = {
            "direct": (direct_url, "GET", get_headers, None),
            "nginx": (nginx_url, "GET", get_headers, None),
            "gateway": (gateway_url, "POST", invoke_headers, INVOKE_BODY),
            "traced": (traced_url, "POST", invoke_headers, INVOKE_BODY),
        }
        for url in (gateway_url, traced_url):
            check = httpx.post(url, headers=invoke_headers, content=INVOKE_BODY, timeout=10)
            if check.status_code != 200:
                raise SystemExit(f"gateway answered {check.status_code}: {check.text}")

        samples: dict[str, list[float]] = {name: [] for name in targets}
        added: dict[str, list[tuple[float, float]]] = {"nginx": [], "gateway": [], "traced": []}
        for round_no in range(LATENCY_ROUNDS):
            this: dict[str, tuple[float, float]] = {}
            for name, (url, method, headers, body) in targets.items():
                values = asyncio.run(fixed_rate(url, method, headers, body, RATE, LATENCY_SECONDS))
                samples[name] += values
                this[name] = (percentile(values, 50), percentile(values, 99))
            for name in added:
                added[name].append((this[name][0] - this["direct"][0], this[name][1] - this["direct"][1]))
            print(f"round {round_no + 1}: " + "  ".join(f"{n} p50 {v[0]:.3f} p99 {v[1]:.3f}" for n, v in this.items()))
        for name, values in samples.items():
            print(f"{name:8s} at {RATE:.0f}/s, all rounds: p50 {percentile(values, 50):.3f} ms  "
                  f"p99 {percentile(values, 99):.3f} ms ({len(values)} calls)")

        throughput: dict[str, float] = {}
        for name, (url, method, headers, body) in targets.items():
            script = wrk_script(tmp / f"{name}.lua", method, headers, body)
            best = 0.0
            for connections in CONNECTIONS:
                rps, errors = wrk(url, connections, WRK_SECONDS, script)
                print(f"{name:8s} wrk -c{connections}: {rps:,.0f} req/s, {errors} errors")
                if errors == 0:
                    best = max(best, rps)
            throughput[name] = best

        for name in ("nginx", "gateway", "traced"):
            results[name] = {
                "p50_added_ms": round(statistics.median(a[0] for a in added[name]), 3),
                "p99_added_ms": round(statistics.median(a[1] for a in added[name]), 3),
                "max_rps": round(throughput[name], 1),
            }
        direct = samples["direct"]
        results["direct"] = {"p50_ms": round(percentile(direct, 50), 3), "p99_ms": round(percentile(direct, 99), 3),
                             "max_rps": round(throughput["direct"], 1)}
        results["conditions"] = {"load_avg_1m_at_end": round(os.getloadavg()[0], 2),
                                 "rate_per_s": RATE, "latency_seconds": LATENCY_SECONDS * LATENCY_ROUNDS,
                                 "wrk_seconds": WRK_SECONDS, "connections": CONNECTIONS,
                                 "gateway_workers": int(GATEWAY_WORKERS), "cpus": os.cpu_count()}
        results["traced"]["otlp_exports"] = int(httpx.get(f"http://127.0.0.1:{sink_port}/count", timeout=5).text)

    out = ROOT / "build" / "bench" / "gateway.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(f"{'':8s} {'p50 added':>10s} {'p99 added':>10s} {'max calls/s':>12s}")
    for name in ("nginx", "gateway", "traced"):
        r = results[name]
        print(f"{name:8s} {r['p50_added_ms']:>8.3f}ms {r['p99_added_ms']:>8.3f}ms {r['max_rps']:>12,.0f}")
    print(f"traced: every call sampled, {results['traced']['otlp_exports']} OTLP exports received (not a target)")
    g = results["gateway"]
    share = g["max_rps"] / results["nginx"]["max_rps"] if results["nginx"]["max_rps"] else 0.0
    results["gateway"]["rps_share_of_nginx"] = round(share, 3)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"targets: gateway p50 added <= 2 ms at {RATE:.0f}/s: {'met' if g['p50_added_ms'] <= 2 else 'MISSED'}; "
          f"throughput >= 15% of the nginx hop: {share:.0%} {'met' if share >= 0.15 else 'MISSED'}")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
