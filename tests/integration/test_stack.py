"""test_stack.py: the local cluster as a client and an operator see it:
every piece up, the edge's request ids and routing, and failover when an app
host or the writer DB node goes away.  Every test that breaks something puts
it back in a finally block and waits until the stack is whole again, so the
tests after it start from a healthy stack."""
import http.client
import socket
import time
import urllib.parse

import shop


status = shop.stack_status


wait_for = shop.wait_for


def whole_stack():
    nodes, hosts, servers = status()
    ok = (len(nodes) == 3 and all(s.startswith("Synced Primary 3") for s in nodes.values())
          and len(hosts) == 3 and all(h.startswith("up ") for h in hosts.values())
          and len(servers) == 12 and all(s == "UP" for s in servers.values()))
    return ok and (nodes, hosts, servers)


def test_status_shows_everything_up():
    nodes, hosts, servers = wait_for("a whole stack", whole_stack)
    assert sorted(nodes) == ["node1", "node2", "node3"], nodes
    assert sorted(hosts) == ["host1", "host2", "host3"], hosts
    for svc in ("auth", "product", "order"):
        for h in (1, 2, 3):
            assert servers["%s/host%d" % (svc, h)] == "UP", servers
    assert shop.stack("status", check=False).returncode == 0


def test_valid_request_id_is_echoed():
    for rid in ("abc", "A.b_c-9", "x" * 128):
        r = shop.call("GET", "/products/health", headers={"X-Request-ID": rid})
        assert r.header("x-request-id") == rid, (rid, r.headers)


def test_invalid_request_id_is_replaced():
    for bad in ("x" * 200, "has space", "semi;colon", "x" * 129):
        r = shop.call("GET", "/auth/health", headers={"X-Request-ID": bad})
        got = r.header("x-request-id")
        assert got and got != bad, (bad, got)
        assert all(c.isalnum() or c in "._-" for c in got) and len(got) <= 128, got
    r = shop.call("GET", "/auth/health")
    assert r.header("x-request-id"), r.headers


def test_edge_errors_are_problems_with_the_request_id():
    r = shop.call("GET", "/no/such/thing", headers={"X-Request-ID": "edge-404-check"})
    shop.assert_problem(r, 404, "not_found")
    assert r.header("x-request-id") == "edge-404-check"
    assert r.json["request_id"] == "edge-404-check", r


def test_internal_is_not_reachable_through_the_edge():
    token = open(shop.STACK["SHOP_SERVICE_TOKEN_FILE"]).read().strip()
    for method, path, body in (("GET", "/internal/reservations/1", None),
                               ("POST", "/internal/reservations",
                                {"order_id": 1, "items": [{"product_id": 1, "quantity": 1}]}),
                               ("POST", "/internal/reservations/1/release", {})):
        r = shop.call(method, path, body, headers={"X-Service-Token": token})
        shop.assert_problem(r, 404, "not_found")
    # ... while the internal frontend routes it to the product pools.
    r = shop.call("GET", "/internal/reservations/1", base=shop.STACK["SHOP_INTERNAL_URL"],
                  headers={"X-Service-Token": token})
    assert r.status in (200, 404) and isinstance(r.json, dict), r


