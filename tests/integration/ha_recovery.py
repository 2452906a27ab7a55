"""ha_recovery.py: a full-cluster crash.  All three Galera nodes are
SIGKILLed at once (power loss); `scripts/stack up` must then recover the
cluster the way galera/bootstrap documents it (bootstrap from the node with
the highest recovered seqno, the others join), and nothing a client was told
about may be lost: every confirmed order and every cancellation is still
there, stock matches the orders, and the three nodes hold identical data.
Also: a donor left Donor/Desynced by a partition in the middle of its state
transfer is brought back by `scripts/stack up`."""
import os
import shutil
import signal
import subprocess
import time

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


def _bootstrap(*args):
    return [os.path.join(shop.REPO, "galera", "bootstrap")] + list(args)


def _pids(*words):
    """Pids of the processes whose command line holds every one of words."""
    out = []
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        if all(w in cmd for w in words):
            out.append(int(d))
    return sorted(out)


def test_donor_stuck_by_a_partition_during_its_state_transfer_is_restarted_by_stack_up():
    _, seller = shop.new_user("seller")
    _, buyer = shop.new_user()
    p = shop.new_product(seller, stock=50)
    cnf = {n: ha._state("db%d.cnf" % n) for n in (1, 2, 3)}
    # Node 1 alone, node 3 with an empty datadir: it needs a full copy (SST)
    # from node 1.  A joiner frozen past the EVS timeouts in the middle of it
    # partitions the two; once they merge again Galera leaves the donor
    # Donor/Desynced for good (it never undoes the SST's desync).
    for n in (3, 2):
        subprocess.run(_bootstrap("stop", cnf[n]), check=True, capture_output=True)
    # The freeze must land inside the copy; on a busy machine the copy may
    # end first (node 1 then stays Synced): set the fault up again, up to
    # three times, rather than test the repair on a stack that needs none.
    for attempt in (1, 2, 3):
        shutil.rmtree(ha._state("db3", "data"))
        joiner = subprocess.Popen(_bootstrap("join", cnf[3]), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            # Frozen the moment node 1's side of the copy starts (it lasts seconds).
            ha._wait("node 1's SST donor script", lambda: _pids("--role donor", cnf[1]), 60, 0.01)
            pid = ha._wait("node 3's mariadbd", lambda: _pids("mariadbd", cnf[3]), 10, 0.01)[0]
            os.kill(pid, signal.SIGSTOP)
            time.sleep(5)
            os.kill(pid, signal.SIGCONT)
            out, _ = joiner.communicate(timeout=180)
        finally:
            if joiner.poll() is None:
                joiner.kill()
                joiner.wait()
        assert joiner.returncode == 0, out
        time.sleep(5)
        stuck = ha._node_status(1)
        if stuck.get("wsrep_local_state_comment") == "Donor/Desynced":
            break
        print("      note: attempt %d left node 1 %r (the copy ended before the freeze);"
              " node 3 copies again" % (attempt, stuck))
        subprocess.run(_bootstrap("stop", cnf[3]), check=True, capture_output=True)
    assert stuck.get("wsrep_local_state_comment") == "Donor/Desynced", \
        "the partition did not leave node 1 stuck: %r" % stuck

    up = shop.stack("up", check=False)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "stuck Donor/Desynced" in up.stderr, up.stderr
    ha._wait_whole()
    r = call("POST", "/orders", {"items": [{"product_id": p["id"], "quantity": 2}]}, token=buyer)
    assert r.status == 201, r
    assert call("GET", "/products/%d" % p["id"], token=seller).json["stock"] == 48
    assert ha._nodes_identical() is None, "nodes differ after the restart"
