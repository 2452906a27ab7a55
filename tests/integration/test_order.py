"""test_order.py: the order service's contract, as a client sees it through
the edge: placing (validation, stock, currencies, prices copied), reading and
listing (visibility, pagination), cancelling, Idempotency-Key (replay, reuse,
races), concurrency (never oversold, stock accounted for), and the crash after
a reservation that the sweep must repair."""
import contextlib
import os
import random
import re
import subprocess
import threading
import time

import shop

_lock = threading.Lock()


# ---------------------------------------------------------------- helpers

def _product(**fields):
    return shop.new_product(shop.seller_token(), **fields)


def _stock(pid):
    r = shop.call("GET", "/products/%d" % pid, token=shop.seller_token())
    assert r.status == 200, r
    return r.json["stock"]


def _order(token, items, headers=None):
    return shop.call("POST", "/orders", {"items": items}, token=token, headers=headers)


def _fields(r):
    return sorted(e["field"] for e in r.json.get("errors", []))


def _is_rfc3339_utc(s):
    return isinstance(s, str) and len(s) >= 20 and s[10] == "T" and s.endswith("Z")


# ---------------------------------------------------------------- placing and reading

def test_order_place_read_and_list():
    (user, tok), = shop.customers(1)
    p = _product(price_cents=1250, stock=10, currency="EUR", name="Blue mug")
    q = _product(price_cents=99, stock=3, currency="EUR")
    r = _order(tok, [{"product_id": p["id"], "quantity": 2}, {"product_id": q["id"], "quantity": 3}])
    assert r.status == 201, r
    o = r.json
    assert r.header("location") == "/orders/%d" % o["id"], r.headers
    assert o["user_id"] == user["id"] and o["status"] == "confirmed"
    assert o["currency"] == "EUR" and o["total_cents"] == 2 * 1250 + 3 * 99
    assert o["items"] == [
        {"product_id": p["id"], "sku": p["sku"], "name": "Blue mug", "unit_price_cents": 1250,
         "quantity": 2, "line_total_cents": 2500},
        {"product_id": q["id"], "sku": q["sku"], "name": q["name"], "unit_price_cents": 99,
         "quantity": 3, "line_total_cents": 297}], o["items"]
    assert _is_rfc3339_utc(o["created_at"]) and _is_rfc3339_utc(o["updated_at"]), o
    assert set(o) == {"id", "user_id", "status", "items", "total_cents", "currency",
                      "created_at", "updated_at"}, o
    assert _stock(p["id"]) == 8 and _stock(q["id"]) == 0

    g = shop.call("GET", "/orders/%d" % o["id"], token=tok)
    assert g.status == 200 and g.json == o, (g, o)
    lst = shop.call("GET", "/orders", token=tok)
    assert lst.status == 200, lst
    assert lst.json["items"][0] == o and "next_cursor" in lst.json
    # A user's orders are private: no cache may keep them.
    for resp in (r, g, lst):
        assert resp.header("cache-control") == "no-store", resp.headers


def test_order_health():
    r = shop.call("GET", "/orders/health")
    assert r.status == 200 and r.json == {"status": "ok", "db": "ok"}, r


