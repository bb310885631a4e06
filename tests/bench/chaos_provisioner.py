"""Chaos run: crashes, not only outages. ``make chaos-provisioner`` prints the figures; a small run is a test.

Two ``cmp-provisioner`` replicas (real processes) share one real PostgreSQL 15 (fsync on). A sender posts
ORDER_FULLY_PAID deliveries signed as Saleor signs them (detached JWS, the key at a JWKS on loopback) at a
steady rate, round-robin over the replicas, and retries a delivery that did not get a 200 the way Saleor does
(later, possibly to the other replica). Meanwhile:
  1. one replica is killed with SIGKILL while it holds leased rows (mid-batch), and started again once its rows
     have come back to the other replica (the lease is WORKER_LEASE_SECONDS);
  2. the control-plane fake goes down (its socket closed) for a while;
  3. PostgreSQL itself is killed with SIGKILL (postmaster and backends) and restarted (crash recovery).
At the end every delivery that got a 200 must have exactly one instance at the control plane: 0 lost, 0 doubled.
Then (with Saleor's schemas in CMP_SCHEMA_DIR) both replicas are down longer than Saleor retries while orders
are paid, cancelled and paid with a webhook off, and catch-up must bring each in exactly once
(tests/bench/chaos_catchup.py): ``orders missed: 0``.
Calls the worker repeats after a crash carry the same Idempotency-Key and are answered from the control plane's
replay table; they are counted, and are not duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
import httpx
import psycopg
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.bench.chaos_catchup import OutagePlan, SaleorOutage  # noqa: E402
from tests.services.provisioner.helpers import (  # noqa: E402
    SERVICE_JWT_SECRET,
    JwksServer,
    SigningKey,
    body_of,
    order_payload,
    serving_jwks,
)
from tests.support.control_plane import ControlPlaneFake  # noqa: E402
from tests.support.net import free_port, wait_http  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

OUT = ROOT / "build" / "bench" / "chaos-provisioner.json"
PATH = "/webhooks/order-fully-paid"


@dataclass(frozen=True)
class Plan:
    """When each fault happens, in seconds from the first delivery (a fault also waits for the one before it)."""

    rate: float = 50.0  # deliveries per second
    seconds: float = 40.0  # deliveries are sent at least this long, and until 2 s after the last fault
    kill_replica_at: float = 5.0
    cp_down_at: float = 15.0
    cp_down_seconds: float = 6.0
    kill_postgres_at: float = 25.0
    postgres_down_seconds: float = 3.0
    lease_seconds: float = 5.0  # WORKER_LEASE_SECONDS of the replicas
    kill_when_holding: int = 5  # the replica is killed once it holds this many leased rows
    cp_delay_seconds: float = 0.05  # each control-plane answer takes this long, so batches are in flight
    settle_timeout: float = 120.0
    outage: OutagePlan | None = field(default_factory=OutagePlan)  # the catch-up phase; None: left out


class CrashablePostgres(PostgresServer):
    """The test PostgreSQL, plus SIGKILL of the whole cluster and a restart on the same data directory."""

    def _as_postgres(self, *argv: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *argv] if os.geteuid() == 0 else list(argv)

    def processes(self) -> list[int]:
        """The postmaster and its children (backends, checkpointer, WAL writer, ...)."""
        pid_file = self.datadir / "postmaster.pid"
        if not pid_file.exists():
            return []
        postmaster = int(pid_file.read_text().split("\n", 1)[0])
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
        return [postmaster, *map(int, children)]

    def crash(self) -> None:
        """SIGKILL to every process of the cluster, as a machine losing power would stop them."""
        pids = self.processes()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pids and not _dead(pids[0]) and time.monotonic() < deadline:
            time.sleep(0.01)

    def restart(self) -> None:
        """Start again on the same data directory with the options of the last start (postmaster.opts); the
        server replays its WAL first. The killed postmaster can linger as a zombie until whoever adopted it
        reaps it, and PostgreSQL takes a lock file naming an existing pid for a running server: the dead
        postmaster's lock files go first."""
        argv = shlex.split((self.datadir / "postmaster.opts").read_text())
        options = [a for i, a in enumerate(argv[1:], 1) if a != "-D" and argv[i - 1] != "-D"]
        socket_dir = next(o.split("=", 1)[1] for o in options if o.startswith("unix_socket_directories="))
        (self.datadir / "postmaster.pid").unlink(missing_ok=True)
        for lock in Path(socket_dir).glob(".s.PGSQL.*.lock"):
            lock.unlink()
        subprocess.run(
            self._as_postgres(
                str(Path(argv[0]).with_name("pg_ctl")),
                "-D",
                str(self.datadir),
                "-l",
                str(self.datadir.parent / "restart.log"),
                "-o",
                shlex.join(options),
                "-w",
                "-t",
                "60",
                "start",
            ),
            check=True,
            capture_output=True,
            text=True,
        )


