"""test_cache.py: the edge's cache of public product reads.  Anonymous GETs
are cached for at most 5 s (Cache-Control: public, max-age=5); anything read
with a token is never cached or served to someone else, so a draft cannot
leak; and a write through the edge is seen by anonymous readers at once
(the cache steps aside for what it may have changed)."""
import time

import shop
from shop import call

MAX_AGE = 5


def _anon_until(path, pred, limit):
    """Polls an anonymous GET until pred(resp); returns seconds waited."""
    t0 = time.time()
    while True:
        r = call("GET", path)
        if pred(r):
            return time.time() - t0
        assert time.time() - t0 < limit, "still stale after %.1fs: %r" % (time.time() - t0, r)
        time.sleep(0.2)


def _cached(path):
    """Polls anonymous GETs of path until one comes from the edge's cache
    (HAProxy adds Age to those): orders placed by earlier tests keep the
    cache aside for product reads for up to 6 s.  Returns that answer."""
    got = []

    def hit():
        r = call("GET", path)
        assert r.status == 200, r
        got[:] = [r]
        return r.header("age") is not None
    shop.wait_for("an answer from the cache for " + path, hit, timeout=10, every=0.3)
    return got[0]


def test_anonymous_reads_are_cached_and_marked_public():
    _, seller = shop.new_user("seller")
    p = shop.new_product(seller)
    path = "/products/%d" % p["id"]
    first = call("GET", path)
    assert first.status == 200
    assert first.header("cache-control") == "public, max-age=%d" % MAX_AGE, first.headers
    second = _cached(path)
    assert second.json == first.json


def test_reads_with_a_token_are_private_and_never_cached():
    _, seller = shop.new_user("seller")
    p = shop.new_product(seller, status="draft")
    path = "/products/%d" % p["id"]
    for _ in range(3):
        r = call("GET", path, token=seller)
        assert r.status == 200, r
        assert "no-store" in (r.header("cache-control") or ""), r.headers
        assert r.header("age") is None, r.headers


def test_cache_never_leaks_a_draft():
    _, seller = shop.new_user("seller")
    p = shop.new_product(seller, status="draft", name="secret draft")
    path = "/products/%d" % p["id"]
    # The owner reads it (with a token) repeatedly, then anonymous users try.
    for _ in range(3):
        assert call("GET", path, token=seller).status == 200
    for _ in range(3):
        r = call("GET", path)
        shop.assert_problem(r, 404, "not_found")
        assert b"secret draft" not in r.body
    _, customer = shop.new_user()
    shop.assert_problem(call("GET", path, token=customer), 404, "not_found")
    lst = call("GET", "/products?limit=100&seller_id=%d" % p["seller_id"])
    assert lst.status == 200 and all(i["id"] != p["id"] for i in lst.json["items"])


def test_edit_through_the_edge_is_seen_by_anonymous_readers_at_once():
    _, seller = shop.new_user("seller")
    p = shop.new_product(seller, price_cents=1000)
    path = "/products/%d" % p["id"]
    assert _cached(path).json["price_cents"] == 1000
    r = call("PATCH", path, {"price_cents": 2000}, token=seller,
             headers={"If-Match": '"%d"' % p["version"]})
    assert r.status == 200, r
    r = call("GET", path)
    assert r.status == 200 and r.json["price_cents"] == 2000 and r.header("etag") == '"2"', r
    assert r.header("age") is None, r.headers
    # Stock moved through /stock: the same.
    r = call("POST", path + "/stock", {"delta": 7}, token=seller)
    assert r.status == 200, r
    assert call("GET", path).json["stock"] == p["stock"] + 7


def test_archived_or_draft_product_is_gone_for_anonymous_readers_at_once():
    _, seller = shop.new_user("seller")
    a, b = shop.new_product(seller), shop.new_product(seller)
    listing = "/products?limit=100&seller_id=%d" % a["seller_id"]
    for p in (a, b):
        assert _cached("/products/%d" % p["id"]).json["status"] == "active"
    assert {i["id"] for i in _cached(listing).json["items"]} == {a["id"], b["id"]}
    r = call("PATCH", "/products/%d" % a["id"], {"status": "draft"}, token=seller,
             headers={"If-Match": '"%d"' % a["version"]})
    assert r.status == 200, r
    r = call("DELETE", "/products/%d" % b["id"], token=seller)
    assert r.status == 204, r
    for p in (a, b):
        shop.assert_problem(call("GET", "/products/%d" % p["id"]), 404, "not_found")
    lst = call("GET", listing)
    assert lst.status == 200 and lst.json["items"] == [], lst


def test_order_moves_the_stock_anonymous_readers_see_at_once():
    _, seller = shop.new_user("seller")
    p = shop.new_product(seller, stock=10)
    path = "/products/%d" % p["id"]
    assert _cached(path).json["stock"] == 10
    (_, tok), = shop.customers(1)
    r = call("POST", "/orders", {"items": [{"product_id": p["id"], "quantity": 3}]}, token=tok)
    assert r.status == 201, r
    assert call("GET", path).json["stock"] == 7
    r = call("POST", "/orders/%d/cancel" % r.json["id"], token=tok)
    assert r.status == 200, r
    assert call("GET", path).json["stock"] == 10


def test_anonymous_if_none_match_gets_304_through_the_cache():
    _, seller = shop.new_user("seller")
    p = shop.new_product(seller)
    path = "/products/%d" % p["id"]
    first = call("GET", path)                                  # fills the cache
    assert first.status == 200 and first.header("etag") == '"1"', first
    for inm in ('"1"', 'W/"1"', '"0", "1"', "*"):
        r = call("GET", path, headers={"If-None-Match": inm})
        assert r.status == 304, (inm, r)
        assert r.body == b"", (inm, r)
        assert r.header("etag") == '"1"', (inm, r.headers)
    # An ETag the product never had, or a stale one, gets the whole body.
    for inm in ('"0"', '"2"', '"1-x"'):
        r = call("GET", path, headers={"If-None-Match": inm})
        assert r.status == 200 and r.json == first.json, (inm, r)
        assert r.header("etag") == '"1"', (inm, r.headers)
    # After an edit, the old ETag is stale for anonymous readers too (once
    # max-age has passed): 200 with the new version and its ETag.
    r = call("PATCH", path, {"name": "Edited"}, token=seller, headers={"If-Match": '"1"'})
    assert r.status == 200, r
    _anon_until(path, lambda r: r.status == 200 and r.header("etag") == '"2"', MAX_AGE + 1.5)
    r = call("GET", path, headers={"If-None-Match": '"1"'})
    assert r.status == 200 and r.json["name"] == "Edited" and r.header("etag") == '"2"', r
    r = call("GET", path, headers={"If-None-Match": '"2"'})
    assert r.status == 304 and r.body == b"", r
