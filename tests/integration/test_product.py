"""test_product.py: the product service as clients see it through the edge
(contract rows, error codes, the visibility matrix, pagination, ETags and
preconditions, stock under concurrency), the internal reservation API as the
order service sees it, and two database-level facts the design rests on:
the list query walks an index, and concurrent row locks on two Galera nodes
surface as deadlock errors (1213) without ever taking stock below zero."""
import random
import subprocess
import threading
import uuid

import shop
from shop import assert_problem, call

_users = {}


def user(name, role):
    """A cached (user, token) per name: logins cost an Argon2id hash."""
    if name not in _users:
        _users[name] = shop.new_user(role)
    return _users[name]


def seller():
    return user("seller", "seller")


def other_seller():
    return user("seller2", "seller")


def customer():
    return user("customer", "customer")


def admin():
    return None, shop.admin_token()


def product(token=None, **fields):
    return shop.new_product(token or seller()[1], **fields)


def get(pid, token=None, headers=None):
    # A unique query string keeps anonymous reads out of the edge cache.
    return call("GET", "/products/%d?nocache=%s" % (pid, uuid.uuid4().hex),
                token=token, headers=headers)


def etag(p):
    return '"%d"' % p["version"]


def internal(method, path, body=None, token=True):
    hdrs = {}
    if token:
        with open(shop.STACK["SHOP_SERVICE_TOKEN_FILE"]) as f:
            hdrs["X-Service-Token"] = f.read().strip()
    return call(method, path, body, headers=hdrs, base=shop.STACK["SHOP_INTERNAL_URL"])


def order_id():
    # Far above the order service's own ids, so the two never collide.
    return random.randrange(10 ** 15, 10 ** 16)


PRODUCT_KEYS = {"id", "sku", "name", "description", "price_cents", "currency", "stock",
                "status", "seller_id", "version", "created_at", "updated_at"}


# ------------------------------------------------------------ create

def test_create_returns_product_location_and_etag():
    me, tok = seller()
    sku = shop.unique("SKU.a_b")
    r = call("POST", "/products", {"sku": sku, "name": "Blue mug", "price_cents": 999,
                                   "currency": "EUR"}, token=tok)
    assert r.status == 201, r
    p = r.json
    assert set(p) == PRODUCT_KEYS, p
    assert r.header("location") == "/products/%d" % p["id"]
    assert r.header("etag") == '"1"' and p["version"] == 1
    assert (p["sku"], p["name"], p["description"], p["price_cents"], p["currency"],
            p["stock"], p["status"], p["seller_id"]) == \
        (sku, "Blue mug", "", 999, "EUR", 0, "draft", me["id"]), p
    for k in ("created_at", "updated_at"):
        assert p[k].endswith("Z") and "T" in p[k], p[k]
    r = get(p["id"], tok)
    assert r.status == 200 and r.json == p, r


def test_create_validation_names_every_bad_field():
    tok = seller()[1]
    r = call("POST", "/products", {"sku": "has space", "name": "", "description": "x" * 5001,
                                   "price_cents": 1.5, "currency": "eur", "stock": -1,
                                   "status": "archived", "colour": "red"}, token=tok)
    assert_problem(r, 422, "validation_failed")
    fields = {e["field"] for e in r.json["errors"]}
    assert fields == {"sku", "name", "description", "price_cents", "currency", "stock",
                      "status", "colour"}, fields
    r = call("POST", "/products", {}, token=tok)
    assert_problem(r, 422, "validation_failed")
    assert {e["field"] for e in r.json["errors"]} >= {"sku", "name", "price_cents", "currency"}
    base = {"sku": shop.unique("s"), "name": "n", "price_cents": 1, "currency": "EUR"}
    for field, bad in (("price_cents", "1"), ("price_cents", True), ("price_cents", 10 ** 11 + 1),
                       ("price_cents", -1), ("stock", 10 ** 9 + 1), ("stock", 2.0),
                       ("sku", "x" * 65), ("sku", ""), ("name", "n" * 201), ("currency", "EURO"),
                       ("currency", 978), ("status", "gone")):
        r = call("POST", "/products", dict(base, **{field: bad}), token=tok)
        assert_problem(r, 422, "validation_failed")
        assert [e["field"] for e in r.json["errors"]] == [field], (field, bad, r)
    # the edges of every range are accepted
    r = call("POST", "/products", dict(base, sku="x" * 64, name="é" * 200, description="d" * 5000,
                                       price_cents=10 ** 11, stock=10 ** 9, status="active"),
             token=tok)
    assert r.status == 201, r


