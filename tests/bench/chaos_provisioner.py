"""Chaos run: crashes, not only outages. ``make chaos-provisioner`` prints the figures; a small run is a test.

Two ``cmp-provisioner`` replicas (real processes) share one real PostgreSQL 15 (fsync on). A sender posts
HMAC-signed ORDER_FULLY_PAID deliveries at a steady rate, round-robin over the replicas, and retries a delivery
that did not get a 200 the way Saleor does (later, possibly to the other replica). Meanwhile:
  1. one replica is killed with SIGKILL while it holds leased rows (mid-batch), and started again once its rows
     have come back to the other replica (the lease is WORKER_LEASE_SECONDS);
  2. the control-plane fake goes down (its socket closed) for a while;
  3. PostgreSQL itself is killed with SIGKILL (postmaster and backends) and restarted (crash recovery).
At the end every delivery that got a 200 must have exactly one instance at the control plane: 0 lost, 0 doubled.
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

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.services.provisioner.helpers import (  # noqa: E402
    SERVICE_JWT_SECRET,
    WEBHOOK_SECRET,
    body_of,
    hmac_sign,
    order_payload,
)
from tests.support.control_plane import ControlPlaneFake  # noqa: E402
from tests.support.net import free_port, wait_http  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

OUT = ROOT / "build" / "bench" / "chaos-provisioner.json"
PATH = "/webhooks/order-fully-paid"


@dataclass(frozen=True)
class Plan:
    """When each fault happens, in seconds from the first delivery."""

    rate: float = 100.0  # deliveries per second
    seconds: float = 40.0  # how long deliveries are sent
    kill_replica_at: float = 5.0
    cp_down_at: float = 15.0
    cp_down_seconds: float = 6.0
    kill_postgres_at: float = 25.0
    postgres_down_seconds: float = 3.0
    lease_seconds: float = 5.0  # WORKER_LEASE_SECONDS of the replicas
    cp_delay_seconds: float = 0.05  # each control-plane answer takes this long, so batches are in flight
    settle_timeout: float = 120.0


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
        deadline = time.monotonic() + 30  # until the orphaned processes are reaped
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self) -> None:
        """Start again on the same data directory with the options of the last start (postmaster.opts); the
        server replays its WAL first."""
        argv = shlex.split((self.datadir / "postmaster.opts").read_text())
        options = [a for i, a in enumerate(argv[1:], 1) if a != "-D" and argv[i - 1] != "-D"]
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


def _alive(pid: int) -> bool:
    """Whether ``pid`` exists, a zombie included: PostgreSQL's lock files name the dead postmaster's pid, and a
    new server refuses to start while that pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.duplicates == 0
            and self.deliveries_accepted > 0
            and self.replica_kill.get("leases_back") == self.replica_kill.get("leased_rows_at_kill")
        )