def test_order_validation():
    (_, tok), = shop.customers(1)
    p = _product(stock=100)
    pid = p["id"]
    cases = [
        ({}, ["items"]),
        ({"items": []}, ["items"]),
        ({"items": {"product_id": pid}}, ["items"]),
        ({"items": [{"product_id": i + 1, "quantity": 1} for i in range(51)]}, ["items"]),
        ({"items": [{"product_id": pid, "quantity": 1}], "note": "x"}, ["note"]),
        ({"items": [{"product_id": pid, "quantity": 1, "price_cents": 1}]}, ["items[0].price_cents"]),
        ({"items": [{"product_id": pid}]}, ["items[0].quantity"]),
        ({"items": [{"quantity": 1}]}, ["items[0].product_id"]),
        ({"items": [{"product_id": pid, "quantity": 0}]}, ["items[0].quantity"]),
        ({"items": [{"product_id": pid, "quantity": 1001}]}, ["items[0].quantity"]),
        ({"items": [{"product_id": pid, "quantity": 1.5}]}, ["items[0].quantity"]),
        ({"items": [{"product_id": pid, "quantity": "1"}]}, ["items[0].quantity"]),
        ({"items": [{"product_id": pid, "quantity": True}]}, ["items[0].quantity"]),
        ({"items": [{"product_id": 0, "quantity": 1}]}, ["items[0].product_id"]),
        ({"items": [{"product_id": -3, "quantity": 1}]}, ["items[0].product_id"]),
        ({"items": [{"product_id": str(pid), "quantity": 1}]}, ["items[0].product_id"]),
        ({"items": [7]}, ["items[0]"]),
        ({"items": [{"product_id": pid, "quantity": 1}, {"product_id": pid + 1, "quantity": 1},
                    {"product_id": pid + 2, "quantity": 0}]}, ["items[2].quantity"]),
        ({"items": [{"product_id": pid, "quantity": 1}, {"product_id": pid, "quantity": 2}]},
         ["items[1].product_id"]),
        ({"items": [{"product_id": pid, "quantity": 0}, {"product_id": pid, "quantity": 1}]},
         ["items[0].quantity", "items[1].product_id"]),
    ]
    for body, fields in cases:
        r = shop.call("POST", "/orders", body, token=tok)
        shop.assert_problem(r, 422, "validation_failed")
        assert _fields(r) == sorted(fields), (body, r)
    r = shop.call("POST", "/orders", raw=b'{"items": [', token=tok,
                  headers={"Content-Type": "application/json"})
    shop.assert_problem(r, 400, "malformed_json")
    r = shop.call("POST", "/orders", raw=b'{"items": []}', token=tok,
                  headers={"Content-Type": "text/plain"})
    shop.assert_problem(r, 415)
    r = _order(None, [{"product_id": pid, "quantity": 1}])
    shop.assert_problem(r, 401)
    assert "bearer" in (r.header("www-authenticate") or "").lower(), r.headers
    for key in ("has space", "x" * 256, "caf\u00e9"):
        r = shop.call("POST", "/orders", {"items": [{"product_id": pid, "quantity": 1}]},
                      token=tok, headers={"Idempotency-Key": key.encode("utf-8").decode("latin-1")})
        shop.assert_problem(r, 400, "bad_request")
    r = shop.call("DELETE", "/orders", token=tok)
    shop.assert_problem(r, 405)
    assert "POST" in (r.header("allow") or ""), r.headers
    assert _stock(pid) == 100, "a rejected order took stock"


def test_order_product_unavailable():
    (_, tok), = shop.customers(1)
    good = _product(stock=5)
    draft = _product(stock=5, status="draft")
    for bad in (draft["id"], 999999999999):
        r = _order(tok, [{"product_id": good["id"], "quantity": 1}, {"product_id": bad, "quantity": 1}])
        shop.assert_problem(r, 422, "product_unavailable")
        assert [i["product_id"] for i in r.json["items"]] == [bad], r
        assert "items[1].product_id" in _fields(r), r
    assert _stock(good["id"]) == 5 and _stock(draft["id"]) == 5
    # A line short of stock beside one not for sale: the answer names only
    # the one not for sale (the short product is on sale).
    r = _order(tok, [{"product_id": good["id"], "quantity": 6},
                     {"product_id": 999999999999, "quantity": 1}])
    shop.assert_problem(r, 422, "product_unavailable")
    assert [i["product_id"] for i in r.json["items"]] == [999999999999], r
    assert _fields(r) == ["items[1].product_id"], r
    assert _stock(good["id"]) == 5


def test_order_insufficient_stock_takes_nothing():
    (_, tok), = shop.customers(1)
    a = _product(stock=5)
    b = _product(stock=1)
    r = _order(tok, [{"product_id": a["id"], "quantity": 3}, {"product_id": b["id"], "quantity": 2}])
    shop.assert_problem(r, 409, "insufficient_stock")
    assert r.json["items"] == [{"product_id": b["id"], "requested": 2, "available": 1}], r
    assert _stock(a["id"]) == 5 and _stock(b["id"]) == 1