def _dead(pid: int) -> bool:
    """Gone, or a zombie (dead, not yet reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "State:\tZ" in status


class Replica:
    """One ``cmp-provisioner serve`` process; ``replica`` is what it writes to ``claimed_by`` (host:pid)."""

    def __init__(self, name: str, env: dict[str, str], work: Path) -> None:
        self.name = name
        self.env = env
        self.work = work
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.starts = 0
        self.process: subprocess.Popen | None = None

    @property
    def replica(self) -> str:
        assert self.process is not None
        return f"{socket.gethostname()}:{self.process.pid}"

    def start(self) -> Replica:
        self.starts += 1
        self.log_path = self.work / f"{self.name}-{self.starts}.log"
        script = shutil.which("cmp-provisioner", path=str(Path(sys.executable).parent))
        assert script, "the console script cmp-provisioner is not installed in the venv"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [script, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_ready(self) -> None:
        wait_http(self.url + "/readyz", timeout=60, ok=lambda r: r.status_code == 200, proc=self.process,
                  log=lambda: self.log_path.read_text(errors="replace"))

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Figures:
    deliveries_sent: int = 0
    delivery_attempts: int = 0
    deliveries_accepted: int = 0  # got a 200 (first answer "accepted" or, after a lost answer, "duplicate")
    deliveries_never_accepted: int = 0
    instances: int = 0
    lost: int = 0  # accepted, but no instance
    duplicates: int = 0  # instances beyond one per order
    calls_repeated: int = 0  # POST /instances answered from the control plane's replay table
    dead_letters: int = 0
    replica_kill: dict = field(default_factory=dict)
    control_plane_outage: dict = field(default_factory=dict)
    postgres_kill: dict = field(default_factory=dict)
    seconds_to_settle: float = 0.0
    catchup: dict = field(default_factory=dict)  # the outage past Saleor's retries (empty: not run)

    @property
    def ok(self) -> bool:
        return (
            self.catchup.get("orders_missed", 0) == 0
            and self.lost == 0
            and self.duplicates == 0
            and self.deliveries_accepted > 0
            and self.replica_kill.get("leased_rows_at_kill", 0) >= 1  # it died mid-batch
            and self.replica_kill.get("leases_back") == self.replica_kill.get("leased_rows_at_kill")
        )


@retry(retry=retry_if_exception_type(psycopg.OperationalError), wait=wait_fixed(0.1), stop=stop_after_delay(60),
       reraise=True)
def _rows(dsn: str, sql: str, params: tuple = ()) -> list[tuple]:
    """A query of the run's own; while PostgreSQL is down it waits for it to come back."""
    with psycopg.connect(dsn, connect_timeout=2) as conn:
        return conn.execute(sql, params).fetchall()


# ---- the control-plane fake, in a process of its own so the sender does not share its interpreter ---------------
def serve_control_plane(port: int, control_port: int, delay_seconds: float) -> None:
    """``ControlPlaneFake`` on ``port``, and on ``control_port`` a small API for the run: POST /down and /up close
    and reopen the fake's socket; GET /state gives instances per order and when calls succeeded."""
    import uvicorn
    from fastapi import FastAPI

    fake = ControlPlaneFake({"cmp-provisioner": SERVICE_JWT_SECRET})
    fake.port, fake.url = port, f"http://127.0.0.1:{port}"
    fake.delay_seconds = delay_seconds
    fake.start()
    control = FastAPI()

    @control.post("/down")
    def down() -> dict:
        fake.go_down()
        return {"down_at": time.monotonic()}

    @control.post("/up")
    def up() -> dict:
        fake.come_up()
        return {"up_at": time.monotonic()}

    @control.post("/hold")
    def hold() -> dict:
        fake.hold()
        return {}

    @control.post("/release")
    def release() -> dict:
        fake.release()
        return {}

    @control.get("/state")
    def state() -> dict:
        calls = [c for c in list(fake.calls) if c.path == "/instances"]
        return {
            "instances": dict(Counter(i.order_id for i in list(fake.instances.values()))),
            "cancels": dict(Counter(c.body.get("order_id") for c in list(fake.calls)
                                    if c.path == "/instances/cancel" and c.status < 300)),
            "replayed": sum(1 for c in calls if c.status == 200),
            "ok_at": [c.at for c in calls if c.status < 300][-2000:],  # time.monotonic(): one clock per machine
        }

    uvicorn.run(control, host="127.0.0.1", port=control_port, log_level="warning")


