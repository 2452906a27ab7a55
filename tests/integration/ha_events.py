"""ha_events.py: the event pipeline under failures (make check-ha).  In each
case orders are placed while something breaks, and afterwards every order
has its order.confirmed event on the broker (a replicated queue of the
test's own), product's settle consumer recorded each event exactly once and
confirmed each reservation, and nothing is left in the outbox:
  1. a broker node SIGKILLed under order load (the node the first host's
     relay and consumer use);
  2. the whole broker stopped for 30 s: orders are still placed, the outbox
     grows (and its lag gauge), everything goes out once it is back;
  3. every relay SIGKILLed while it publishes a backlog: the rows not yet
     marked go out again (same event ids) and the consumer dedupes them;
  4. the cluster without quorum for longer than the consumers' ten
     deliveries take: the events they hold wait for the database."""
import os
import signal
import threading
import time
import urllib.request

import shop
import test_events as te


def _relay_pids():
    out = []
    for n in (1, 2, 3):
        pid = shop.read_pid(os.path.join(shop.STACK["SHOP_STATE_DIR"], "host%d" % n,
                                          "relay-order.pid"))
        if pid:
            out.append(pid)
    return out


class OrderLoad:
    """Orders placed by `threads` threads until stop(); each must be 201."""

    def __init__(self, threads=4):
        self.custs = shop.customers(8)
        self.product = shop.new_product(shop.seller_token(), stock=1000000)
        self.orders, self.errors = [], []
        self._stop = threading.Event()
        self._ts = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]
        for t in self._ts:
            t.start()

    def _run(self, i):
        k = i
        while not self._stop.is_set():
            _, tok = self.custs[k % len(self.custs)]
            k += len(self._ts)
            r = shop.call("POST", "/orders", {"items": [
                {"product_id": self.product["id"], "quantity": 1}]}, token=tok)
            if r.status == 201:
                self.orders.append(r.json["id"])
            else:
                self.errors.append(r)
            time.sleep(0.02)

    def stop(self):
        self._stop.set()
        for t in self._ts:
            t.join()
        assert not self.errors, self.errors[:5]
        return self.orders


def _pending():
    return int(shop.sql("SELECT COUNT(*) FROM shop_order.outbox WHERE published_at IS NULL")[0][0])


def _check_delivered(tap, order_ids, timeout=180):
    """Every order's event on the tap (duplicates only as the same id), each
    processed once by settle, each reservation confirmed, outbox empty."""
    ids = {str(o) for o in order_ids}
    got = tap.drain(lambda evs: ids <= {e["subject"] for _, _, e in evs}, timeout)
    per_order = {}
    for _, _, e in got:
        if e["subject"] in ids:
            per_order.setdefault(e["subject"], set()).add(e["id"])
    missing = ids - set(per_order)
    assert not missing, "%d orders without an event, e.g. %s" % (len(missing), sorted(missing)[:5])
    two = {k: v for k, v in per_order.items() if len(v) != 1}
    assert not two, "orders with two different event ids: %s" % list(two.items())[:5]
    dups = sum(1 for _, _, e in got if e["subject"] in ids) - len(ids)
    event_ids = {next(iter(v)) for v in per_order.values()}
    shop.wait_for("settle to process all %d events" % len(ids),
                  lambda: len(te._processed(event_ids)) == len(ids), timeout, every=1)
    rids = ",".join(str(e["data"]["reservation_id"]) for _, _, e in got if e["subject"] in ids)
    st = shop.sql("SELECT status, COUNT(*) FROM shop_product.reservations WHERE id IN (%s)"
                  " GROUP BY status" % rids)
    assert st == [["confirmed", str(len(ids))]], st
    shop.wait_for("the outbox drained", lambda: _pending() == 0, 30)
    return dups


def test_broker_node_killed_under_load():
    tap = te.Tap(("order.confirmed",), node=3, quorum=True)
    try:
        load = OrderLoad()
        time.sleep(3)
        shop.stack("kill-broker", "1")
        time.sleep(6)
        orders = load.stop()
        assert len(orders) > 20, len(orders)
        dups = _check_delivered(tap, orders)
        print("    %d orders, %d duplicate deliveries on the tap" % (len(orders), dups))
    finally:
        shop.stack("start-broker", "1", check=False)
        tap.close()


def test_whole_broker_down_30s():
    tap = te.Tap(("order.confirmed",), node=2, quorum=True)
    try:
        tap.conn.close()
        shop.stack("stop-broker", "all")
        load = OrderLoad(threads=2)
        time.sleep(30)
        orders = load.stop()
        assert len(orders) > 20, len(orders)
        pending = _pending()
        assert pending >= len(orders), (pending, len(orders))
        lag = _order_lag()
        assert lag > 10, lag
        shop.stack("start-broker", "all")
        tap.conn, tap.ch = te._channel(2)
        _check_delivered(tap, orders)
        shop.wait_for("the lag gauge back to 0", lambda: _order_lag() == 0, 30)
    finally:
        shop.stack("start-broker", "all", check=False)
        try:
            tap.conn, tap.ch = te._channel(2)
        except Exception:
            pass
        tap.close()


