"""test_unavailable.py: what clients see while the database is gone.  Two of
the three Galera nodes are SIGKILLed (scripts/stack kill-db): the survivor
leaves the Primary component and refuses every query, and HAProxy's DB
listener has no healthy node left.  Each service's health (and a real read)
must then answer 503 problem+json with Retry-After, never 500 or an HTML
page; after the nodes are started again every health answers 200.

This file sorts after every other test_*.py on purpose: it takes the whole
database away, and it puts the cluster back (and waits until it is whole)
even when it fails, so a failure here cannot spill into other tests."""
import threading

import shop
from shop import assert_problem, call, wait_for

HEALTH = ("/auth/health", "/products/health", "/orders/health")


def _all_healthy():
    return all(call("GET", p, timeout=10).status == 200 for p in HEALTH)


def _start_nodes(nodes):
    errs = []

    def start(n):
        # One retry: a joiner can die when its IST port is taken at that very
        # moment (see ha_failover.py case 5).
        for _ in (1, 2):
            r = shop.stack("start-db", str(n), check=False)
            if r.returncode == 0:
                return
        errs.append((n, r.stdout[-300:], r.stderr[-300:]))
    ts = [threading.Thread(target=start, args=(n,)) for n in nodes]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errs, errs


def _every_node_synced():
    nodes, _, servers = shop.stack_status()
    return all(nodes.get("node%d" % n, "").startswith("Synced Primary 3") for n in (1, 2, 3)) \
        and servers.get("db/node1") == "UP"


def test_health_is_503_with_retry_after_while_the_database_is_down():
    _, seller = shop.new_user("seller")
    p = shop.new_product(seller)
    assert _all_healthy(), "not healthy before the test"
    try:
        shop.stack("kill-db", "2")
        shop.stack("kill-db", "3")
        # node1 notices within the Galera suspect timeout and leaves the
        # Primary component; then every health must say so.
        wait_for("every health to answer 503", lambda: all(
            call("GET", path, timeout=10).status == 503 for path in HEALTH), 40)
        for path in HEALTH:
            r = call("GET", path, timeout=10)
            assert_problem(r, 503, "unavailable")
            # One health handler (lib/server.c): every service says which part is down.
            assert r.json.get("db") == "unavailable", (path, r.json)
            assert int(r.header("retry-after")) > 0, (path, r.headers)
            assert r.header("x-request-id") == r.json["request_id"], (path, r)
        # A real read (with a token: never from the edge cache) says the same.
        r = call("GET", "/products/%d" % p["id"], token=seller, timeout=20)
        assert_problem(r, 503, "unavailable")
        assert int(r.header("retry-after")) > 0, r.headers
    finally:
        _start_nodes((2, 3))
        wait_for("a 3-node Primary cluster with node1 the writer", _every_node_synced, 120, 1)
        wait_for("every health 200 again", _all_healthy, 60, 0.5)
    r = call("GET", "/products/%d" % p["id"], token=seller)
    assert r.status == 200 and r.json["id"] == p["id"], r
