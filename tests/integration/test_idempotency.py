"""test_idempotency.py: Idempotency-Key on POST /orders, the cases a client
meets when it retries: a duplicate that arrives while the first request is
still running (made deterministic with the test stack's fault switch
X-Fault-Inject: delay-after-reserve, sent to a host since the edge drops it,
which holds the first request 3 s after it reserved stock), the longest key the contract allows, and a replay after
the order was cancelled."""
import threading
import time

import shop
from shop import assert_problem, call

_cache = {}


def _seller():
    if "seller" not in _cache:
        _cache["seller"] = shop.new_user("seller")
    return _cache["seller"][1]


def _stock(pid):
    r = call("GET", "/products/%d" % pid, token=_seller())
    assert r.status == 200, r
    return r.json["stock"]


def _order(tok, items, key, headers=None, base=None):
    h = {"Idempotency-Key": key}
    h.update(headers or {})
    return call("POST", "/orders", {"items": items}, token=tok, headers=h, base=base)


def _host1():
    """Host 1's lighttpd: X-Fault-Inject goes there, the edge drops it."""
    return "http://127.0.0.1:%d" % (int(shop.STACK["SHOP_PORT_BASE"]) + 11)


def test_duplicate_while_first_runs_is_409_in_progress_then_replays():
    _, tok = shop.new_user()
    p = shop.new_product(_seller(), stock=10)
    items = [{"product_id": p["id"], "quantity": 2}]
    key = shop.unique("slow")
    first = {}

    def slow():
        t0 = time.monotonic()
        first["r"] = _order(tok, items, key, {"X-Fault-Inject": "delay-after-reserve"},
                            base=_host1())
        first["took"] = time.monotonic() - t0
    t = threading.Thread(target=slow)
    t.start()
    try:
        time.sleep(0.5)
        dup = _order(tok, items, key)
        still_running = t.is_alive()
    finally:
        t.join(30)
    assert not t.is_alive(), "the first request never finished"
    assert first["r"].status == 201, first
    # The fault switch really held the first request: otherwise the duplicate
    # could not have met it running, and this test proves nothing.
    assert first["took"] >= 3, ("the fault switch did not delay the first request", first)
    assert still_running, "the duplicate was answered only after the first finished"
    assert_problem(dup, 409, "idempotency_in_progress")
    assert int(dup.header("retry-after")) > 0, dup.headers
    # Once the first has finished, the duplicate is its replay.
    again = _order(tok, items, key)
    assert again.status == 201, again
    assert again.json == first["r"].json, (again, first["r"])
    assert again.header("location") == first["r"].header("location")
    assert _stock(p["id"]) == 8, "the duplicate took stock"
    lst = call("GET", "/orders?limit=100", token=tok)
    assert [o["id"] for o in lst.json["items"]] == [first["r"].json["id"]], lst


def test_key_of_255_characters_works_and_256_is_refused():
    _, tok = shop.new_user()
    p = shop.new_product(_seller(), stock=10)
    items = [{"product_id": p["id"], "quantity": 1}]
    # Every visible ASCII character, made unique, 255 in all.
    visible = "".join(chr(c) for c in range(0x21, 0x7f))
    key = (shop.unique("k") + visible * 3)[:255]
    assert len(key) == 255
    r1 = _order(tok, items, key)
    assert r1.status == 201, r1
    r2 = _order(tok, items, key)
    assert r2.status == 201 and r2.json["id"] == r1.json["id"], (r1, r2)
    # The whole key counts, not a prefix: the same 254 first characters with
    # another last one is another key.
    r3 = _order(tok, items, key[:254] + ("A" if key[254] != "A" else "B"))
    assert r3.status == 201 and r3.json["id"] != r1.json["id"], r3
    assert _stock(p["id"]) == 8
    r = _order(tok, items, key + "x")
    assert_problem(r, 400, "bad_request")
    assert _stock(p["id"]) == 8, "a refused key took stock"
    # An empty key is malformed too: refused, not an order without a key.
    # (Straight to the edge: a proxy in between may drop an empty header.)
    for bad in ("", " ", "a b", "k\u00e9"):
        r = call("POST", "/orders", {"items": items}, token=tok,
                 headers={"Idempotency-Key": bad}, base=shop.STACK["SHOP_URL"])
        assert_problem(r, 400, "bad_request")
    assert _stock(p["id"]) == 8, "a refused key took stock"


def test_replay_after_cancel_returns_the_original_reply_and_places_nothing():
    _, tok = shop.new_user()
    p = shop.new_product(_seller(), stock=10)
    items = [{"product_id": p["id"], "quantity": 3}]
    key = shop.unique("cancel")
    placed = _order(tok, items, key)
    assert placed.status == 201, placed
    oid = placed.json["id"]
    assert _stock(p["id"]) == 7
    c = call("POST", "/orders/%d/cancel" % oid, token=tok)
    assert c.status == 200 and c.json["status"] == "cancelled", c
    assert _stock(p["id"]) == 10
    again = _order(tok, items, key)
    assert again.status == 201, again
    assert again.json["id"] == oid, (again, placed)
    assert again.json == placed.json, "the replay is not the original reply"
    assert _stock(p["id"]) == 10, "the replay placed a new order"
    g = call("GET", "/orders/%d" % oid, token=tok)
    assert g.json["status"] == "cancelled", g
    lst = call("GET", "/orders?limit=100", token=tok)
    assert [o["id"] for o in lst.json["items"]] == [oid], lst