class ControlPlaneProcess:
    def __init__(self, delay_seconds: float, work: Path) -> None:
        self.port, self.control_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._control = f"http://127.0.0.1:{self.control_port}"
        self.log_path = work / "control-plane.log"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, __file__, "control-plane", str(self.port), str(self.control_port), str(delay_seconds)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_http(self._control + "/state", proc=self.process, log=lambda: self.log_path.read_text(errors="replace"))
        self._client = httpx.Client(base_url=self._control, timeout=30)  # polled: one client, one CA bundle load

    def down(self) -> float:
        return self._client.post("/down").json()["down_at"]

    def up(self) -> float:
        return self._client.post("/up").json()["up_at"]

    def hold(self) -> None:
        self._client.post("/hold").raise_for_status()

    def release(self) -> None:
        self._client.post("/release").raise_for_status()

    def state(self) -> dict:
        return self._client.get("/state").json()

    def stop(self) -> None:
        self._client.close()
        self.process.terminate()
        self.process.wait(timeout=15)


class Chaos:
    def __init__(self, plan: Plan, work: Path, say=print) -> None:
        self.plan = plan
        self.work = work
        self.say = say
        self.figures = Figures()
        self.accepted_at: dict[str, float] = {}  # order id -> when it got its 200 (seconds into the run)
        self.restarting: asyncio.Task | None = None  # the killed replica starting again
        self.saleor: JwksServer | None = None  # Saleor's JWKS, while the run lasts
        self.t0 = 0.0

    def now(self) -> float:
        return time.monotonic() - self.t0

    # ---- the sender (Saleor) ----------------------------------------------------------------------------------
    async def deliver(self, session: aiohttp.ClientSession, index: int, urls: list[str]) -> None:
        order_id = f"chaos-{index}"
        body = body_of(order_payload(order_id))
        headers = {"Content-Type": "application/json", "Saleor-Event": "order_fully_paid",
                   "Saleor-Signature": self.saleor.keys[0].sign(body), "Saleor-Api-Url": self.saleor.api_url}
        delay = 0.5
        deadline = time.monotonic() + 120
        attempt = 0
        while time.monotonic() < deadline:
            url = urls[(index + attempt) % len(urls)]
            attempt += 1
            self.figures.delivery_attempts += 1
            try:
                async with session.post(url + PATH, data=body, headers=headers) as response:
                    await response.read()
                    if response.status == 200:
                        self.accepted_at[order_id] = self.now()
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)

    async def send(self, urls: list[str], faults: asyncio.Task) -> None:
        """At the plan's rate for ``seconds``, and on until two seconds after the last fault is over."""
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=64)) as session:
            tasks = []
            faults_over: float | None = None
            index = 0
            while self.now() < self.plan.seconds or faults_over is None or self.now() < faults_over + 2:
                if faults_over is None and faults.done():
                    faults_over = self.now()
                if (wait := index / self.plan.rate - self.now()) > 0:
                    await asyncio.sleep(wait)
                tasks.append(asyncio.create_task(self.deliver(session, index, urls)))
                index += 1
            self.figures.deliveries_sent = index
            await asyncio.gather(*tasks)

    # ---- the faults ------------------------------------------------------------------------------------------
    async def at(self, second: float) -> None:
        if (wait := second - self.now()) > 0:
            await asyncio.sleep(wait)

    async def kill_replica_mid_batch(self, victim: Replica, dsn: str, cp: ControlPlaneProcess) -> None:
        await self.at(self.plan.kill_replica_at)
        # The control plane holds its answers meanwhile, so a row the victim leases stays leased until the kill
        # (otherwise a batch can finish between seeing the lease and the SIGKILL).
        await asyncio.to_thread(cp.hold)
        who = victim.replica
        leased = (
            "SELECT id FROM provisioner_inbox WHERE claimed_by = %s AND status = 'pending' AND lease_token IS NOT NULL"
        )
        held: list = []
        deadline = time.monotonic() + 10
        # Mid-batch: once it holds several leased rows (or whatever it holds after 10 s).
        while time.monotonic() < deadline and len(held) < self.plan.kill_when_holding:
            held = await asyncio.to_thread(_rows, dsn, leased, (who,))
            await asyncio.sleep(0.02)
        killed_at = self.now()
        await asyncio.to_thread(victim.kill9)
        held = [r[0] for r in await asyncio.to_thread(_rows, dsn, leased, (who,))]  # still unwritten after the kill
        await asyncio.to_thread(cp.release)
        self.say(f"[{killed_at:5.1f}s] kill -9 replica {victim.name} ({who}) holding {len(held)} leased rows")
        back_at = None
        while self.now() < killed_at + self.plan.lease_seconds + 60:
            pending = "SELECT count(*) FROM provisioner_inbox WHERE id = ANY(%s) AND status = 'pending'"
            if (await asyncio.to_thread(_rows, dsn, pending, (held,)))[0][0] == 0:
                back_at = self.now()
                break
            await asyncio.sleep(0.05)
        finished_by = await asyncio.to_thread(
            _rows, dsn, "SELECT DISTINCT claimed_by FROM provisioner_inbox WHERE id = ANY(%s)", (held,))
        self.figures.replica_kill = {
            "at_s": round(killed_at, 2),
            "leased_rows_at_kill": len(held),
            "leases_back": len(held) if back_at is not None else 0,
            "rows_finished_by": sorted(r[0] for r in finished_by),
            "recovery_s": round(back_at - killed_at, 2) if back_at is not None else None,
            "lease_seconds": self.plan.lease_seconds,
        }
        self.say(f"[{self.now():5.1f}s] the killed replica's {len(held)} rows came back and were worked "
                 f"({self.figures.replica_kill['recovery_s']} s after the kill); starting it again")
        await asyncio.to_thread(victim.start)
        self.restarting = asyncio.create_task(asyncio.to_thread(victim.wait_ready))

    async def control_plane_outage(self, cp: ControlPlaneProcess) -> None:
        await self.at(self.plan.cp_down_at)
        down_at = await asyncio.to_thread(cp.down) - self.t0
        self.say(f"[{down_at:5.1f}s] control plane down")
        await self.at(self.plan.cp_down_at + self.plan.cp_down_seconds)
        up_at = await asyncio.to_thread(cp.up) - self.t0
        first_ok = None
        while self.now() < up_at + 60:
            after = [t - self.t0 for t in (await asyncio.to_thread(cp.state))["ok_at"] if t - self.t0 > up_at]
            if after:
                first_ok = min(after)
                break
            await asyncio.sleep(0.1)
        self.figures.control_plane_outage = {
            "at_s": round(down_at, 2),
            "down_s": round(up_at - down_at, 2),
            "first_instance_call_after_up_s": round(first_ok - up_at, 2) if first_ok is not None else None,
        }
        self.say(f"[{up_at:5.1f}s] control plane up; first successful call "
                 f"{self.figures.control_plane_outage['first_instance_call_after_up_s']} s later")

    async def kill_postgres(self, pg: CrashablePostgres) -> None:
        await self.at(self.plan.kill_postgres_at)
        killed_at = self.now()
        await asyncio.to_thread(pg.crash)
        self.say(f"[{killed_at:5.1f}s] kill -9 PostgreSQL (postmaster and backends)")
        await self.at(killed_at + self.plan.postgres_down_seconds)
        starting_at = self.now()
        await asyncio.to_thread(pg.restart)
        restarted_at = self.now()
        self.say(f"[{restarted_at:5.1f}s] PostgreSQL restarted (start with crash recovery took "
                 f"{restarted_at - starting_at:.2f} s)")
        first_200 = None
        while self.now() < restarted_at + 60:
            after = [t for t in self.accepted_at.values() if t > restarted_at]
            if after:
                first_200 = min(after)
                break
            await asyncio.sleep(0.02)
        self.figures.postgres_kill = {
            "at_s": round(killed_at, 2),
            "down_s": round(restarted_at - killed_at, 2),
            "start_with_crash_recovery_s": round(restarted_at - starting_at, 2),
            "first_200_after_restart_s": round(first_200 - restarted_at, 2) if first_200 is not None else None,
            "recovery_s": round(first_200 - killed_at, 2) if first_200 is not None else None,
        }
        self.say(f"[{self.now():5.1f}s] deliveries accepted again "
                 f"{self.figures.postgres_kill['first_200_after_restart_s']} s after the restart")

    # ---- the run ---------------------------------------------------------------------------------------------
    def run(self) -> Figures:
        plan = self.plan
        cp = ControlPlaneProcess(plan.cp_delay_seconds, self.work)
        replicas: list[Replica] = []
        outage: SaleorOutage | None = None
        try:
            with CrashablePostgres(fsync=True) as pg, serving_jwks([SigningKey("chaos-key")]) as saleor:
                self.saleor = saleor
                url = pg.create_database("chaos")
                dsn = pg.dsn("chaos")
                env = {
                    "DATABASE_URL": url,
                    "CONTROL_PLANE_URL": cp.url,
                    "SERVICE_JWT_SECRET": SERVICE_JWT_SECRET,
                    "SALEOR_ALLOWED_ORIGINS": saleor.origin,
                    "WORKER_LEASE_SECONDS": str(plan.lease_seconds),
                    "WORKER_POLL_SECONDS": "0.2",
                    "RETRY_BACKOFF_SECONDS": "0.2",
                    "RETRY_BACKOFF_MAX_SECONDS": "2",
                    "RETRY_MAX_ATTEMPTS": "50",
                    "CP_TIMEOUT_SECONDS": "2",
                    "LOG_LEVEL": "INFO",
                }
                replicas = [Replica("a", env, self.work), Replica("b", env, self.work)]
                outage = self._outage(replicas[0].url)
                if outage is not None:
                    for replica in replicas:
                        replica.env = {**env, **outage.env(saleor.origin)}
                for replica in replicas:
                    replica.start()
                try:
                    for replica in replicas:  # both migrate the empty database at once, one after the other
                        replica.wait_ready()
                    self.say(f"two replicas on PostgreSQL {pg.port} (fsync on), control plane {cp.url}; "
                             f"{plan.rate:g} deliveries/s for {plan.seconds:g} s")
                    self.t0 = time.monotonic()
                    asyncio.run(self._drive([r.url for r in replicas], replicas[0], cp, pg, dsn))
                    self._settle(cp, dsn)
                    if outage is not None:
                        self._catch_up(outage, replicas, cp)
                finally:
                    for replica in replicas:
                        replica.stop()
        finally:
            if outage is not None:
                outage.stop()
            cp.stop()
        return self.figures

    def _outage(self, replica_url: str) -> SaleorOutage | None:
        if self.plan.outage is None:
            return None
        try:
            return SaleorOutage(self.plan.outage, replica_url, self.say)
        except RuntimeError as exc:  # no Saleor schema to play Saleor with
            self.say(f"catch-up phase left out: {exc}")
            return None

    def _catch_up(self, outage: SaleorOutage, replicas: list[Replica], cp: ControlPlaneProcess) -> None:
        for replica in replicas:
            replica.stop()
        self.say(f"[{self.now():5.1f}s] both replicas stopped; orders paid, cancelled and paid with the "
                 "ORDER_FULLY_PAID webhook off, until Saleor gives up on every delivery")
        orders = outage.while_down()
        started = time.monotonic()
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_ready()
        self.figures.catchup = outage.figures(orders, cp.state, outage.plan.settle_timeout, started)
        c = self.figures.catchup
        self.say(f"[{self.now():5.1f}s] replicas up again: {c['instances']} instances, {c['cancels']} cancels "
                 f"{c['seconds_to_catch_up']} s after the start; orders missed: {c['orders_missed']}")

    async def _drive(self, urls, victim, cp, pg, dsn) -> None:
        async def faults() -> None:  # one after the other, each at its time or when the one before it is over
            await self.kill_replica_mid_batch(victim, dsn, cp)
            await self.control_plane_outage(cp)
            await self.kill_postgres(pg)
            await self.restarting

        task = asyncio.create_task(faults())
        await asyncio.gather(self.send(urls, task), task)

    def _settle(self, cp: ControlPlaneProcess, dsn: str) -> None:
        start = self.now()
        self.say(f"[{start:5.1f}s] sending done; waiting for the inbox to drain")
        deadline = time.monotonic() + self.plan.settle_timeout
        while True:
            pending = _rows(dsn, "SELECT count(*) FROM provisioner_inbox WHERE status = 'pending'")[0][0]
            state = cp.state()
            if (pending == 0 and all(o in state["instances"] for o in self.accepted_at)) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        f = self.figures
        f.seconds_to_settle = round(self.now() - start, 2)
        per_order = Counter(state["instances"])
        f.deliveries_accepted = len(self.accepted_at)
        f.deliveries_never_accepted = f.deliveries_sent - f.deliveries_accepted
        f.instances = sum(per_order.values())
        f.lost = sum(1 for order in self.accepted_at if per_order[order] == 0)
        f.duplicates = sum(n - 1 for n in per_order.values() if n > 1)
        f.calls_repeated = state["replayed"]
        f.dead_letters = _rows(dsn, "SELECT count(*) FROM provisioner_inbox WHERE status = 'dead'")[0][0]