def test_order_one_currency():
    (_, tok), = shop.customers(1)
    e = _product(stock=5, currency="EUR")
    u = _product(stock=5, currency="USD")
    r = _order(tok, [{"product_id": e["id"], "quantity": 1}, {"product_id": u["id"], "quantity": 1}])
    shop.assert_problem(r, 422, "validation_failed")
    assert r.json.get("errors"), r
    assert (_stock(e["id"]), _stock(u["id"])) == (5, 5)
    # The currencies are the request's mistake whatever the stock: still 422
    # (not 409) when a line is also short, and nothing is taken.
    r = _order(tok, [{"product_id": e["id"], "quantity": 6}, {"product_id": u["id"], "quantity": 1}])
    shop.assert_problem(r, 422, "validation_failed")
    assert [x["field"] for x in r.json["errors"]] == ["items"], r
    assert (_stock(e["id"]), _stock(u["id"])) == (5, 5)


def test_order_prices_and_names_copied():
    (_, tok), = shop.customers(1)
    p = _product(price_cents=500, name="Old name", stock=5)
    r = _order(tok, [{"product_id": p["id"], "quantity": 2}])
    assert r.status == 201, r
    before = r.json
    g = shop.call("GET", "/products/%d" % p["id"], token=shop.seller_token())
    e = shop.call("PATCH", "/products/%d" % p["id"], {"price_cents": 999, "name": "New name"},
                  token=shop.seller_token(), headers={"If-Match": g.header("etag"),
                                            "Content-Type": "application/merge-patch+json"})
    assert e.status == 200 and e.json["price_cents"] == 999, e
    after = shop.call("GET", "/orders/%d" % before["id"], token=tok)
    assert after.status == 200 and after.json == before, (after, before)
    assert after.json["items"][0]["name"] == "Old name"
    assert after.json["total_cents"] == 1000


# ---------------------------------------------------------------- who sees what

def test_order_visibility_and_listing():
    (a, ta), (b, tb) = shop.customers(2)
    p = _product(stock=50)
    ids = []
    for _ in range(3):
        r = _order(ta, [{"product_id": p["id"], "quantity": 1}])
        assert r.status == 201, r
        ids.append(r.json["id"])
    oid = ids[-1]
    # B can neither read, list nor cancel A's orders.
    shop.assert_problem(shop.call("GET", "/orders/%d" % oid, token=tb), 404, "not_found")
    shop.assert_problem(shop.call("POST", "/orders/%d/cancel" % oid, token=tb), 404, "not_found")
    listed = shop.call("GET", "/orders?limit=100", token=tb)
    assert listed.status == 200 and not {o["id"] for o in listed.json["items"]} & set(ids), listed
    assert all(o["user_id"] == b["id"] for o in listed.json["items"])
    shop.assert_problem(shop.call("GET", "/orders?user_id=%d" % a["id"], token=tb), 403, "forbidden")
    shop.assert_problem(shop.call("GET", "/orders/99999999999", token=ta), 404)
    shop.assert_problem(shop.call("GET", "/orders"), 401)
    assert _stock(p["id"]) == 47
    rb = _order(tb, [{"product_id": p["id"], "quantity": 1}])
    assert rb.status == 201, rb
    b_order = rb.json["id"]
    # A non-admin lists only their own: B sees B's order and none of A's.
    listed = shop.call("GET", "/orders?limit=100", token=tb)
    assert listed.status == 200 and b_order in {o["id"] for o in listed.json["items"]}, listed
    assert not {o["id"] for o in listed.json["items"]} & set(ids), listed
    assert all(o["user_id"] == b["id"] for o in listed.json["items"]), listed
    assert _stock(p["id"]) == 46

    # Pagination: newest first, opaque cursor, page 2 ends the list.
    mine = shop.call("GET", "/orders?limit=100", token=ta)
    assert mine.status == 200 and set(ids) <= {o["id"] for o in mine.json["items"]}, mine
    assert all(o["user_id"] == a["id"] for o in mine.json["items"]), mine
    assert b_order not in {o["id"] for o in mine.json["items"]}, mine
    page1 = shop.call("GET", "/orders?limit=2", token=ta)
    assert page1.status == 200, page1
    assert [o["id"] for o in page1.json["items"]] == [ids[2], ids[1]], page1
    cur = page1.json["next_cursor"]
    assert isinstance(cur, str) and cur, page1
    page2 = shop.call("GET", "/orders?limit=2&cursor=" + cur, token=ta)
    assert page2.status == 200, page2
    got = [o["id"] for o in page2.json["items"]]
    assert got[0] == ids[0], page2
    for bad in ("limit=0", "limit=101", "limit=abc", "limit=1.5", "limit=-1", "limit="):
        r = shop.call("GET", "/orders?" + bad, token=ta)
        shop.assert_problem(r, 422, "validation_failed")
        assert _fields(r) == ["limit"], r
    for cur in ("garbage!", "AAAA", "bzE6MA", "bzE6LTU", "bzE6MTJh"):
        shop.assert_problem(shop.call("GET", "/orders?cursor=" + cur, token=ta), 400, "invalid_cursor")

    # Admins see everything and may filter by user.
    adm = shop.admin_token()
    g = shop.call("GET", "/orders/%d" % oid, token=adm)
    assert g.status == 200 and g.json["user_id"] == a["id"], g
    f = shop.call("GET", "/orders?user_id=%d&limit=100" % a["id"], token=adm)
    assert f.status == 200 and {o["id"] for o in f.json["items"]} >= set(ids), f
    assert all(o["user_id"] == a["id"] for o in f.json["items"]), f
    r = shop.call("GET", "/orders?user_id=abc", token=adm)
    shop.assert_problem(r, 422, "validation_failed")
    # The admin's unfiltered list holds both users' orders (walked newest
    # first until all four are seen; other tests' orders may sit between).
    want = {oid: a["id"] for oid in ids}
    want[b_order] = b["id"]
    seen, cursor = {}, None
    for _ in range(20):
        everyone = shop.call("GET", "/orders?limit=100" + ("&cursor=" + cursor if cursor else ""),
                             token=adm)
        assert everyone.status == 200, everyone
        seen.update({o["id"]: o["user_id"] for o in everyone.json["items"]})
        cursor = everyone.json["next_cursor"]
        if set(want) <= set(seen) or not cursor:
            break
    assert {oid: seen.get(oid) for oid in want} == want, (want, len(seen))