def test_create_needs_seller_or_admin_and_unique_sku():
    body = {"sku": shop.unique("s"), "name": "n", "price_cents": 1, "currency": "EUR"}
    assert_problem(call("POST", "/products", body), 401, "unauthorized")
    for method, path in (("GET", "/products"), ("GET", "/products/1"), ("POST", "/products")):
        r = call(method, path, body if method == "POST" else None, token="not.a.jwt")
        assert_problem(r, 401, "unauthorized")           # a bad token is never ignored
        assert (r.header("www-authenticate") or "").startswith("Bearer"), r.headers
    assert_problem(call("POST", "/products", body, token=customer()[1]), 403, "forbidden")
    r = call("POST", "/products", body, token=admin()[1])
    assert r.status == 201, r
    r = call("POST", "/products", dict(body, name="again"), token=seller()[1])
    assert_problem(r, 409, "sku_taken")
    r = call("POST", "/products", raw=b'{"sku":', token=seller()[1],
             headers={"Content-Type": "application/json"})
    assert_problem(r, 400, "malformed_json")
    r = call("POST", "/products", raw=b'{}', token=seller()[1],
             headers={"Content-Type": "text/plain"})
    assert_problem(r, 415, "unsupported_media_type")


# ------------------------------------------------------------ read one

def test_get_etag_if_none_match_and_cache_control():
    p = product()
    pid = p["id"]
    r = call("GET", "/products/%d" % pid)
    assert r.status == 200 and r.header("etag") == '"1"', r
    assert r.header("cache-control") == "public, max-age=5", r.headers
    r = get(pid, seller()[1])
    assert r.header("cache-control") == "private, no-store", r.headers
    for inm in ('"1"', "*", '"7", "1"', 'W/"1"'):
        r = get(pid, customer()[1], headers={"If-None-Match": inm})
        assert r.status == 304 and r.body == b"", (inm, r)
        assert r.header("etag") == '"1"'
    for inm in ('"2"', 'W/"2", "3"', "1"):
        r = get(pid, customer()[1], headers={"If-None-Match": inm})
        assert r.status == 200, (inm, r)
    assert_problem(get(999999999999), 404, "not_found")


def visibility_fixture():
    """Seller A's active, draft and archived products (names share a token)."""
    token = shop.unique("vis")
    tok = seller()[1]
    act = product(tok, name="%s active" % token, status="active")
    draft = product(tok, name="%s draft" % token, status="draft")
    arch = product(tok, name="%s archived" % token, status="active")
    r = call("DELETE", "/products/%d" % arch["id"], token=tok)
    assert r.status == 204, r
    return token, {"active": act["id"], "draft": draft["id"], "archived": arch["id"]}


def viewers():
    return {"anonymous": None, "customer": customer()[1], "other seller": other_seller()[1],
            "owner": seller()[1], "admin": admin()[1]}


SEES_ALL = {"owner", "admin"}


def test_visibility_matrix_get_one():
    _, ids = visibility_fixture()
    for who, tok in viewers().items():
        for status, pid in ids.items():
            r = get(pid, tok)
            if status == "active" or who in SEES_ALL:
                assert r.status == 200 and r.json["status"] == status, (who, status, r)
            else:
                assert_problem(r, 404, "not_found")


def list_ids(tok, **params):
    """Every id of a list walk (following next_cursor)."""
    ids, cursor = [], None
    for _ in range(50):
        q = dict(params)
        if cursor:
            q["cursor"] = cursor
        r = call("GET", "/products?" + "&".join("%s=%s" % kv for kv in q.items()), token=tok)
        assert r.status == 200, r
        ids += [p["id"] for p in r.json["items"]]
        cursor = r.json["next_cursor"]
        if not cursor:
            return ids
    raise AssertionError("list never ended")


def test_visibility_matrix_list():
    token, ids = visibility_fixture()
    owner_id = seller()[0]["id"]
    for who, tok in viewers().items():
        want = [ids["active"]] + ([ids["draft"], ids["archived"]] if who in SEES_ALL else [])
        assert list_ids(tok, q=token) == sorted(want), who
        for status, pid in ids.items():
            got = list_ids(tok, q=token, status=status)
            visible = status == "active" or who in SEES_ALL
            assert got == ([pid] if visible else []), (who, status, got)
        got = list_ids(tok, q=token, seller_id=owner_id)
        assert got == sorted(want), (who, got)
        assert list_ids(tok, q=token, seller_id=owner_id + 100000) == [], who


