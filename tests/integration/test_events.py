"""test_events.py: the order events as another team's consumer sees them on
the broker (a queue of its own bound to shop.events, docs/EVENTS.md), and
what product's settle consumer does with them: every confirmed order gives
exactly one order.confirmed CloudEvent, exactly one settled reservation and
exactly one email to the customer, counted over 1,000 orders placed
concurrently; a cancelled order releases its stock once; a message no consumer can use lands in the dead-letter queue."""
import json
import secrets
import sys
import threading
import time
import urllib.request

try:
    import pika
except ImportError:     # Debian's python3-pika (scripts/deps) when python3 is another build
    sys.path.append("/usr/lib/python3/dist-packages")
    import pika

import shop

_cache = {}
_lock = threading.Lock()


# ---------------------------------------------------------------- helpers

def _broker_user():
    """A user of the test's own (rabbitmqctl, as an operator would add one):
    it may declare and read queues named test.*, read settle.dead, and
    publish to shop.events."""
    if "amqp" not in _cache:
        user, pw = "shop-test", secrets.token_hex(12)
        shop.stack("rabbitmqctl", "1", "delete_user", user, check=False)
        shop.stack("rabbitmqctl", "1", "add_user", user, pw)
        shop.stack("rabbitmqctl", "1", "set_permissions", "-p", "/", user,
                   r"^test\..*$", r"^(test\..*|shop\.events)$",
                   r"^(test\..*|shop\.events|settle\.dead)$")
        _cache["amqp"] = (user, pw)
    return _cache["amqp"]


def _channel(node=1):
    user, pw = _broker_user()
    port = int(shop.STACK["SHOP_AMQP_PORTS"].split()[node - 1])
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        host="127.0.0.1", port=port, credentials=pika.PlainCredentials(user, pw),
        heartbeat=30, blocked_connection_timeout=30))
    return conn, conn.channel()


def _drain(ch, queue):
    """The bodies of every message now in queue, taken (acked) off it."""
    out = []
    while True:
        m, _, body = ch.basic_get(queue, auto_ack=True)
        if m is None:
            return out
        out.append(body)


class Tap:
    """A queue of the test's own bound to shop.events for `keys`: what
    another team's consumer would receive."""

    def __init__(self, keys=("order.*",), node=1, quorum=False):
        self.conn, self.ch = _channel(node)
        self.node = node
        self.queue = "test.events.%s" % secrets.token_hex(4)
        if quorum:      # replicated: survives the loss of a node (ha_events)
            self.ch.queue_declare(self.queue, durable=True,
                                  arguments={"x-queue-type": "quorum"})
        else:
            self.ch.queue_declare(self.queue, durable=False, exclusive=True, auto_delete=True)
        self.quorum = quorum
        for k in keys:
            self.ch.queue_bind(self.queue, "shop.events", routing_key=k)

    def drain(self, until, timeout=60.0, got=None):
        """Collects (method, properties, event dict) until until(events) is
        true or timeout; returns them all (each taken off the queue)."""
        got = [] if got is None else got
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                method, props, body = self.ch.basic_get(self.queue, auto_ack=True)
            except (pika.exceptions.AMQPError, OSError):
                time.sleep(1)          # its node went away: reconnect (quorum taps)
                self.conn, self.ch = _channel(self.node)
                continue
            if method is None:
                if until(got):
                    break
                time.sleep(0.2)
                continue
            got.append((method, props, json.loads(body)))
        return got

    def close(self):
        try:
            if self.quorum:
                self.ch.queue_delete(self.queue)
            self.conn.close()
        except Exception:
            pass


def _order(token, product_id, qty=1):
    r = shop.call("POST", "/orders", {"items": [{"product_id": product_id, "quantity": qty}]},
                  token=token)
    assert r.status == 201, r
    return r.json


def _stock(pid):
    """The product's stock as stored (the edge may cache GET /products/{id})."""
    return int(shop.sql("SELECT stock FROM shop_product.products WHERE id = %d" % pid)[0][0])