def test_order_cancel_returns_stock():
    (_, tok), (_, other) = shop.customers(2)
    p = _product(stock=10)
    r = _order(tok, [{"product_id": p["id"], "quantity": 3}])
    assert r.status == 201 and _stock(p["id"]) == 7, r
    oid = r.json["id"]
    c = shop.call("POST", "/orders/%d/cancel" % oid, token=tok)
    assert c.status == 200 and c.json["status"] == "cancelled" and c.json["id"] == oid, c
    assert c.json["items"] == r.json["items"]
    assert _stock(p["id"]) == 10
    again = shop.call("POST", "/orders/%d/cancel" % oid, token=tok)
    assert again.status == 200 and again.json["status"] == "cancelled", again
    assert _stock(p["id"]) == 10, "a second cancel returned the stock twice"
    g = shop.call("GET", "/orders/%d" % oid, token=tok)
    assert g.json["status"] == "cancelled"
    shop.assert_problem(shop.call("POST", "/orders/%d/cancel" % oid, token=other), 404)
    # An admin may cancel anyone's order.
    r = _order(tok, [{"product_id": p["id"], "quantity": 4}])
    assert r.status == 201, r
    c = shop.call("POST", "/orders/%d/cancel" % r.json["id"], token=shop.admin_token())
    assert c.status == 200 and c.json["status"] == "cancelled", c
    assert _stock(p["id"]) == 10


def test_cancel_returns_stock_past_the_maximum_and_the_seller_can_lower_it():
    # 10^9 bounds what a seller puts in, not what a cancel gives back: the
    # units come back whole, and the seller may take them down again.
    _, tok = shop.customers(1)[0]
    p = _product(stock=10 ** 9)
    o = _order(tok, [{"product_id": p["id"], "quantity": 5}])
    assert o.status == 201 and _stock(p["id"]) == 10 ** 9 - 5, o
    path = "/products/%d/stock" % p["id"]
    seller_tok = shop.seller_token()
    r = shop.call("POST", path, {"delta": 5}, token=seller_tok)
    assert r.status == 200 and r.json["stock"] == 10 ** 9, r
    c = shop.call("POST", "/orders/%d/cancel" % o.json["id"], token=tok)
    assert c.status == 200 and c.json["status"] == "cancelled", c
    assert _stock(p["id"]) == 10 ** 9 + 5
    r = shop.call("POST", path, {"delta": 1}, token=seller_tok)
    shop.assert_problem(r, 422, "validation_failed")
    r = shop.call("POST", path, {"delta": -1}, token=seller_tok)
    assert r.status == 200 and r.json["stock"] == 10 ** 9 + 4, r
    assert _stock(p["id"]) == 10 ** 9 + 4