# ------------------------------------------------------------ lists

def test_pagination_walk_and_parameters():
    token = shop.unique("page")
    tok = seller()[1]
    made = [product(tok, name="Walk %s #%d" % (token, i))["id"] for i in range(30)]
    seen, cursor, pages = [], None, 0
    while True:
        path = "/products?limit=7&q=%s" % token.upper()       # q ignores case
        if cursor:
            path += "&cursor=" + cursor
        r = call("GET", path)
        assert r.status == 200, r
        assert set(r.json) == {"items", "next_cursor"}
        assert len(r.json["items"]) <= 7
        seen += [p["id"] for p in r.json["items"]]
        pages += 1
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and cursor
    assert seen == sorted(made), (seen, made)
    assert pages == 5, pages
    r = call("GET", "/products?q=%s" % token)            # default limit 20
    assert len(r.json["items"]) == 20 and r.json["next_cursor"], r
    assert r.header("cache-control") == "public, max-age=5", r.headers
    r = call("GET", "/products?q=%s" % token, token=tok)
    assert r.header("cache-control") == "private, no-store", r.headers
    r = call("GET", "/products?limit=100&q=%s" % token)
    assert len(r.json["items"]) == 30 and r.json["next_cursor"] is None, r
    for bad in ("abc", "zzzz", "MA", "NDI=", "LTE"):
        assert_problem(call("GET", "/products?cursor=" + bad), 400, "invalid_cursor")
    for limit in ("0", "101", "abc", "-1", "1.5", ""):
        r = call("GET", "/products?limit=" + limit)
        assert_problem(r, 422, "validation_failed")
        assert r.json["errors"][0]["field"] == "limit"
    for q in ("status=sold", "seller_id=0", "seller_id=x"):
        assert_problem(call("GET", "/products?" + q), 422, "validation_failed")


def test_q_matches_wildcards_literally():
    token = shop.unique("wild")
    tok = seller()[1]
    pct = product(tok, name="%s 100%% cotton" % token)["id"]
    under = product(tok, name="%s a_b" % token)["id"]
    bang = product(tok, name="%s wow!" % token)["id"]
    product(tok, name="%s axb" % token)
    assert len(list_ids(None, q=token)) == 4
    assert list_ids(None, q=token + "+100%25") == [pct]
    assert list_ids(None, q="%s+a_b" % token) == [under]
    assert list_ids(None, q="%s+wow!" % token) == [bang]
    assert list_ids(None, q=token + "+%25%25") == []


# ------------------------------------------------------------ edits

def test_patch_and_put_need_if_match_and_bump_version():
    tok = seller()[1]
    p = product(tok, description="old")
    path = "/products/%d" % p["id"]
    r = call("PATCH", path, {"name": "New"}, token=tok)
    assert_problem(r, 428, "precondition_required")
    r = call("PATCH", path, {"name": "New"}, token=tok, headers={"If-Match": '"9"'})
    assert_problem(r, 412, "precondition_failed")
    r = call("PATCH", path, {"name": "New"}, token=tok, headers={"If-Match": 'W/"1"'})
    assert_problem(r, 412, "precondition_failed")
    r = call("PATCH", path, raw=b'{"name":"Merged","description":null}', token=tok,
             headers={"If-Match": '"1"', "Content-Type": "application/merge-patch+json"})
    assert r.status == 200, r
    assert r.header("etag") == '"2"' and r.json["version"] == 2
    assert (r.json["name"], r.json["description"], r.json["price_cents"]) == ("Merged", "", 1250)
    assert r.json["updated_at"] >= p["updated_at"] and r.json["created_at"] == p["created_at"]
    assert get(p["id"], tok).json == r.json
    # PUT replaces: description defaults to "", every other field required
    r = call("PUT", path, {"name": "Put", "price_cents": 5, "currency": "USD"}, token=tok,
             headers={"If-Match": '"2"'})
    assert_problem(r, 422, "validation_failed")
    assert {e["field"] for e in r.json["errors"]} == {"status"}
    r = call("PUT", path, {"name": "Put", "price_cents": 5, "currency": "USD",
                           "status": "draft", "description": "d"},
             token=tok, headers={"If-Match": '"1", "2"'})
    assert r.status == 200 and r.json["version"] == 3, r
    r = call("PUT", path, {"name": "Put", "price_cents": 5, "currency": "USD",
                           "status": "active"}, token=tok, headers={"If-Match": "*"})
    assert r.status == 200 and r.json["description"] == "" and r.json["version"] == 4, r
    assert r.json["stock"] == p["stock"] and r.json["sku"] == p["sku"]