def _processed(event_ids):
    """Which of event_ids product's settle consumer recorded (once each:
    the id is the primary key)."""
    found = set()
    ids = list(event_ids)
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        q = ",".join("'%s'" % e for e in chunk)
        found.update(r[0] for r in shop.sql(
            "SELECT id FROM shop_product.processed_events WHERE id IN (%s)" % q))
    return found


def _settle_counters(names=("shop_events_processed_total", "shop_events_settle_batches_total")):
    """The settle consumers' counters `names` (default: events processed,
    batch transactions) as product's /metrics shows them on each host's
    internal listener, summed over the hosts."""
    totals = dict.fromkeys(names, 0)
    for host in (1, 2, 3):
        url = "http://127.0.0.1:%d/products/metrics" % (int(shop.STACK["SHOP_PORT_BASE"]) + 4 + host)
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        for line in text.splitlines():
            name, _, value = line.partition("{")
            if name in totals:
                totals[name] += int(float(value.rsplit("} ", 1)[1]))
    return tuple(totals[k] for k in names)


# ---------------------------------------------------------------- tests

def test_confirmed_event_format_and_settlement():
    """One order: its order.confirmed CloudEvent carries the documented
    attributes and data, and product confirms its reservation once."""
    tap = Tap()
    try:
        _, cust = shop.customers(1)[0]
        p = shop.new_product(shop.seller_token(), stock=5, price_cents=700)
        rid = shop.unique("ev")
        r = shop.call("POST", "/orders", {"items": [{"product_id": p["id"], "quantity": 2}]},
                      token=cust, headers={"X-Request-ID": rid})
        assert r.status == 201, r
        o = r.json
        got = tap.drain(lambda evs: any(e["subject"] == str(o["id"]) for _, _, e in evs), 30)
        mine = [(m, pr, e) for m, pr, e in got if e["subject"] == str(o["id"])]
        assert len(mine) == 1, mine
        method, props, ev = mine[0]
        assert method.routing_key == "order.confirmed"
        assert props.delivery_mode == 2, props              # persistent
        assert props.content_type == "application/cloudevents+json", props
        assert props.message_id == ev["id"]
        assert props.correlation_id == rid, props          # the request that placed it
        assert ev["specversion"] == "1.0"
        assert ev["type"] == "order.confirmed"
        assert ev["source"] == "/shop/order"
        assert ev["id"].startswith("order-"), ev
        assert ev["datacontenttype"] == "application/json"
        assert ev["time"].endswith("Z"), ev
        d = ev["data"]
        assert d["order_id"] == o["id"] and d["id"] == o["id"], d
        assert d["user_id"] == o["user_id"] and d["status"] == "confirmed"
        assert d["total_cents"] == 1400 and d["currency"] == p["currency"]
        assert [(i["product_id"], i["quantity"]) for i in d["items"]] == [(p["id"], 2)]
        assert isinstance(d["reservation_id"], int) and d["reservation_id"] > 0
        shop.wait_for("settle to process %s" % ev["id"], lambda: _processed([ev["id"]]), 30)
        st = shop.sql("SELECT status FROM shop_product.reservations WHERE id = %d"
                      % d["reservation_id"])
        assert st == [["confirmed"]], st
    finally:
        tap.close()


def test_cancelled_order_releases_once():
    """Cancel: one order.cancelled event; the reservation is released and
    the stock is back exactly once, though the order service's own release
    call and the consumer both act on it."""
    tap = Tap(("order.cancelled",))
    try:
        _, cust = shop.customers(1)[0]
        p = shop.new_product(shop.seller_token(), stock=10)
        o = _order(cust, p["id"], 3)
        assert _stock(p["id"]) == 7
        r = shop.call("POST", "/orders/%d/cancel" % o["id"], token=cust)
        assert r.status == 200, r
        got = tap.drain(lambda evs: any(e["subject"] == str(o["id"]) for _, _, e in evs), 30)
        mine = [e for _, _, e in got if e["subject"] == str(o["id"])]
        assert len(mine) == 1, mine
        ev = mine[0]
        assert ev["type"] == "order.cancelled" and ev["data"]["order_id"] == o["id"], ev
        assert ev["data"]["total_cents"] == 3 * p["price_cents"], ev
        shop.wait_for("settle to process %s" % ev["id"], lambda: _processed([ev["id"]]), 30)
        shop.wait_settled(30)
        assert _stock(p["id"]) == 10
        st = shop.sql("SELECT status FROM shop_product.reservations WHERE id = %d"
                      % ev["data"]["reservation_id"])
        assert st == [["released"]], st
        # Delivered again (as after a consumer crash): a duplicate, no effect.
        conn, ch = _channel(2)
        try:
            ch.confirm_delivery()
            ch.basic_publish("shop.events", "order.cancelled", json.dumps(ev),
                             pika.BasicProperties(delivery_mode=2, message_id=ev["id"]),
                             mandatory=True)
        finally:
            conn.close()
        time.sleep(2)
        assert _stock(p["id"]) == 10
    finally:
        tap.close()