def _rows(dsn: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(dsn, connect_timeout=2) as conn:
        return conn.execute(sql, params).fetchall()


class Chaos:
    def __init__(self, plan: Plan, work: Path, say=print) -> None:
        self.plan = plan
        self.work = work
        self.say = say
        self.figures = Figures()
        self.accepted_at: dict[str, float] = {}  # order id -> when it got its 200
        self.t0 = 0.0

    def now(self) -> float:
        return time.monotonic() - self.t0

    # ---- the sender (Saleor) ----------------------------------------------------------------------------------
    async def deliver(self, client: httpx.AsyncClient, index: int, urls: list[str]) -> None:
        order_id = f"chaos-{index}"
        body = body_of(order_payload(order_id))
        headers = {"Content-Type": "application/json", "Saleor-Event": "order_fully_paid",
                   "Saleor-Signature": hmac_sign(body)}
        delay = 0.5
        deadline = time.monotonic() + 90
        attempt = 0
        while time.monotonic() < deadline:
            url = urls[(index + attempt) % len(urls)]
            attempt += 1
            self.figures.delivery_attempts += 1
            try:
                response = await client.post(url + PATH, content=body, headers=headers)
                if response.status_code == 200:
                    self.accepted_at[order_id] = self.now()
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def send(self, urls: list[str]) -> None:
        total = int(self.plan.rate * self.plan.seconds)
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        async with httpx.AsyncClient(timeout=10, limits=limits) as client:
            tasks = []
            for index in range(total):
                due = index / self.plan.rate
                if (wait := due - self.now()) > 0:
                    await asyncio.sleep(wait)
                tasks.append(asyncio.create_task(self.deliver(client, index, urls)))
            self.figures.deliveries_sent = total
            await asyncio.gather(*tasks)

    # ---- the faults ------------------------------------------------------------------------------------------
    async def at(self, second: float) -> None:
        if (wait := second - self.now()) > 0:
            await asyncio.sleep(wait)

    async def kill_replica_mid_batch(self, victim: Replica, dsn: str) -> None:
        await self.at(self.plan.kill_replica_at)
        who = victim.replica
        held: list[int] = []
        deadline = time.monotonic() + 20
        while not held and time.monotonic() < deadline:  # until it holds leased rows: mid-batch
            held = [r[0] for r in await asyncio.to_thread(
                _rows, dsn, "SELECT id FROM provisioner_inbox WHERE claimed_by = %s AND status = 'pending' "
                "AND lease_token IS NOT NULL AND next_attempt_at > now() AT TIME ZONE 'UTC'", (who,))]
            if not held:
                await asyncio.sleep(0.01)
        killed_at = self.now()
        await asyncio.to_thread(victim.kill9)
        # Rows it held whose outcome it had not written yet: still pending under its lease after the kill.
        held = [r[0] for r in await asyncio.to_thread(
            _rows, dsn, "SELECT id FROM provisioner_inbox WHERE claimed_by = %s AND status = 'pending' "
            "AND lease_token IS NOT NULL", (who,))]
        self.say(f"[{killed_at:5.1f}s] kill -9 replica {victim.name} ({who}) holding {len(held)} leased rows")
        back_at = None
        while time.monotonic() < deadline + 60:
            left = await asyncio.to_thread(
                _rows, dsn, "SELECT count(*) FROM provisioner_inbox WHERE id = ANY(%s) AND status = 'pending'", (held,))
            if left[0][0] == 0:
                back_at = self.now()
                break
            await asyncio.sleep(0.05)
        taken_by = await asyncio.to_thread(
            _rows, dsn, "SELECT DISTINCT claimed_by FROM provisioner_inbox WHERE id = ANY(%s)", (held,))
        self.figures.replica_kill = {
            "at_s": round(killed_at, 2),
            "leased_rows_at_kill": len(held),
            "leases_back": len(held) if back_at is not None else 0,
            "rows_finished_by": sorted(r[0] for r in taken_by),
            "recovery_s": round(back_at - killed_at, 2) if back_at is not None else None,
            "lease_seconds": self.plan.lease_seconds,
        }
        self.say(f"[{self.now():5.1f}s] the killed replica's {len(held)} rows came back and were worked "
                 f"({self.figures.replica_kill['recovery_s']} s after the kill); starting it again")
        await asyncio.to_thread(victim.start)
        await asyncio.to_thread(victim.wait_ready)

    async def control_plane_outage(self, cp: ControlPlaneFake) -> None:
        await self.at(self.plan.cp_down_at)
        down_at = self.now()
        await asyncio.to_thread(cp.go_down)
        self.say(f"[{down_at:5.1f}s] control plane down")
        await self.at(self.plan.cp_down_at + self.plan.cp_down_seconds)
        await asyncio.to_thread(cp.come_up)
        up_at = self.now()
        calls_before = len(cp.calls)
        while len(cp.calls) == calls_before or cp.calls[-1].status >= 300:
            await asyncio.sleep(0.02)
        self.figures.control_plane_outage = {
            "at_s": round(down_at, 2),
            "down_s": round(up_at - down_at, 2),
            "first_instance_call_after_up_s": round(self.now() - up_at, 2),
        }
        self.say(f"[{up_at:5.1f}s] control plane up; first successful call "
                 f"{self.figures.control_plane_outage['first_instance_call_after_up_s']} s later")

    async def kill_postgres(self, pg: CrashablePostgres) -> None:
        await self.at(self.plan.kill_postgres_at)
        killed_at = self.now()
        await asyncio.to_thread(pg.crash)
        self.say(f"[{killed_at:5.1f}s] kill -9 PostgreSQL (postmaster and backends)")
        await asyncio.sleep(self.plan.postgres_down_seconds)
        await asyncio.to_thread(pg.restart)
        restarted_at = self.now()
        self.say(f"[{restarted_at:5.1f}s] PostgreSQL restarted (crash recovery done)")
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
            "first_200_after_restart_s": round(first_200 - restarted_at, 2) if first_200 is not None else None,
            "recovery_s": round(first_200 - killed_at, 2) if first_200 is not None else None,
        }
        self.say(f"[{self.now():5.1f}s] deliveries accepted again "
                 f"{self.figures.postgres_kill['first_200_after_restart_s']} s after the restart")

    # ---- the run ---------------------------------------------------------------------------------------------
    def run(self) -> Figures:
        plan = self.plan
        with CrashablePostgres(fsync=True) as pg, ControlPlaneFake() as cp:
            cp.add_issuer("cmp-provisioner", SERVICE_JWT_SECRET)
            cp.delay_seconds = plan.cp_delay_seconds
            url = pg.create_database("chaos")
            dsn = pg.dsn("chaos")
            env = {
                "DATABASE_URL": url,
                "CONTROL_PLANE_URL": cp.url,
                "SERVICE_JWT_SECRET": SERVICE_JWT_SECRET,
                "SALEOR_LEGACY_HMAC": "true",
                "SALEOR_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "SALEOR_ALLOWED_ORIGINS": "",
                "WORKER_LEASE_SECONDS": str(plan.lease_seconds),
                "WORKER_POLL_SECONDS": "0.2",
                "RETRY_BACKOFF_SECONDS": "0.2",
                "RETRY_BACKOFF_MAX_SECONDS": "2",
                "RETRY_MAX_ATTEMPTS": "1000",
                "CP_TIMEOUT_SECONDS": "2",
                "LOG_LEVEL": "INFO",
            }
            replicas = [Replica("a", env, self.work).start(), Replica("b", env, self.work).start()]
            try:
                for replica in replicas:  # both migrate the empty database at once, one after the other
                    replica.wait_ready()
                self.say(f"two replicas on PostgreSQL {pg.port} (fsync on), control plane {cp.url}; "
                         f"{plan.rate:.0f} deliveries/s for {plan.seconds:.0f} s")
                self.t0 = time.monotonic()
                asyncio.run(self._drive([r.url for r in replicas], replicas[0], cp, pg, dsn))
                settle_start = self.now()
                self.say(f"[{settle_start:5.1f}s] sending done; waiting for the inbox to drain")
                deadline = time.monotonic() + plan.settle_timeout
                while time.monotonic() < deadline:
                    pending = _rows(dsn, "SELECT count(*) FROM provisioner_inbox WHERE status = 'pending'")[0][0]
                    provisioned = _orders(cp)
                    if pending == 0 and all(o in provisioned for o in self.accepted_at):
                        break
                    time.sleep(0.2)
                self.figures.seconds_to_settle = round(self.now() - settle_start, 2)
                self._count(cp, dsn)
            finally:
                for replica in replicas:
                    replica.stop()
        return self.figures

    async def _drive(self, urls, victim, cp, pg, dsn) -> None:
        await asyncio.gather(
            self.send(urls),
            self.kill_replica_mid_batch(victim, dsn),
            self.control_plane_outage(cp),
            self.kill_postgres(pg),
        )

    def _count(self, cp: ControlPlaneFake, dsn: str) -> None:
        f = self.figures
        per_order = Counter(i.order_id for i in cp.instances.values())
        f.deliveries_accepted = len(self.accepted_at)
        f.deliveries_never_accepted = f.deliveries_sent - f.deliveries_accepted
        f.instances = len(cp.instances)
        f.lost = sum(1 for order in self.accepted_at if per_order[order] == 0)
        f.duplicates = sum(n - 1 for n in per_order.values() if n > 1)
        f.calls_repeated = sum(1 for c in cp.calls_to("POST", "/instances") if c.status == 200)
        f.dead_letters = _rows(dsn, "SELECT count(*) FROM provisioner_inbox WHERE status = 'dead'")[0][0]


def _orders(cp: ControlPlaneFake) -> set[str]:
    return {i.order_id for i in list(cp.instances.values())}


def run(plan: Plan, say=print) -> Figures:
    work = Path(tempfile.mkdtemp(prefix="chaos-prov-"))
    try:
        return Chaos(plan, work, say).run()
    finally:
        shutil.rmtree(work, ignore_errors=True)


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
        f"drained {f.seconds_to_settle} s after the last delivery; {'OK' if f.ok else 'FAILED'}; "
        f"wrote {OUT.relative_to(ROOT)}"
    )
    return 0 if f.ok else 1


if __name__ == "__main__":
    sys.exit(main())