def test_edit_validation():
    tok = seller()[1]
    p = product(tok)
    path = "/products/%d" % p["id"]
    hdr = {"If-Match": etag(p)}
    r = call("PATCH", path, {"sku": "x", "stock": 1, "seller_id": 1, "id": 3, "version": 9},
             token=tok, headers=hdr)
    assert_problem(r, 422, "validation_failed")
    assert {e["field"] for e in r.json["errors"]} == {"sku", "stock", "seller_id", "id", "version"}
    r = call("PATCH", path, {"name": None, "price_cents": None, "currency": None,
                             "status": None}, token=tok, headers=hdr)
    assert {e["field"] for e in r.json["errors"]} == {"name", "price_cents", "currency", "status"}
    r = call("PATCH", path, {"price_cents": 1.5, "currency": "usd", "status": "sold",
                             "name": "x" * 201}, token=tok, headers=hdr)
    assert {e["field"] for e in r.json["errors"]} == {"name", "price_cents", "currency", "status"}
    assert get(p["id"], tok).json["version"] == p["version"]     # nothing changed
    r = call("PATCH", path, raw=b"[1]", token=tok,
             headers=dict(hdr, **{"Content-Type": "application/json"}))
    assert_problem(r, 422)
    r = call("PATCH", path, {"status": "archived"}, token=tok, headers=hdr)
    assert r.status == 200 and r.json["status"] == "archived", r


def test_edit_permissions():
    owner_tok = seller()[1]
    act, draft = product(owner_tok), product(owner_tok, status="draft")
    for p, other_status in ((act, 403), (draft, 404)):
        path = "/products/%d" % p["id"]
        hdr = {"If-Match": etag(p)}
        for tok in (other_seller()[1], customer()[1]):
            for method, body in (("PATCH", {"name": "x"}),
                                 ("PUT", {"name": "x", "price_cents": 1, "currency": "EUR",
                                          "status": "active"})):
                r = call(method, path, body, token=tok, headers=hdr)
                assert_problem(r, other_status)
            assert_problem(call("DELETE", path, token=tok), other_status)
            assert_problem(call("POST", path + "/stock", {"delta": 1}, token=tok), other_status)
        assert_problem(call("PATCH", path, {"name": "x"}, headers=hdr), 401)
        r = call("PATCH", path, {"name": "by admin"}, token=admin()[1], headers=hdr)
        assert r.status == 200 and r.json["seller_id"] == p["seller_id"], r
    assert_problem(call("PATCH", "/products/999999999999", {"name": "x"}, token=owner_tok,
                        headers={"If-Match": '"1"'}), 404, "not_found")
    r = call("PATCH", "/products/%d/stock" % act["id"], {"delta": 1}, token=owner_tok)
    assert_problem(r, 405, "method_not_allowed")
    assert "POST" in (r.header("allow") or "")


def test_delete_archives():
    tok = seller()[1]
    p = product(tok)
    path = "/products/%d" % p["id"]
    assert_problem(call("DELETE", path, token=tok, headers={"If-Match": '"5"'}), 412)
    r = call("DELETE", path, token=tok, headers={"If-Match": '"1"'})
    assert r.status == 204 and r.body == b"", r
    r = get(p["id"], tok)
    assert r.json["status"] == "archived" and r.json["version"] == 2, r
    assert_problem(get(p["id"]), 404)
    assert call("DELETE", path, token=tok).status == 204          # already archived
    r = call("DELETE", "/products/%d" % product(tok)["id"], token=admin()[1])
    assert r.status == 204, r


# ------------------------------------------------------------ stock