# ---------------------------------------------------------------- Idempotency-Key

def test_order_idempotency_replay_and_reuse():
    (_, tok), (_, tok2) = shop.customers(2)
    p = _product(stock=10)
    key = shop.unique("idem")
    items = [{"product_id": p["id"], "quantity": 2}]
    first = _order(tok, items, headers={"Idempotency-Key": key})
    assert first.status == 201, first
    again = _order(tok, items, headers={"Idempotency-Key": key})
    assert again.status == 201 and again.json == first.json, (again, first)
    assert again.header("location") == first.header("location")
    assert _stock(p["id"]) == 8, "a repeated key placed the order twice"
    other = _order(tok, [{"product_id": p["id"], "quantity": 3}], headers={"Idempotency-Key": key})
    shop.assert_problem(other, 422, "idempotency_key_reused")
    # A malformed key is refused as such, whatever the body holds.
    bad = _order(tok, [{"product_id": p["id"], "quantity": 0}], headers={"Idempotency-Key": "a b"})
    shop.assert_problem(bad, 400, "bad_request")
    # Keys are per user: another user's same key is a new order.
    theirs = _order(tok2, items, headers={"Idempotency-Key": key})
    assert theirs.status == 201 and theirs.json["id"] != first.json["id"], theirs
    assert _stock(p["id"]) == 6
    # A final refusal is replayed too, even once stock would allow it.
    key2 = shop.unique("idem")
    big = [{"product_id": p["id"], "quantity": 7}]
    r1 = _order(tok, big, headers={"Idempotency-Key": key2})
    shop.assert_problem(r1, 409, "insufficient_stock")
    st = shop.call("POST", "/products/%d/stock" % p["id"], {"delta": 10}, token=shop.seller_token())
    assert st.status == 200, st
    r2 = _order(tok, big, headers={"Idempotency-Key": key2})
    shop.assert_problem(r2, 409, "insufficient_stock")
    assert r2.json["items"] == r1.json["items"], (r1, r2)
    assert _stock(p["id"]) == 16


def test_order_idempotency_race():
    (_, tok), = shop.customers(1)
    p = _product(stock=100)
    key = shop.unique("race")
    items = [{"product_id": p["id"], "quantity": 1}]
    res = shop.parallel(12, lambda i: _order(tok, items, headers={"Idempotency-Key": key}))
    for r in res:
        assert not isinstance(r, Exception), r
        assert r.status in (201, 409), r
        if r.status == 409:
            shop.assert_problem(r, 409, "idempotency_in_progress")
    placed = [r for r in res if r.status == 201]
    # Exactly one order: at least one request placed it, every other 201 is
    # a replay of that same order, the rest were told the key is in use.
    assert placed, ("no request of the race placed the order", res)
    ids = {r.json["id"] for r in placed}
    assert len(ids) == 1, ids
    assert all(r.json == placed[0].json for r in placed), placed
    final = _order(tok, items, headers={"Idempotency-Key": key})
    assert final.status == 201 and final.json == placed[0].json, (final, placed[0])
    assert _stock(p["id"]) == 99, "the race placed more than one order"


# ---------------------------------------------------------------- concurrency

def test_order_last_units_never_oversold():
    users = shop.customers(20)
    p = _product(stock=50)
    items = [{"product_id": p["id"], "quantity": 1}]
    res = shop.parallel(200, lambda i: _order(users[i % 20][1], items))
    codes = {}
    for r in res:
        assert not isinstance(r, Exception), r
        codes[r.status] = codes.get(r.status, 0) + 1
    assert codes == {201: 50, 409: 150}, codes
    for r in res:
        if r.status == 409:
            assert r.json["code"] == "insufficient_stock", r
    assert _stock(p["id"]) == 0