def test_huge_body_is_refused_with_a_problem():
    # Far too large: the edge answers from the headers alone, so send only
    # the start of the body and read the answer.
    url = urllib.parse.urlsplit(shop.STACK["SHOP_URL"])
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.sendall(b"POST /auth/register HTTP/1.1\r\nHost: shop\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n"
                  b"X-Request-ID: huge-body\r\n\r\n{" % (2 << 20))
        s.sendall(b" " * 4096)
        resp = http.client.HTTPResponse(s)
        resp.begin()
        r = shop.Resp(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    shop.assert_problem(r, 413, "payload_too_large")
    assert r.json["request_id"] == "huge-body", r
    # Over the 64 KiB limit but not huge: the service itself answers.
    r = shop.call("POST", "/auth/register", raw=b"{" + b" " * (80 << 10) + b"}",
                  headers={"Content-Type": "application/json"})
    shop.assert_problem(r, 413, "payload_too_large")


def health_all_ok():
    for p in ("/auth/health", "/products/health", "/orders/health"):
        r = shop.call("GET", p, timeout=10)
        if r.status != 200:
            return False
    return True


def test_stopping_a_host_loses_no_request():
    try:
        shop.stack("stop-host", "2")
        _, hosts, _ = status()
        assert hosts["host2"].startswith("down"), hosts
        # Immediately, before the health checks notice: retries redispatch.
        for _ in range(10):
            for p in ("/auth/health", "/products/health", "/orders/health"):
                r = shop.call("GET", p)
                assert r.status == 200, (p, r)
            r = shop.call("GET", "/products?limit=5")
            assert r.status == 200, r
        wait_for("HAProxy to mark host2 down",
                 lambda: status()[2].get("auth/host2", "").startswith("DOWN"), 10)
        u = shop.register()
        assert shop.login(u["email"])["access_token"]
    finally:
        shop.stack("start-host", "2")
        wait_for("host2 back in HAProxy", lambda: all(
            status()[2].get("%s/host2" % s) == "UP" for s in ("auth", "product", "order")), 20)
    _, hosts, _ = status()
    assert hosts["host2"].startswith("up"), hosts


def test_db_writer_fails_over_to_a_backup():
    try:
        shop.stack("stop-db", "1")
        # Within a few seconds the DB listener sends everyone to node 2:
        # reads and writes through the edge work again.
        wait_for("/auth/health 200 after node1 stopped", lambda: shop.call(
            "GET", "/auth/health", timeout=5).status == 200, 15)
        wait_for("HAProxy to mark node1 down",
                 lambda: status()[2].get("db/node1", "").startswith("DOWN"), 10)
        u = wait_for("a registration on the backup writer", lambda: _try_register(), 15)
        assert shop.login(u["email"])["access_token"]
        nodes, _, _ = status()
        assert nodes["node1"] == "stopped", nodes
        assert nodes["node2"].startswith("Synced Primary 2"), nodes
    finally:
        shop.stack("start-db", "1")
        wait_for("node1 back as the writer", lambda: status()[2].get("db/node1") == "UP", 30)
    wait_for("a whole stack", whole_stack)
    wait_for("health after failback", health_all_ok, 20)


def _try_register():
    email = shop.unique_email()
    r = shop.call("POST", "/auth/register", {"email": email, "password": shop.PASSWORD})
    return r.json if r.status == 201 else None


# ------------------------------------------------------------ local reads

def _host_url(n):
    return "http://127.0.0.1:%d" % (int(shop.STACK["SHOP_PORT_BASE"]) + 10 + n)


def _statements_run(node):
    """Prepared statements node `node` has executed (the services use only
    those; replication and the checks do not count here)."""
    return int(shop.sql("SHOW GLOBAL STATUS LIKE 'Com_stmt_execute'", node=node)[0][1])


def _anonymous_gets(host, pid, n=20):
    """n anonymous GET /products/{pid} straight to host `host`'s lighttpd."""
    for i in range(n):
        r = shop.call("GET", "/products/%d?local=%d" % (pid, i), base=_host_url(host))
        assert r.status == 200 and r.json["id"] == pid, r


def test_product_reads_come_from_the_hosts_own_node_and_survive_its_loss():
    tok = shop.new_user("seller")[1]
    pid = shop.new_product(tok)["id"]
    # Anonymous reads through host 3 run on node 3 (not through the writer).
    before = _statements_run(3)
    _anonymous_gets(3, pid)
    assert _statements_run(3) - before >= 20
    # Reads with a token (whoever just wrote must see it) go to the writer.
    before = _statements_run(3)
    for i in range(20):
        r = shop.call("GET", "/products/%d" % pid, token=tok, base=_host_url(3))
        assert r.status == 200, r
    assert _statements_run(3) - before < 5
    try:
        shop.stack("stop-db", "3")
        # Node 3 gone: host 3 reads from the writer, at once and without errors,
        # and finds what was written meanwhile.
        _anonymous_gets(3, pid)
        later = shop.new_product(tok)["id"]
        _anonymous_gets(3, later, 3)
        r = shop.call("GET", "/products?limit=100&seller_id=%d" % shop.call(
            "GET", "/products/%d" % pid).json["seller_id"], base=_host_url(3))
        assert r.status == 200 and later in [p["id"] for p in r.json["items"]], r
    finally:
        shop.stack("start-db", "3")
        wait_for("node3 Synced again", lambda: status()[0].get("node3", "").startswith(
            "Synced Primary 3"), 60)
    # Back on node 3 once it is Synced (a failed reader is retried after 1 s).
    time.sleep(1.2)
    before = _statements_run(3)
    _anonymous_gets(3, pid)
    assert _statements_run(3) - before >= 20
    wait_for("a whole stack", whole_stack)
