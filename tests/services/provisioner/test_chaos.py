"""A small chaos run (tests/bench/chaos_provisioner.py; ``make chaos-provisioner`` is the full one): two replicas
on one PostgreSQL with fsync on, one replica killed with SIGKILL mid-batch, the control plane down for a while,
PostgreSQL killed with SIGKILL and restarted. Every delivery that got a 200 is provisioned exactly once. Then both
replicas are down past Saleor's whole retry schedule (the Saleor fake) and catch-up brings every order in once."""

from __future__ import annotations

import pytest

from tests.bench.chaos_catchup import OutagePlan
from tests.bench.chaos_provisioner import Plan, run


@pytest.mark.server
def test_every_accepted_delivery_is_provisioned_exactly_once_through_crashes(schema_dir):
    # Each fault at its time, one after the other: the replica dies as soon as it holds a leased row (waiting
    # for more can outlast the faults after it), and the control plane and PostgreSQL go down once it is back.
    plan = Plan(
        rate=20,
        seconds=8,
        kill_replica_at=1,
        cp_down_at=4,
        cp_down_seconds=1,
        kill_postgres_at=5.5,
        postgres_down_seconds=0.5,
        lease_seconds=2,
        kill_when_holding=1,
        settle_timeout=60,
        outage=OutagePlan(paid=6, cancelled=2, muted=1, saleor_retry_scale=0.002, settle_timeout=60),
    )
    figures = run(plan, say=lambda line: None)

    assert figures.deliveries_sent >= plan.rate * plan.seconds
    assert figures.deliveries_accepted == figures.deliveries_sent  # Saleor's retries got every one in
    assert (figures.lost, figures.duplicates, figures.dead_letters) == (0, 0, 0)
    assert figures.instances == figures.deliveries_accepted
    kill = figures.replica_kill
    assert kill["leased_rows_at_kill"] >= 1  # it died holding rows: mid-batch
    assert kill["leases_back"] == kill["leased_rows_at_kill"]
    assert kill["recovery_s"] <= plan.lease_seconds + 5  # back once its lease ended, not at the next restart
    assert figures.postgres_kill["first_200_after_restart_s"] is not None
    assert figures.control_plane_outage["first_instance_call_after_up_s"] is not None
    c = figures.catchup
    assert c["saleor_tries_per_failed_delivery"] == [6]  # every delivery ran Saleor's whole schedule, then FAILED
    assert (c["instances"], c["cancels"], c["orders_missed"]) == (6 - 2 + 1, 2, 0)