def test_order_random_multiline_stock_accounted():
    users = shop.customers(20)
    rng = random.Random(42)
    prods = [_product(stock=40, price_cents=100 + i) for i in range(10)]
    before = {p["id"]: _stock(p["id"]) for p in prods}
    bodies = []
    for _ in range(50):
        lines = rng.sample(prods, rng.randint(1, 5))
        bodies.append([{"product_id": p["id"], "quantity": rng.randint(1, 6)} for p in lines])
    res = shop.parallel(50, lambda i: _order(users[i % 20][1], bodies[i]))
    taken = {pid: 0 for pid in before}
    placed = []
    for body, r in zip(bodies, res):
        assert not isinstance(r, Exception), r
        assert r.status in (201, 409), r
        if r.status == 201:
            placed.append(r.json)
            assert [(i["product_id"], i["quantity"]) for i in r.json["items"]] == \
                [(l["product_id"], l["quantity"]) for l in body], (body, r)
            for line in r.json["items"]:
                taken[line["product_id"]] += line["quantity"]
    assert placed, "no order succeeded"
    # Cancel a few: their stock comes back.
    for o in placed[:5]:
        owner = next(t for u, t in users if u["id"] == o["user_id"])
        c = shop.call("POST", "/orders/%d/cancel" % o["id"], token=owner)
        assert c.status == 200, c
        for line in o["items"]:
            taken[line["product_id"]] -= line["quantity"]
    for pid, n in before.items():
        assert n - _stock(pid) == taken[pid], (pid, n, _stock(pid), taken[pid])


# ---------------------------------------------------------------- crash after reserve

def _order_conf():
    return os.path.join(shop.STACK["SHOP_STATE_DIR"], "etc", "order.conf")


