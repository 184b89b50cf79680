# ruff: noqa: F811 - pytest fixtures imported from test_runtime_support are parameters here
"""A fleet over HTTP: replica processes following a published registry through promotions and outages.

A real web server on 127.0.0.1 (Python's http.server) serves a directory written by ``promptctl publish``;
several replica processes run ``promptctl.Registry(URL, ttl=TTL)`` and report, line by line, the version each
one serves and its span's ``prompt.stale``. The TTL is short so the whole story runs in seconds.
"""

from __future__ import annotations

import pytest
from fleet_support import Origin, Replica, hold_for, wait_for
from test_runtime_support import runtime_repo, runtime_template  # noqa: F401 - fixtures

from promptctl.channels import ChannelStore
from promptctl.publish import publish
from promptctl.registry import PromptRepo

SIC = "support_intent_classifier"
TTL = 0.3
REPLICAS = 3
# A move is served within the loader's TTL plus one poll of the manifest (TTL less jitter); the slack covers
# process scheduling on a busy two-core test machine.
PROPAGATION = TTL + TTL + 2.0
OUTAGE_NOTICED = 8.0  # generous: how fast trouble is noticed is not the point, serving through it is
RECOVERED = 15.0  # polls back off up to 8 x TTL while the origin is down


@pytest.fixture
def fleet(runtime_repo, tmp_path):
    site = tmp_path / "site"
    publish(runtime_repo, ["production"], site / "production")
    origin = Origin(site)
    replicas = [Replica(origin.url + "production/", TTL, SIC) for _ in range(REPLICAS)]
    try:
        wait_for(replicas, lambda s: s["version"] == "v1" and not s["stale"], timeout=30)
        yield runtime_repo, site / "production", origin, replicas
    finally:
        for replica in replicas:
            replica.stop()
        origin.stop()


def test_promotion_and_rollback_reach_every_replica_within_ttl_plus_one_poll(fleet):
    repo, out, origin, replicas = fleet
    store = ChannelStore(PromptRepo.open(repo))
    store.promote(SIC, "v2", "production", reason="ship v2")
    first_published = publish(repo, ["production"], out).published_at
    took = wait_for(replicas, lambda s: s["version"] == "v2", timeout=PROPAGATION)
    assert all(r.latest["published_at"] == first_published and not r.latest["stale"] for r in replicas)
    store.rollback(SIC, "production", reason="v2 misbehaves")
    publish(repo, ["production"], out)
    took_back = wait_for(replicas, lambda s: s["version"] == "v1", timeout=PROPAGATION)
    assert took < PROPAGATION and took_back < PROPAGATION
    objects = [path for path, _, _ in origin.paths("/objects/")]
    assert len(objects) == REPLICAS * 2  # each replica fetched v1 and v2 once; the rollback fetched nothing


def test_outages_keep_the_last_good_version_marked_stale_and_replicas_recover(fleet):
    repo, out, origin, replicas = fleet
    serving_v1 = lambda s: s["version"] == "v1" and s["error"] is None  # noqa: E731
    for outage in ("stopped", "500"):
        warned = [r.latest["warnings"] for r in replicas]
        if outage == "stopped":
            origin.stop()
        else:
            origin.mode = "500"
        wait_for(replicas, lambda s: s["stale"] and serving_v1(s), timeout=OUTAGE_NOTICED)
        hold_for(replicas, serving_v1, 0.6)  # never an error, never another version
        for replica, before in zip(replicas, warned, strict=True):
            assert replica.latest["warnings"] == before + 1  # one warning for the episode, with its cause
            cause = "Connection refused" if outage == "stopped" else "HTTP 500"
            assert cause in replica.latest["messages"][-1]
        if outage == "stopped":
            origin.start()
        else:
            origin.mode = "ok"
        wait_for(replicas, lambda s: not s["stale"] and serving_v1(s), timeout=RECOVERED)


def test_a_tampered_object_is_never_served_by_any_replica(fleet):
    repo, out, origin, replicas = fleet
    origin.mode = "tamper"  # the host (or a cache in front of it) alters every object it serves
    ChannelStore(PromptRepo.open(repo)).promote(SIC, "v2", "production", reason="ship v2")
    publish(repo, ["production"], out)
    wait_for(replicas, lambda s: s["stale"] and s["version"] == "v1", timeout=OUTAGE_NOTICED)
    hold_for(replicas, lambda s: s["version"] == "v1", 0.8)
    assert all(r.latest["errors"] == 1 for r in replicas)  # reported once per replica, not once per poll
    assert all("never served" in " ".join(r.latest["messages"]) for r in replicas)
    origin.mode = "ok"
    wait_for(replicas, lambda s: s["version"] == "v2" and not s["stale"], timeout=RECOVERED)