def test_thousand_orders_one_event_one_settlement_one_email_each():
    """1,000 orders from 40 customers, 16 at a time: exactly one
    order.confirmed event per order on the broker, and product's consumer
    settled each order's reservation exactly once (its event id recorded
    once, the reservation confirmed), in batches: far fewer settle
    transactions than events; and the notify consumer emailed each
    customer exactly once per order (the SMTP sink's messages)."""
    n, threads = 1000, 16
    tap = Tap(("order.confirmed",))
    try:
        custs = shop.customers(40)
        products = [shop.new_product(shop.seller_token(), stock=100000) for _ in range(5)]
        shop.wait_settled(30)
        processed0, batches0 = _settle_counters()
        orders, errors = [], []
        it = iter(range(n))

        def worker():
            while True:
                with _lock:
                    i = next(it, None)
                if i is None:
                    return
                _, tok = custs[i % len(custs)]
                r = shop.call("POST", "/orders", {"items": [
                    {"product_id": products[i % len(products)]["id"], "quantity": 1}]},
                    token=tok)
                with _lock:
                    (orders if r.status == 201 else errors).append(r.json if r.status == 201 else r)
        ts = [threading.Thread(target=worker) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors[:5]
        assert len(orders) == n
        ids = {str(o["id"]) for o in orders}
        got = tap.drain(lambda evs: ids <= {e["subject"] for _, _, e in evs}, 120)
        mine = [e for _, _, e in got if e["subject"] in ids]
        per_order = {}
        for e in mine:
            per_order.setdefault(e["subject"], []).append(e["id"])
        missing = ids - set(per_order)
        assert not missing, "no event for %d orders, e.g. %s" % (len(missing), sorted(missing)[:5])
        dup = {k: v for k, v in per_order.items() if len(v) != 1}
        assert not dup, "orders with more than one event: %s" % list(dup.items())[:5]
        event_ids = {v[0] for v in per_order.values()}
        assert len(event_ids) == n
        shop.wait_for("settle to process all %d events" % n,
                      lambda: len(_processed(event_ids)) == n, 120, every=1)
        rids = ",".join(str(e["data"]["reservation_id"]) for e in mine)
        st = shop.sql("SELECT status, COUNT(*) FROM shop_product.reservations WHERE id IN (%s)"
                      " GROUP BY status" % rids)
        assert st == [["confirmed", str(n)]], st
        # Batched: the events that arrive together settle in one transaction.
        processed1, batches1 = _settle_counters()
        processed, batches = processed1 - processed0, batches1 - batches0
        print("settle: %d events in %d batch transactions" % (processed, batches))
        assert processed >= n, (processed, batches)
        assert 0 < batches and batches * 3 <= processed * 2, (processed, batches)
        # And the customer heard of each: exactly one email per order.
        want = {int(i) for i in ids}

        def all_mailed():
            got = {k[0]: v for k, v in shop.order_mails().items() if k[1] == "confirmed"}
            return got if want <= set(got) else None
        shop.wait_for("an email for each of the %d orders" % n, all_mailed, 180, every=1)
        time.sleep(2)                    # a late duplicate would arrive now
        got = {k[0]: v for k, v in shop.order_mails().items() if k[1] == "confirmed"}
        twice = {k: len(got[k]) for k in want if len(got[k]) != 1}
        assert not twice, "orders emailed more than once: %r" % sorted(twice.items())[:10]
        # Nothing left behind: the outbox is drained, the lag gauge says so.
        pend = shop.sql("SELECT COUNT(*) FROM shop_order.outbox WHERE published_at IS NULL")
        assert pend == [["0"]], pend
    finally:
        tap.close()


def test_unusable_message_is_dead_lettered():
    """A message that is no CloudEvent, and an order event without the
    reservation it needs, go to settle.dead at once; the consumer goes on."""
    conn, ch = _channel(3)
    try:
        ch.confirm_delivery()
        tag = secrets.token_hex(4)
        bad = [b"not json " + tag.encode(),
               json.dumps({"specversion": "1.0", "id": "test-" + tag, "source": "/test",
                           "type": "order.confirmed", "data": {"order_id": 1}}).encode()]
        for body in bad:
            ch.basic_publish("shop.events", "order.confirmed", body,
                             pika.BasicProperties(delivery_mode=2), mandatory=True)
        seen = []

        def dead():
            seen.extend(_drain(ch, "settle.dead"))
            return sum(1 for b in seen if tag.encode() in b) == 2
        shop.wait_for("both messages in settle.dead", dead, 30)
        assert "test-" + tag not in _processed(["test-" + tag])
    finally:
        conn.close()
    # The consumer still settles.
    _, cust = shop.customers(1)[0]
    p = shop.new_product(shop.seller_token(), stock=3)
    o = _order(cust, p["id"])
    ev_ids = shop.wait_for("the order's outbox row", lambda: shop.sql(
        "SELECT CONCAT('order-', id) FROM shop_order.outbox WHERE subject = '%d'" % o["id"]), 10)
    shop.wait_for("settle to process it", lambda: _processed([ev_ids[0][0]]), 30)


def test_poison_event_fails_alone():
    """A batch holding an event the database refuses every time (an id the
    ASCII processed_events column cannot store) is redone one event per
    transaction: the 30 events around it settle, the poison one alone is
    given back until the delivery limit dead-letters it."""
    _, cust = shop.customers(1)[0]
    p = shop.new_product(shop.seller_token(), stock=5)
    o = _order(cust, p["id"])
    rows = shop.wait_for("the order's outbox row", lambda: shop.sql(
        "SELECT payload FROM shop_order.outbox WHERE subject = '%d'" % o["id"]), 10)
    rid = json.loads(rows[0][0])["reservation_id"]
    fallbacks0, = _settle_counters(("shop_events_settle_fallbacks_total",))
    tag = secrets.token_hex(4)
    good = ["test-%s-%d" % (tag, i) for i in range(30)]
    poison = "test-%s-caf\u00e9" % tag

    def event(eid):
        return json.dumps({"specversion": "1.0", "id": eid, "source": "/test",
                           "type": "order.confirmed", "subject": str(o["id"]),
                           "data": {"order_id": o["id"], "reservation_id": rid}})
    conn, ch = _channel(1)
    try:        # all at once (no confirms): they arrive in the same batches
        for i, eid in enumerate(good):
            if i == 15:
                ch.basic_publish("shop.events", "order.confirmed", event(poison),
                                 pika.BasicProperties(delivery_mode=2))
            ch.basic_publish("shop.events", "order.confirmed", event(eid),
                             pika.BasicProperties(delivery_mode=2))
    finally:
        conn.close()
    shop.wait_for("the 30 good events settled", lambda: len(_processed(good)) == 30, 30)
    fallbacks, = _settle_counters(("shop_events_settle_fallbacks_total",))
    assert fallbacks > fallbacks0, (fallbacks0, fallbacks)
    st = shop.sql("SELECT status FROM shop_product.reservations WHERE id = %d" % rid)
    assert st == [["confirmed"]], st
    # The poison one: given back ten times (pauses of CONSUME_RETRY_MS,
    # 100 ms here, doubled up to 800 ms), then in settle.dead.
    conn, ch = _channel(3)
    try:
        seen = []

        def dead():
            for body in _drain(ch, "settle.dead"):
                try:
                    seen.append(json.loads(body).get("id"))
                except ValueError:
                    pass
            return poison in seen
        shop.wait_for("the poison event in settle.dead", dead, 60, every=1)
    finally:
        conn.close()