def _sweep_once():
    """Runs one sweep pass now (the stack's own sweeps run every
    SWEEP_INTERVAL; one more changes nothing but the timing)."""
    binary = os.path.join(os.environ.get("SHOP_BIN_DIR", os.path.join(shop.REPO, "build")),
                          "order.fcgi")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SHOP_CONFIG": _order_conf()}
    r = subprocess.run([binary, "--sweep-once"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr


_host_url = shop.host_url


@contextlib.contextmanager
def _host1_with(edit):
    """Runs host 1's order workers with order.conf changed by edit(text) ->
    text, and yields host 1's own address (the edge would spread requests
    over all hosts); restores the file and the workers afterwards."""
    path = _order_conf()
    with open(path) as f:
        orig = f.read()
    try:
        with open(path, "w") as f:
            f.write(edit(orig))
        shop.stack("stop-host", "1")
        shop.stack("start-host", "1")
        yield _host_url(1)
    finally:
        with open(path, "w") as f:
            f.write(orig)
        shop.stack("stop-host", "1")
        shop.stack("start-host", "1")


def _fault_switch_on():
    with open(_order_conf()) as f:
        return "ALLOW_FAULT_INJECTION=1" in f.read().split()


def test_order_product_down_is_503_and_takes_nothing():
    (_, tok), = shop.customers(1)
    p = _product(stock=5)
    key = shop.unique("down")
    items = [{"product_id": p["id"], "quantity": 1}]

    def dead_product(text):     # a port nothing listens on
        return re.sub(r"(?m)^PRODUCT_URL=.*$", "PRODUCT_URL=http://127.0.0.1:1", text)
    with _host1_with(dead_product) as host1:
        r = shop.call("POST", "/orders", {"items": items}, token=tok, base=host1,
                      headers={"Idempotency-Key": key})
        shop.assert_problem(r, 503, "unavailable")
        assert r.header("retry-after"), r.headers
    assert _stock(p["id"]) == 5
    lst = shop.call("GET", "/orders?limit=100", token=tok)
    assert not [o for o in lst.json["items"] if o["items"][0]["product_id"] == p["id"]], lst
    # The 503 was not stored under the key: the retry places the order.
    again = _order(tok, items, headers={"Idempotency-Key": key})
    assert again.status == 201, again
    assert _stock(p["id"]) == 4


def _crash(tok, items, headers):
    """Sends an order whose worker dies right after product took the stock.
    Returns (response or exception, status; 0 when the edge dropped it)."""
    def send(base):
        try:
            r = shop.call("POST", "/orders", {"items": items}, token=tok, base=base,
                          headers=dict(headers, **{"X-Fault-Inject": "after-reserve"}))
            return r, r.status
        except (ConnectionError, OSError) as e:     # an edge may just drop it
            return e, 0
    # The stack turns the switch on (order.conf ALLOW_FAULT_INJECTION=1) when
    # started with SHOP_FAULT_INJECTION=1; otherwise turn it on for host 1.
    # Either way the header goes to host 1 itself: the edge drops it.
    if _fault_switch_on():
        r, status = send(_host_url(1))
    else:
        with _host1_with(lambda t: t + "\nALLOW_FAULT_INJECTION=1\n") as host1:
            r, status = send(host1)
    assert status != 201, ("fault injection is off: the stack must set ALLOW_FAULT_INJECTION=1 "
                           "in order.conf (SHOP_FAULT_INJECTION=1)", r)
    assert status in (0, 409, 500, 502, 503, 504), r
    return r, status


def _my_orders_of(tok, pid):
    lst = shop.call("GET", "/orders?limit=100", token=tok)
    assert lst.status == 200, lst
    return [o["id"] for o in lst.json["items"] if pid in [i["product_id"] for i in o["items"]]]


def test_order_crash_after_reserve_keyed_retry_takes_stock_once():
    """The request died after product took the stock.  A retry with the same
    Idempotency-Key lands on the same reservation: one order, stock taken
    once, whatever the dead attempts (and the edge's resends) reserved."""
    (user, tok), = shop.customers(1)
    p = _product(stock=20)
    key = shop.unique("crash")
    items = [{"product_id": p["id"], "quantity": 2}]
    _crash(tok, items, {"Idempotency-Key": key})
    # The dead attempt's lock on its key died with its DB session: the retry
    # goes through at once (a moment of 409 while that session closes is
    # allowed).
    retry = shop.wait_for("the retry to get past the dead attempt",
                          lambda: (lambda r: r if r.status != 409 else None)(
                              _order(tok, items, headers={"Idempotency-Key": key})), timeout=10)
    assert retry.status == 201, retry
    again = _order(tok, items, headers={"Idempotency-Key": key})
    assert again.status == 201 and again.json["id"] == retry.json["id"], again
    assert _stock(p["id"]) == 18, "the dead attempt and the retry took stock twice"
    assert _my_orders_of(tok, p["id"]) == [retry.json["id"]]
    # Once the sweeps have settled everything (the reservation confirmed in a
    # batch, the dead attempt's TTL long over), the order's stock stays taken.
    shop.wait_settled()
    assert _stock(p["id"]) == 18, "the sweep released a confirmed order's stock"
    g = shop.call("GET", "/orders/%d" % retry.json["id"], token=tok)
    assert g.status == 200 and g.json["status"] == "confirmed", g


def test_order_crash_after_reserve_keyed_corrected_body_is_a_first_request():
    """An attempt died after product took its stock, unanswered: the key is
    unused (docs/API.md), so the same key with corrected lines places those
    lines at once (not 409 "still running" against the dead attempt's
    reservation), and the dead attempt's stock comes back after its TTL."""
    (user, tok), = shop.customers(1)
    p = _product(stock=20)
    key = shop.unique("fix")
    _crash(tok, [{"product_id": p["id"], "quantity": 5}], {"Idempotency-Key": key})
    fixed = [{"product_id": p["id"], "quantity": 2}]
    r = shop.wait_for("the corrected request to get past the dead attempt's key lock",
                      lambda: (lambda r: r if r.status != 409 else None)(
                          _order(tok, fixed, headers={"Idempotency-Key": key})), timeout=10)
    assert r.status == 201, r
    assert [(i["product_id"], i["quantity"]) for i in r.json["items"]] == [(p["id"], 2)], r
    # Placed beside the dead attempt's reservation (its TTL, 6 s here, not
    # yet over), not after it ran out.
    assert _stock(p["id"]) == 13, "the corrected request waited for the dead attempt's TTL"
    again = _order(tok, fixed, headers={"Idempotency-Key": key})
    assert again.status == 201 and again.json["id"] == r.json["id"], again
    shop.wait_for("the dead attempt's stock to come back", lambda: _stock(p["id"]) == 18,
                  timeout=40)
    assert _my_orders_of(tok, p["id"]) == [r.json["id"]]


def test_order_crash_after_reserve_unkeyed_stock_returns_after_ttl():
    """Without a key nobody can pick the dead attempt's reservation up: its
    stock comes back within the reservation TTL plus a sweep, and no order
    appears."""
    (user, tok), = shop.customers(1)
    p = _product(stock=20)
    items = [{"product_id": p["id"], "quantity": 3}]
    _crash(tok, items, {})
    assert _stock(p["id"]) < 20, "the crashed attempt took no stock: the fault did not fire"
    shop.wait_for("the dead attempt's stock to come back", lambda: _stock(p["id"]) == 20,
                  timeout=40)
    assert _my_orders_of(tok, p["id"]) == []
    ok = _order(tok, items)
    assert ok.status == 201 and _stock(p["id"]) == 17, ok


def test_order_settled_stock_matches_orders():
    """Once settled, each product holds stock exactly for its confirmed
    orders: placed, cancelled, refused, replayed and crashed orders of this
    test's own users on this test's own products leave stock = initial -
    the quantities of the orders that are confirmed (as the users list them)."""
    users = [shop.new_user() for _ in range(3)]
    prods = [_product(stock=30) for _ in range(3)]
    pids = [p["id"] for p in prods]

    def lines(i, q):
        return [{"product_id": pids[i % 3], "quantity": q},
                {"product_id": pids[(i + 1) % 3], "quantity": 1}]
    for i, (_, tok) in enumerate(users):
        key = shop.unique("settle")
        r = _order(tok, lines(i, 2), headers={"Idempotency-Key": key})
        assert r.status == 201, r
        again = _order(tok, lines(i, 2), headers={"Idempotency-Key": key})
        assert again.status == 201 and again.json["id"] == r.json["id"], again
        c = _order(tok, lines(i, 3))
        assert c.status == 201, c
        assert shop.call("POST", "/orders/%d/cancel" % c.json["id"], token=tok).status == 200
        shop.assert_problem(_order(tok, lines(i, 31)), 409, "insufficient_stock")
    if _fault_switch_on():      # a request that dies after taking its stock
        try:
            shop.call("POST", "/orders", {"items": lines(0, 4)}, token=users[0][1],
                      base=_host_url(1),
                      headers={"X-Fault-Inject": "after-reserve",
                               "Idempotency-Key": shop.unique("settle-crash")})
        except (ConnectionError, OSError):
            pass
    want = {pid: 30 for pid in pids}
    for _, tok in users:
        lst = shop.call("GET", "/orders?limit=100", token=tok)
        assert lst.status == 200, lst
        for o in lst.json["items"]:
            assert o["status"] in ("confirmed", "cancelled"), o
            if o["status"] == "confirmed":
                for line in o["items"]:
                    want[line["product_id"]] -= line["quantity"]
    # Each user's one confirmed order took 2 of one product and 1 of the next.
    assert want == {pid: 27 for pid in pids}, want
    _settle(pids, want, "stock to match the confirmed orders")


def _settle(pids, want, what, timeout=30.0):
    """Polls (running a sweep pass each time) until every product in pids
    has the stock `want` names, as a client reads it; fails after timeout."""
    def settled():
        _sweep_once()
        got = {pid: _stock(pid) for pid in pids}
        return got == want or None
    try:
        shop.wait_for(what, settled, timeout=timeout, every=0.5)
    except AssertionError:
        got = {pid: _stock(pid) for pid in pids}
        raise AssertionError("%s: stock %r, expected %r" % (what, got, want))


def test_order_every_reservation_settles():
    """Across the whole database, once reservation TTLs are over and the
    sweeps have run: stock is held only for confirmed orders, every confirmed
    order has its stock confirmed, every cancelled order's stock is back,
    whatever the tests before (reservations without orders, crashes)
    left behind."""
    shop.wait_settled()
