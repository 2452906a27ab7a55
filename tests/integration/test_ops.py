"""test_ops.py: what an operator relies on: rate limits at the edge (429
problem+json with Retry-After), per-pool Prometheus metrics that the edge
does not publish, one request id followed through every service's log, and
the transactional outbox."""
import glob
import json
import os
import subprocess
import threading
import time
import urllib.request

import shop
from shop import assert_problem, call


def _restart_edge(rate, login_rate):
    env = dict(os.environ)
    env.update({k: v for k, v in shop.STACK.items() if k.startswith("SHOP_") and isinstance(v, str)})
    env.update(SHOP_RATE_LIMIT=str(rate), SHOP_LOGIN_RATE_LIMIT=str(login_rate))
    subprocess.run([os.path.join(shop.REPO, "scripts", "stack"), "restart-edge"], env=env,
                   check=True, capture_output=True, text=True)
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            if call("GET", "/auth/health", timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("edge did not come back after restart")


def test_rate_limits_answer_429_with_retry_after():
    try:
        _restart_edge(rate=40, login_rate=5)
        body = {"email": shop.unique_email("rl"), "password": "wrong password"}
        statuses = [call("POST", "/auth/login", body).status for _ in range(8)]
        assert statuses[:5] == [401] * 5, statuses
        r = call("POST", "/auth/login", body)
        assert_problem(r, 429, "rate_limited")
        assert int(r.header("retry-after")) > 0, r.headers
        # The general limit: a burst of reads from one address.
        last = None
        for _ in range(60):
            last = call("GET", "/products?limit=1")
            if last.status == 429:
                break
        assert_problem(last, 429, "rate_limited")
        assert int(last.header("retry-after")) > 0
        assert last.header("x-request-id") == last.json["request_id"]
    finally:
        _restart_edge(rate=100000, login_rate=100000)
    assert call("POST", "/auth/login", {"email": "x@example.test", "password": "12345678"}).status == 401


def _host_url(n):
    return "http://127.0.0.1:%d" % (int(shop.STACK["SHOP_PORT_BASE"]) + 10 + n)


def test_metrics_are_per_pool_and_not_published_at_the_edge():
    _, seller = shop.new_user("seller")
    p = shop.new_product(seller)
    route = dict(route="/products/{id}", method="GET", status="200")
    before = shop.metric(shop.scrape(1, "/products/metrics"), "shop_http_requests_total", **route) or 0
    # 30 requests straight to host 1: its 3 workers share them, the scrape
    # (answered by any one worker) must count all of them.
    for _ in range(30):
        with urllib.request.urlopen(_host_url(1) + "/products/%d" % p["id"], timeout=5) as r:
            assert r.status == 200
    after = shop.metric(shop.scrape(1, "/products/metrics"), "shop_http_requests_total", **route)
    assert after - before == 30, (before, after)
    text = shop.scrape(1, "/products/metrics")
    assert shop.metric(text, "shop_http_request_duration_seconds_count", route="/products/{id}") >= 30
    for svc in ("auth", "orders"):
        assert "shop_http_requests_total" in shop.scrape(1, "/%s/metrics" % svc)
    for path in ("/products/metrics", "/auth/metrics", "/orders/metrics"):
        assert_problem(call("GET", path), 404)
        # Nor does the port HAProxy proxies to serve them: the pool answers
        # as for any unknown path.
        assert_problem(call("GET", path, base=_host_url(1)), 404)


def test_order_metrics_count_placed_and_rejected():
    _, seller = shop.new_user("seller")
    _, buyer = shop.new_user()
    p = shop.new_product(seller, stock=1)

    def total(name):
        return sum(shop.metric(shop.scrape(h, "/orders/metrics"), name) or 0 for h in (1, 2, 3))
    placed, rejected = total("shop_orders_placed_total"), total("shop_orders_rejected_stock_total")
    items = {"items": [{"product_id": p["id"], "quantity": 1}]}
    assert call("POST", "/orders", items, token=buyer).status == 201
    assert call("POST", "/orders", items, token=buyer).status == 409
    assert total("shop_orders_placed_total") == placed + 1
    assert total("shop_orders_rejected_stock_total") == rejected + 1


def test_one_request_id_is_logged_by_every_service_it_touched():
    """An order's X-Request-ID is in the log lines of order and product (the
    request and its reservation call), and later in those of the consumers
    that act on its event: settle (product's) and notify."""
    _, seller = shop.new_user("seller")
    _, buyer = shop.new_user()
    p = shop.new_product(seller)
    rid = shop.unique("trace")
    r = call("POST", "/orders", {"items": [{"product_id": p["id"], "quantity": 1}]},
             token=buyer, headers={"X-Request-ID": rid})
    assert r.status == 201 and r.header("x-request-id") == rid
    want = {"workers.log:order", "workers.log:product", "consume-settle.log:product",
            "consume-notify.log:notify"}
    seen = set()
    deadline = time.time() + 30
    while time.time() < deadline and seen != want:
        for name in ("workers.log", "consume-settle.log", "consume-notify.log"):
            for f in glob.glob(os.path.join(shop.STACK["SHOP_STATE_DIR"], "host*", name)):
                with open(f, errors="replace") as fh:
                    for line in fh:
                        if rid in line:
                            entry = json.loads(line)       # every line is one JSON object
                            assert entry["request_id"] == rid, entry
                            assert entry["level"] and entry["ts"].endswith("Z")
                            seen.add("%s:%s" % (name, entry["service"]))
        time.sleep(0.5)
    assert seen == want, seen
    # The consumers' lines about the order name its event: the id is theirs.
    event_lines = []
    for f in glob.glob(os.path.join(shop.STACK["SHOP_STATE_DIR"], "host*", "consume-*.log")):
        with open(f, errors="replace") as fh:
            event_lines += [json.loads(l) for l in fh if rid in l]
    assert any("order %d" % r.json["id"] in e["msg"] for e in event_lines), event_lines


def test_outbox_records_confirmed_and_cancelled_orders():
    _, seller = shop.new_user("seller")
    _, buyer = shop.new_user()
    p = shop.new_product(seller)
    r = call("POST", "/orders", {"items": [{"product_id": p["id"], "quantity": 2}]}, token=buyer)
    assert r.status == 201
    oid = r.json["id"]
    assert call("POST", "/orders/%d/cancel" % oid, token=buyer).status == 200
    assert call("POST", "/orders/%d/cancel" % oid, token=buyer).status == 200
    rows = shop.sql("SELECT event_type FROM shop_order.outbox WHERE order_id = %d ORDER BY id" % oid)
    assert [row[0] for row in rows] == ["order.confirmed", "order.cancelled"], rows


def _auth_servers_down():
    with urllib.request.urlopen(shop.STACK["SHOP_STATS_URL"] + "/stats;csv", timeout=5) as f:
        rows = [r.split(",") for r in f.read().decode().splitlines()]
    return [r[1] for r in rows if r[0] == "auth" and r[1].startswith("host") and r[17] != "UP"]


def test_a_login_burst_leaves_auth_available():
    """30 logins at once (Argon2id, 64 MiB each) through the edge: HAProxy
    lets fewer run per host than it has auth workers, so each host keeps an
    auth worker for HAProxy's health check and the cheap auth routes.  While
    the burst runs, GET /auth/health through the edge keeps answering (200,
    or the service's own 503 when its database is away), HAProxy never has
    every auth server marked down, and each login succeeds
    or, when it waited in HAProxy's queue longer than its timeout (10 s: a
    machine busy with more than this test), is told to retry.  (With logins
    sharing the auth backend's per-host limit, such a burst queued the
    health checks behind the hashes in lighttpd and took every host out.)"""
    email = shop.new_user()[0]["email"]
    done, errors, slowest, downs = threading.Event(), [], [0.0], []

    def probe():
        while not done.is_set():
            t = time.time()
            try:
                # 503 is the service's "my database is not there" (a busy
                # machine can fail the DB listener's checks): the pool answered.
                r = call("GET", "/auth/health", timeout=10)
                if r.status not in (200, 503) or r.json.get("code") != (
                        "unavailable" if r.status == 503 else None):
                    errors.append(r)
            except OSError as e:
                errors.append(repr(e))
            slowest[0] = max(slowest[0], time.time() - t)
            down = _auth_servers_down()
            downs.append(down)
            if len(down) == 3:
                errors.append(("every auth server down", down))
            time.sleep(0.1)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        res = shop.parallel(30, lambda i: call("POST", "/auth/login",
                                               {"email": email, "password": shop.PASSWORD}))
    finally:
        done.set()
        prober.join()
    assert all(isinstance(r, shop.Resp) for r in res), res
    assert 200 in [r.status for r in res], res
    for r in res:
        if r.status != 200:
            assert_problem(r, 503)
            assert r.header("retry-after"), r.headers
    assert not errors, errors
    print("slowest /auth/health %.2f s; auth servers seen down: %r"
          % (slowest[0], sorted({h for d in downs for h in d})))