def run(plan: Plan, say=print) -> Figures:
    work = Path(tempfile.mkdtemp(prefix="chaos-prov-"))
    try:
        return Chaos(plan, work, say).run()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def catchup_line(c: dict) -> str:
    if not c:
        return "catch-up phase not run (no Saleor schema in CMP_SCHEMA_DIR)"
    return (f"down past Saleor's retries: {c['orders_paid_while_down']} orders paid "
            f"({c['orders_cancelled_while_down']} then cancelled), {c['orders_paid_while_webhook_inactive']} paid "
            f"with the webhook off; Saleor gave up on {c['saleor_failed_deliveries']} deliveries (tries each: "
            f"{c['saleor_tries_per_failed_delivery']}); after the start: instances {c['instances']}, cancels "
            f"{c['cancels']} in {c['seconds_to_catch_up']} s; orders missed: {c['orders_missed']}")


def main() -> int:
    plan = Plan(
        rate=float(os.environ.get("CHAOS_RATE", Plan.rate)),
        seconds=float(os.environ.get("CHAOS_SECONDS", Plan.seconds)),
    )
    print(f"load average before: {os.getloadavg()}; cpus: {os.cpu_count()}")
    figures = run(plan)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({**asdict(figures), "plan": asdict(plan), "ok": figures.ok}, indent=2) + "\n")
    f = figures
    print(
        f"deliveries sent {f.deliveries_sent}, accepted {f.deliveries_accepted} (attempts {f.delivery_attempts}, "
        f"never accepted {f.deliveries_never_accepted})\n"
        f"instances {f.instances}, lost {f.lost}, duplicates {f.duplicates}, dead letters {f.dead_letters}, "
        f"calls repeated after crashes {f.calls_repeated} (answered from the control plane's replay table)\n"
        f"replica kill -9: {f.replica_kill['leased_rows_at_kill']} leased rows, {f.replica_kill['leases_back']} "
        f"came back, worked {f.replica_kill['recovery_s']} s after the kill (lease {plan.lease_seconds:g} s)\n"
        f"control plane down {f.control_plane_outage['down_s']} s: first successful call "
        f"{f.control_plane_outage['first_instance_call_after_up_s']} s after it came back\n"
        f"PostgreSQL kill -9: down {f.postgres_kill['down_s']} s, deliveries accepted again "
        f"{f.postgres_kill['first_200_after_restart_s']} s after the restart ({f.postgres_kill['recovery_s']} s "
        f"after the kill)\n"
        f"{catchup_line(f.catchup)}\n"
        f"drained {f.seconds_to_settle} s after the last delivery; {'OK' if f.ok else 'FAILED'}; "
        f"load average after: {os.getloadavg()}; wrote {OUT.relative_to(ROOT)}"
    )
    return 0 if f.ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["control-plane"]:
        serve_control_plane(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit(main())