def _order_lag():
    """shop_outbox_lag_seconds from host 1's /orders/metrics."""
    url = "http://127.0.0.1:%d/orders/metrics" % (int(shop.STACK["SHOP_PORT_BASE"]) + 5)
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith("shop_outbox_lag_seconds{"):
            return float(line.split()[-1])
    raise AssertionError("no shop_outbox_lag_seconds in %s" % url)


def test_relay_killed_mid_batch():
    tap = te.Tap(("order.confirmed",), node=2, quorum=True)
    relays = _relay_pids()
    assert len(relays) == 3, relays
    try:
        for pid in relays:
            os.kill(pid, signal.SIGSTOP)
        load = OrderLoad()
        shop.wait_for("a backlog of 400 events", lambda: _pending() >= 400, 120, every=1)
        orders = load.stop()
        for pid in relays:
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.05)
        before = _pending()
        for pid in relays:
            os.kill(pid, signal.SIGKILL)
        print("    %d orders; %d rows pending when the relays were killed" % (len(orders), before))
        for n in (1, 2, 3):
            shop.stack("start-host", str(n))
        dups = _check_delivered(tap, orders)
        print("    %d duplicate deliveries on the tap (deduped by settle)" % dups)
    finally:
        for pid in relays:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        tap.close()


def _consumer_pids(names=("settle", "notify")):
    out = []
    for n in (1, 2, 3):
        for name in names:
            pid = shop.read_pid(os.path.join(shop.STACK["SHOP_STATE_DIR"], "host%d" % n,
                                              "consume-%s.pid" % name))
            if pid:
                out.append(pid)
    return out


def test_events_wait_for_a_database_that_is_away():
    """Events the consumers take while the cluster has no quorum wait for
    it: held, not given back until the delivery limit dead-letters them.
    Here the limit is reached in about 6 s (first pause 100 ms, doubled up
    to 800 ms, ten returns) and the database stays away 20 s: afterwards
    every event is settled and emailed, and settle.dead holds none of them
    (an event notify dead-lettered would miss its email)."""
    consumers = _consumer_pids()
    assert len(consumers) == 6, consumers
    custs = shop.customers(3)
    p = shop.new_product(shop.seller_token(), stock=100)
    orders = []
    stopped = False
    try:
        for pid in consumers:                  # the events wait in the queues
            os.kill(pid, signal.SIGSTOP)
        for i in range(9):
            r = shop.call("POST", "/orders", {"items": [{"product_id": p["id"], "quantity": 1}]},
                          token=custs[i % 3][1])
            assert r.status == 201, r
            orders.append(r.json["id"])
        shop.wait_for("the outbox relayed", lambda: _pending() == 0, 30)
        ids = ",".join(str(o) for o in orders)
        event_ids = [r[0] for r in shop.sql("SELECT CONCAT('order-', id) FROM shop_order.outbox"
                                            " WHERE order_id IN (%s)" % ids)]
        assert len(event_ids) == len(orders), event_ids
        shop.stack("kill-db", "2")
        shop.stack("kill-db", "3")
        stopped = True
        shop.wait_for("node1 to leave the Primary component", lambda: shop.stack(
            "status", check=False).stdout.count("non-Primary") > 0, 15, every=0.5)
        for pid in consumers:                  # they take the events now, the database away
            os.kill(pid, signal.SIGCONT)
        time.sleep(20)
    finally:
        for pid in consumers:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        if stopped:
            ts = [threading.Thread(target=shop.stack, args=("start-db", str(n)),
                                   kwargs={"check": False}) for n in (2, 3)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
    shop.wait_for("settle to process all %d events" % len(event_ids),
                  lambda: len(te._processed(event_ids)) == len(event_ids), 120, every=1)
    shop.wait_for("an email per order", lambda: int(shop.sql(
        "SELECT COUNT(*) FROM shop_notify.sent_notifications WHERE sent_at IS NOT NULL"
        " AND event_id IN (%s)" % ",".join("'%s'" % e for e in event_ids))[0][0]) == len(event_ids),
        120, every=1)
    conn, ch = te._channel(1)
    try:
        dead = te._drain(ch, "settle.dead")
    finally:
        conn.close()
    assert not [b for b in dead if any(('"%s"' % e).encode() in b for e in event_ids)], \
        "events of the outage were dead-lettered"
    st = shop.sql("SELECT r.status, COUNT(*) FROM shop_product.reservations r JOIN"
                  " shop_order.orders o ON o.reservation_id = r.id WHERE o.id IN (%s)"
                  " GROUP BY r.status" % ",".join(str(o) for o in orders))
    assert st == [["confirmed", str(len(orders))]], st