def test_stock_moves_and_never_goes_negative():
    tok = seller()[1]
    p = product(tok, stock=3)
    path = "/products/%d/stock" % p["id"]
    r = call("POST", path, {"delta": 5}, token=tok)
    assert r.status == 200 and r.json == {"id": p["id"], "stock": 8, "version": 2}, r
    r = call("POST", path, {"delta": -9}, token=tok)
    assert_problem(r, 409, "insufficient_stock")
    assert "8" in r.json["detail"]
    r = call("POST", path, {"delta": -8}, token=tok)
    assert r.status == 200 and r.json["stock"] == 0, r
    for bad in ({"delta": 0}, {"delta": 1.5}, {"delta": "1"}, {"delta": True},
                {"delta": 10 ** 9 + 1}, {}, {"delta": 1, "x": 1}):
        assert_problem(call("POST", path, bad, token=tok), 422, "validation_failed")
    r = call("POST", path, {"delta": 2}, token=admin()[1])
    assert r.status == 200 and r.json["stock"] == 2, r
    assert get(p["id"], tok).json["stock"] == 2
    assert_problem(call("POST", "/products/999999999999/stock", {"delta": 1}, token=tok), 404)


def test_fifty_clients_take_twenty_units():
    tok = seller()[1]
    p = product(tok, stock=20)
    path = "/products/%d/stock" % p["id"]
    res = shop.parallel(50, lambda i: call("POST", path, {"delta": -1}, token=tok))
    statuses = [r.status if isinstance(r, shop.Resp) else r for r in res]
    assert statuses.count(200) == 20 and statuses.count(409) == 30, statuses
    assert all(r.json["code"] == "insufficient_stock" for r in res if r.status == 409)
    assert get(p["id"], tok).json["stock"] == 0
    assert shop.sql("SELECT stock FROM shop_product.products WHERE id=%d" % p["id"]) == [["0"]]


def test_twenty_patches_with_one_etag_yield_one_success():
    tok = seller()[1]
    p = product(tok)
    path = "/products/%d" % p["id"]
    res = shop.parallel(20, lambda i: call("PATCH", path, {"name": "racer %d" % i}, token=tok,
                                           headers={"If-Match": etag(p)}))
    statuses = [r.status if isinstance(r, shop.Resp) else r for r in res]
    assert statuses.count(200) == 1 and statuses.count(412) == 19, statuses
    assert get(p["id"], tok).json["version"] == 2


# ------------------------------------------------------------ internal reservations

def test_internal_api_is_hidden():
    assert_problem(call("POST", "/internal/reservations", {"order_id": 1, "items": []}), 404)
    r = internal("GET", "/internal/reservations/1", token=False)
    assert_problem(r, 404)


def test_reserve_confirm_release_cycle():
    tok = seller()[1]
    a, b = product(tok, stock=5, price_cents=300), product(tok, stock=2, currency="EUR")
    oid = order_id()
    body = {"order_id": oid, "items": [{"product_id": b["id"], "quantity": 2},
                                       {"product_id": a["id"], "quantity": 3}]}
    r = internal("POST", "/internal/reservations", body)
    assert r.status == 200, r
    want = {"order_id": oid, "status": "held", "items": [
        {"product_id": b["id"], "sku": b["sku"], "name": b["name"],
         "unit_price_cents": b["price_cents"], "currency": "EUR", "quantity": 2},
        {"product_id": a["id"], "sku": a["sku"], "name": a["name"],
         "unit_price_cents": 300, "currency": "EUR", "quantity": 3}]}
    assert r.json == want, r.json
    assert (get(a["id"], tok).json["stock"], get(b["id"], tok).json["stock"]) == (2, 0)
    # a repeat answers the stored lines (even after a price edit) and takes nothing
    ra = get(a["id"], tok).json
    assert call("PATCH", "/products/%d" % a["id"], {"price_cents": 1}, token=tok,
                headers={"If-Match": etag(ra)}).status == 200
    r = internal("POST", "/internal/reservations", body)
    assert r.status == 200 and r.json == want, r
    assert get(a["id"], tok).json["stock"] == 2
    assert internal("GET", "/internal/reservations/%d" % oid).json == \
        {"order_id": oid, "status": "held"}
    for _ in range(2):
        r = internal("POST", "/internal/reservations/%d/confirm" % oid)
        assert r.status == 200 and r.json == {"order_id": oid, "status": "confirmed"}, r
    r = internal("POST", "/internal/reservations", body)
    assert r.status == 200 and r.json["status"] == "confirmed", r
    for _ in range(2):
        r = internal("POST", "/internal/reservations/%d/release" % oid)
        assert r.status == 200 and r.json == {"order_id": oid, "status": "released"}, r
    assert (get(a["id"], tok).json["stock"], get(b["id"], tok).json["stock"]) == (5, 2)
    assert_problem(internal("POST", "/internal/reservations", body), 409, "invalid_state")
    assert_problem(internal("POST", "/internal/reservations/%d/confirm" % oid), 409,
                   "invalid_state")
    assert get(a["id"], tok).json["stock"] == 5


