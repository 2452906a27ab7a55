"""test_cache.py: the edge's cache of public product reads.  Anonymous GETs
are cached for at most 5 s (Cache-Control: public, max-age=5); anything read
with a token is never cached or served to someone else, so a draft cannot
leak and an edit is visible to everyone within the stated time."""
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


def test_anonymous_reads_are_cached_and_marked_public():
    _, seller = shop.new_user("seller")
    p = shop.new_product(seller)
    path = "/products/%d" % p["id"]
    first = call("GET", path)
    assert first.status == 200
    assert first.header("cache-control") == "public, max-age=%d" % MAX_AGE, first.headers
    second = call("GET", path)
    assert second.status == 200 and second.json == first.json
    # HAProxy adds Age to answers it serves from its cache.
    assert second.header("age") is not None, second.headers


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


def test_edit_is_visible_to_everyone_within_max_age():
    _, seller = shop.new_user("seller")
    p = shop.new_product(seller, price_cents=1000)
    path = "/products/%d" % p["id"]
    assert call("GET", path).json["price_cents"] == 1000      # now cached
    r = call("PATCH", path, {"price_cents": 2000}, token=seller,
             headers={"If-Match": '"%d"' % p["version"]})
    assert r.status == 200, r
    # The owner (token) sees it at once; anonymous readers within max-age.
    assert call("GET", path, token=seller).json["price_cents"] == 2000
    waited = _anon_until(path, lambda r: r.status == 200 and r.json["price_cents"] == 2000,
                         MAX_AGE + 1.5)
    assert waited <= MAX_AGE + 1.5


def test_product_turned_draft_disappears_for_anonymous_within_max_age():
    _, seller = shop.new_user("seller")
    p = shop.new_product(seller)
    path = "/products/%d" % p["id"]
    assert call("GET", path).status == 200                     # cached as public
    r = call("PATCH", path, {"status": "draft"}, token=seller,
             headers={"If-Match": '"%d"' % p["version"]})
    assert r.status == 200, r
    _anon_until(path, lambda r: r.status == 404, MAX_AGE + 1.5)


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
