"""ha_recovery.py: a full-cluster crash.  All three Galera nodes are
SIGKILLed at once (power loss); `scripts/stack up` must then recover the
cluster the way galera/bootstrap documents it (bootstrap from the node with
the highest recovered seqno, the others join), and nothing a client was told
about may be lost: every confirmed order and every cancellation is still
there, stock matches the orders, and the three nodes hold identical data."""
import os
import signal

import ha_failover as ha
import shop
from shop import call


def _kill_all_nodes():
    pids = []
    for n in (1, 2, 3):
        pid = ha._read_pid(ha._state("db%d" % n, "mysqld.pid"))
        assert pid, "node %d has no pid" % n
        pids.append(pid)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    ha._wait("every node dead", lambda: not any(os.path.exists("/proc/%d" % p) for p in pids), 20)


def test_full_cluster_crash_loses_no_committed_order():
    _, seller = shop.new_user("seller")
    _, buyer = shop.new_user()
    p = shop.new_product(seller, stock=1000)
    confirmed, cancelled = {}, set()
    for i in range(12):
        r = call("POST", "/orders", {"items": [{"product_id": p["id"], "quantity": i % 3 + 1}]},
                 token=buyer, headers={"Idempotency-Key": "crash-%d" % i})
        assert r.status == 201, r
        confirmed[r.json["id"]] = i % 3 + 1
    for oid in list(confirmed)[:4]:
        assert call("POST", "/orders/%d/cancel" % oid, token=buyer).status == 200
        cancelled.add(oid)
        del confirmed[oid]

    _kill_all_nodes()
    try:
        assert call("GET", "/products/%d" % p["id"], token=seller).status == 503
    finally:
        up = shop.stack("up", check=False)
        assert up.returncode == 0, up.stdout + up.stderr
    ha._wait("health 200 after recovery",
             lambda: call("GET", "/orders/health").status == 200, 60)

    for oid, qty in confirmed.items():
        r = call("GET", "/orders/%d" % oid, token=buyer)
        assert r.status == 200 and r.json["status"] == "confirmed", r
    for oid in cancelled:
        r = call("GET", "/orders/%d" % oid, token=buyer)
        assert r.status == 200 and r.json["status"] == "cancelled", r
    stock = call("GET", "/products/%d" % p["id"], token=seller).json["stock"]
    assert stock == 1000 - sum(confirmed.values()), (stock, confirmed)
    # A retry of an order placed before the crash still places nothing new.
    r = call("POST", "/orders", {"items": [{"product_id": p["id"], "quantity": 11 % 3 + 1}]},
             token=buyer, headers={"Idempotency-Key": "crash-11"})
    assert r.status == 201 and r.json["id"] in confirmed, r
    assert call("GET", "/products/%d" % p["id"], token=seller).json["stock"] == stock
    assert ha._nodes_identical() is None, "nodes differ after recovery"