def test_release_before_reserve_leaves_tombstone():
    p = product(stock=4)
    oid = order_id()
    assert_problem(internal("GET", "/internal/reservations/%d" % oid), 404)
    assert_problem(internal("POST", "/internal/reservations/%d/confirm" % oid), 404)
    r = internal("POST", "/internal/reservations/%d/release" % oid)
    assert r.status == 200 and r.json["status"] == "released", r
    r = internal("POST", "/internal/reservations",
                 {"order_id": oid, "items": [{"product_id": p["id"], "quantity": 1}]})
    assert_problem(r, 409, "invalid_state")
    assert get(p["id"], seller()[1]).json["stock"] == 4


def test_reserve_is_all_or_nothing():
    tok = seller()[1]
    ok, short, draft = product(tok, stock=5), product(tok, stock=1), product(tok, status="draft")
    oid = order_id()
    r = internal("POST", "/internal/reservations", {"order_id": oid, "items": [
        {"product_id": ok["id"], "quantity": 1}, {"product_id": draft["id"], "quantity": 1},
        {"product_id": 999999999999, "quantity": 1}]})
    assert_problem(r, 422, "product_unavailable")
    assert r.json["items"] == [{"product_id": draft["id"]}, {"product_id": 999999999999}], r
    r = internal("POST", "/internal/reservations", {"order_id": oid, "items": [
        {"product_id": ok["id"], "quantity": 5}, {"product_id": short["id"], "quantity": 3}]})
    assert_problem(r, 409, "insufficient_stock")
    assert r.json["items"] == [{"product_id": short["id"], "requested": 3, "available": 1}], r
    assert (get(ok["id"], tok).json["stock"], get(short["id"], tok).json["stock"]) == (5, 1)
    assert_problem(internal("GET", "/internal/reservations/%d" % oid), 404)
    for bad in ({"order_id": oid, "items": []},
                {"order_id": oid, "items": [{"product_id": ok["id"], "quantity": 0}]},
                {"order_id": oid, "items": [{"product_id": ok["id"], "quantity": 1}] * 2},
                {"order_id": "1", "items": [{"product_id": ok["id"], "quantity": 1}]}):
        assert_problem(internal("POST", "/internal/reservations", bad), 422, "validation_failed")
    # the same order id now succeeds: failures left nothing behind
    r = internal("POST", "/internal/reservations", {"order_id": oid, "items": [
        {"product_id": ok["id"], "quantity": 5}, {"product_id": short["id"], "quantity": 1}]})
    assert r.status == 200, r
    assert (get(ok["id"], tok).json["stock"], get(short["id"], tok).json["stock"]) == (0, 0)


def test_concurrent_reserves_of_one_order_take_stock_once():
    p = product(stock=100)
    oid = order_id()
    body = {"order_id": oid, "items": [{"product_id": p["id"], "quantity": 7}]}
    res = shop.parallel(10, lambda i: internal("POST", "/internal/reservations", body))
    assert all(r.status == 200 for r in res), res
    assert get(p["id"], seller()[1]).json["stock"] == 93


# ------------------------------------------------------------ database facts

# The list statement of cgi/product/store.c (store_list_sql), with its
# parameters written in as the values an anonymous / admin first page binds:
# after, viewer, status (NULL: no filter), seller (0: none), q (NULL: none), limit+1.
LIST_SQL = ("SELECT id, sku, name, description, price_cents, currency, stock, status, "
            "seller_id, version, created_at, updated_at FROM shop_product.products "
            "WHERE id > %d AND %s AND NULL IS NULL AND 0 = 0 AND NULL IS NULL "
            "ORDER BY id LIMIT %d")
VIS_ACTIVE_SQL = "status = 'active' AND 0 >= 0"
VIS_ALL_SQL = "0 >= 0"


# A seller's unfiltered list (store_list_own_sql): three index walks, merged.
OWN_PART = ("(SELECT id FROM shop_product.products WHERE %s AND id > %%(after)d"
            " AND NULL IS NULL ORDER BY id LIMIT %%(n)d)")
OWN_SQL = ("SELECT * FROM (" + " UNION ALL ".join(
    OWN_PART % c for c in ("status = 'active'", "seller_id = %(me)d AND status = 'draft'",
                           "seller_id = %(me)d AND status = 'archived'")) +
    ") AS page ORDER BY id LIMIT %(n)d")


def test_list_query_walks_an_index():
    tok = seller()[1]
    ids = [product(tok, name=shop.unique("idx"))["id"] for _ in range(12)]
    for vis, keys in ((VIS_ACTIVE_SQL, ("products_status_id", "PRIMARY")),
                      (VIS_ALL_SQL, ("PRIMARY",))):
        for after in (0, ids[0]):
            rows = shop.sql("ANALYZE " + LIST_SQL % (after, vis, 8))
            assert len(rows) == 1, rows
            # columns: id select_type table type possible_keys key key_len ref
            #          rows r_rows filtered r_filtered Extra
            row = rows[0]
            assert row[5] in keys, row
            assert "filesort" not in row[12], row
            assert float(row[9]) <= 8, row          # rows read stop at limit+1
    # the seller's own drafts and archived rows join the public ones through
    # products_seller_id; other sellers' drafts are never read
    me = seller()[0]["id"]
    for _ in range(3):
        product(other_seller()[1], status="draft")
    rows = shop.sql("ANALYZE " + OWN_SQL % {"after": ids[0], "me": me, "n": 8})
    by_table = {}
    for row in rows:
        if row[2] == "products":
            by_table.setdefault(row[5], []).append(float(row[9]))
    assert set(by_table) <= {"products_status_id", "products_seller_status_id"}, rows
    assert all(r <= 8 for rs in by_table.values() for r in rs), rows


def run_mysql(sock, script):
    return subprocess.run(["mariadb", "-uroot", "--socket=" + sock, "-N", "-B", "-e", script],
                          capture_output=True, text=True, timeout=30)


def test_two_galera_nodes_conflict_as_deadlocks_never_negative():
    initial = 12
    p = product(stock=initial)
    pid = p["id"]
    socks = shop.STACK["SHOP_ROOT_SOCKETS"].split()[:2]
    script = ("BEGIN; SELECT stock FROM shop_product.products WHERE id=%d FOR UPDATE; "
              "SELECT SLEEP(0.05); "
              "UPDATE shop_product.products SET stock=stock-1 WHERE id=%d AND stock>0; "
              "SELECT ROW_COUNT(); COMMIT;" % (pid, pid))
    results = {0: [], 1: []}
    errors = []             # a worker thread's exception, for the main thread to raise
    barrier = threading.Barrier(2, timeout=30)

    def worker(n):
        try:
            barrier.wait()
            for _ in range(15):
                r = run_mysql(socks[n], script)
                if r.returncode == 0:
                    results[n].append(int(r.stdout.split()[-1]))    # rows the commit took
                elif "1213" in r.stderr:
                    results[n].append("deadlock")
                else:
                    results[n].append("error: " + r.stderr.strip())
        except BaseException as e:
            errors.append((n, repr(e)))
    ts = [threading.Thread(target=worker, args=(n,)) for n in (0, 1)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    all_results = results[0] + results[1]
    assert len(results[0]) == len(results[1]) == 15, results
    # Nothing but a deadlock (1213) may fail.
    assert all(x == "deadlock" or isinstance(x, int) for x in all_results), all_results
    taken = sum(x for x in all_results if x != "deadlock")
    deadlocks = all_results.count("deadlock")
    assert deadlocks > 0, all_results
    final = int(shop.sql("SELECT stock FROM shop_product.products WHERE id=%d" % pid)[0][0])
    assert final >= 0 and final == initial - taken, (final, taken, all_results)
    # the nodes agree once replication has applied
    other = shop.sql("SET SESSION wsrep_sync_wait=1; "
                     "SELECT stock FROM shop_product.products WHERE id=%d" % pid, node=2)
    assert int(other[0][0]) == final


def test_health():
    r = call("GET", "/products/health")
    assert r.status == 200 and r.json == {"status": "ok", "db": "ok"}, r
