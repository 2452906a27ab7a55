"""test_writes.py: write requests the contract refuses, and what each leaves
behind (nothing): an order for an archived product, creates racing for one
SKU, a PUT or PATCH that tries to change sku or stock, and bodies that are
not valid UTF-8."""
import json

import shop
from shop import assert_problem, call

_cache = {}
JSON = {"Content-Type": "application/json"}


def _seller():
    if "seller" not in _cache:
        _cache["seller"] = shop.new_user("seller")
    return _cache["seller"][1]


def _get(pid):
    r = call("GET", "/products/%d" % pid, token=_seller())
    assert r.status == 200, r
    return r.json


def _fields(r):
    return sorted(e["field"] for e in r.json.get("errors", []))


def test_ordering_an_archived_product_is_product_unavailable():
    _, tok = shop.new_user()
    good = shop.new_product(_seller(), stock=5)
    gone = shop.new_product(_seller(), stock=5)
    r = call("POST", "/orders", {"items": [{"product_id": gone["id"], "quantity": 1}]}, token=tok)
    assert r.status == 201, r                          # orderable while active
    assert call("DELETE", "/products/%d" % gone["id"], token=_seller()).status == 204
    assert _get(gone["id"])["status"] == "archived"
    for items in ([{"product_id": gone["id"], "quantity": 1}],
                  [{"product_id": good["id"], "quantity": 2}, {"product_id": gone["id"], "quantity": 1}]):
        r = call("POST", "/orders", {"items": items}, token=tok)
        assert_problem(r, 422, "product_unavailable")
        assert [i["product_id"] for i in r.json["items"]] == [gone["id"]], r
    assert _get(good["id"])["stock"] == 5 and _get(gone["id"])["stock"] == 4, "a refused order took stock"
    lst = call("GET", "/orders?limit=100", token=tok)
    assert len(lst.json["items"]) == 1, lst


def test_racing_creates_with_one_sku_make_exactly_one_product():
    sku = shop.unique("race")
    n = 8

    def create(i):
        return call("POST", "/products", {"sku": sku, "name": "Racer %d" % i, "price_cents": 100 + i,
                                          "currency": "EUR", "status": "active"}, token=_seller())
    rs = shop.parallel(n, create)
    for r in rs:
        assert not isinstance(r, Exception), r
    won = [r for r in rs if r.status == 201]
    assert len(won) == 1, rs
    for r in rs:
        if r.status != 201:
            assert_problem(r, 409, "sku_taken")
    found = [p for p in call("GET", "/products?limit=100&q=Racer", token=_seller()).json["items"]
             if p["sku"] == sku]
    assert [p["id"] for p in found] == [won[0].json["id"]], found


def test_put_or_patch_of_sku_or_stock_is_422_naming_the_field():
    p = shop.new_product(_seller(), stock=7)
    path = "/products/%d" % p["id"]
    full = {"name": p["name"], "description": "", "price_cents": p["price_cents"],
            "currency": p["currency"], "status": p["status"]}
    cases = [("PUT", dict(full, sku="NEW-" + p["sku"]), ["sku"]),
             ("PUT", dict(full, stock=1000), ["stock"]),
             ("PUT", dict(full, sku=p["sku"], stock=p["stock"]), ["sku", "stock"]),   # even unchanged
             ("PUT", dict(full, seller_id=1), ["seller_id"]),
             ("PATCH", {"sku": "NEW-" + p["sku"]}, ["sku"]),
             ("PATCH", {"stock": 0}, ["stock"]),
             ("PATCH", {"name": "ok", "stock": 1}, ["stock"])]
    for method, body, fields in cases:
        r = call(method, path, body, token=_seller(), headers={"If-Match": '"%d"' % p["version"]})
        assert_problem(r, 422, "validation_failed")
        assert _fields(r) == fields, (method, body, r)
    after = _get(p["id"])
    assert after == p, ("a refused edit changed the product", after, p)
    # The control: the same PUT without the refused member goes through.
    r = call("PUT", path, dict(full, name="Renamed"), token=_seller(),
             headers={"If-Match": '"%d"' % p["version"]})
    assert r.status == 200 and r.json["version"] == p["version"] + 1, r


def test_body_that_is_not_utf8_is_malformed_and_creates_nothing():
    sku = shop.unique("utf")
    good = json.dumps({"sku": sku, "name": "NAME", "price_cents": 1, "currency": "EUR"}).encode()
    for bad in (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80",
                b"caf\xe9"):
        raw = good.replace(b"NAME", b"bad " + bad)
        r = call("POST", "/products", raw=raw, token=_seller(),
                 headers={"Content-Type": "application/json"})
        assert_problem(r, 400, "malformed_json")
        r.body.decode("utf-8")                      # the answer itself is UTF-8
    # A key that is not UTF-8 is no better than a value.
    raw = good[:-1] + b', "\xff": 1}'
    r = call("POST", "/products", raw=raw, token=_seller(), headers={"Content-Type": "application/json"})
    assert_problem(r, 400, "malformed_json")
    r.body.decode("utf-8")
    # Nothing was created: the SKU is still free.
    r = call("POST", "/products", raw=good, token=_seller(), headers={"Content-Type": "application/json"})
    assert r.status == 201 and r.json["sku"] == sku and r.json["name"] == "NAME", r
    # The same through the order and auth services.
    _, tok = shop.new_user()
    raw = b'{"items": [{"product_id": %d, "quantity": 1}], "\xff": 1}' % r.json["id"]
    r2 = call("POST", "/orders", raw=raw, token=tok, headers={"Content-Type": "application/json"})
    assert_problem(r2, 400, "malformed_json")
    email = shop.unique_email("utf")
    raw = b'{"email": "%s", "password": "pass\xffword!"}' % email.encode()
    r3 = call("POST", "/auth/register", raw=raw, headers={"Content-Type": "application/json"})
    assert_problem(r3, 400, "malformed_json")
    assert _get(r.json["id"])["stock"] == 0


def test_member_name_holding_nul_is_an_unknown_field_and_changes_nothing():
    # "name\u0000x" is not "name": JSON keeps the whole name, so a parser that
    # stopped at the NUL would take an unknown member for a known one.
    seller = _seller()
    sku = shop.unique("nul")
    raw = ('{"sku":"%s","name\\u0000evil":"Smuggled","price_cents":1,"currency":"EUR"}'
           % sku).encode()
    r = call("POST", "/products", raw=raw, token=seller, headers=JSON)
    assert_problem(r, 422, "validation_failed")
    assert _fields(r) == ["name\\u0000evil"], r
    # Nothing was created: the SKU is still free.
    r = call("POST", "/products", {"sku": sku, "name": "Real", "price_cents": 1, "currency": "EUR"},
             token=seller)
    assert r.status == 201 and r.json["name"] == "Real", r
    p = r.json

    # The same on every write: stock, edits, orders, registration.
    r = call("POST", "/products/%d/stock" % p["id"], raw=b'{"delta\\u0000":5}', token=seller,
             headers=JSON)
    assert_problem(r, 422, "validation_failed")
    r = call("PATCH", "/products/%d" % p["id"], raw=b'{"name\\u0000":"Patched"}', token=seller,
             headers={"If-Match": '"1"', "Content-Type": "application/merge-patch+json"})
    assert_problem(r, 422, "validation_failed")
    assert _get(p["id"])["stock"] == 0 and _get(p["id"])["name"] == "Real"
    _, buyer = shop.new_user()
    r = call("POST", "/orders", raw=('{"items":[{"product_id\\u0000x":%d,"quantity":1}]}'
                                     % p["id"]).encode(), token=buyer, headers=JSON)
    assert_problem(r, 422, "validation_failed")
    assert _fields(r) == ["product_id\\u0000x"], r
    email = shop.unique("nul") + "@example.test"
    r = call("POST", "/auth/register", headers=JSON,
             raw=('{"email":"%s","password\\u0000":"%s"}' % (email, shop.PASSWORD)).encode())
    assert_problem(r, 422, "validation_failed")
    r = call("POST", "/auth/register", {"email": email, "password": shop.PASSWORD})
    assert r.status == 201, r


def test_a_member_name_given_twice_is_refused_and_changes_nothing():
    # {"delta":5,"delta":-5}: one reader takes 5, another -5; neither is
    # what the client surely meant, so the body is refused, naming it.
    seller = _seller()
    p = shop.new_product(seller, stock=10)
    r = call("POST", "/products/%d/stock" % p["id"], raw=b'{"delta":5,"delta":-5}', token=seller,
             headers=JSON)
    assert_problem(r, 422, "validation_failed")
    assert _fields(r) == ["delta"], r
    r = call("PATCH", "/products/%d" % p["id"], raw=b'{"name":"A","na\\u006de":"B"}', token=seller,
             headers={"If-Match": '"1"', "Content-Type": "application/merge-patch+json"})
    assert_problem(r, 422, "validation_failed")
    assert _fields(r) == ["name"], r
    assert (_get(p["id"])["stock"], _get(p["id"])["name"], _get(p["id"])["version"]) == \
        (10, p["name"], 1)
    _, buyer = shop.new_user()
    r = call("POST", "/orders", token=buyer, headers=JSON, raw=(
        '{"items":[{"product_id":%d,"quantity":1,"quantity":9}]}' % p["id"]).encode())
    assert_problem(r, 422, "validation_failed")
    assert _fields(r) == ["quantity"], r
    assert call("GET", "/orders", token=buyer).json["items"] == []
    email = shop.unique("dup") + "@example.test"
    r = call("POST", "/auth/register", headers=JSON, raw=(
        '{"email":"%s","password":"%s","email":"other-%s"}' % (email, shop.PASSWORD, email)).encode())
    assert_problem(r, 422, "validation_failed")
    r = call("POST", "/auth/register", {"email": email, "password": shop.PASSWORD})
    assert r.status == 201, r


def test_deeply_nested_body_is_refused_as_malformed_and_saying_so():
    _, buyer = shop.new_user()
    deep = '{"items":[{"product_id":1,"quantity":1}],"x":' + "[" * 40 + "]" * 40 + "}"
    r = call("POST", "/orders", raw=deep.encode(), token=buyer, headers=JSON)
    assert_problem(r, 400, "malformed_json")
    assert "32 levels" in r.json["detail"], r
    assert call("GET", "/orders", token=buyer).json["items"] == []


def test_a_body_sent_where_none_is_taken_is_still_checked_and_changes_nothing():
    # Cancel and DELETE take no body; a client that always sends one may
    # send {}, but a malformed one is 400 and a member 422, and neither
    # cancels or deletes anything.
    seller = _seller()
    p = shop.new_product(seller, stock=10)
    _, buyer = shop.new_user()
    r = call("POST", "/orders", {"items": [{"product_id": p["id"], "quantity": 2}]}, token=buyer)
    assert r.status == 201, r
    oid = r.json["id"]
    for raw, status in ((b"{", 400), (b'{"reason":"late"}', 422), (b"[]", 422)):
        r = call("POST", "/orders/%d/cancel" % oid, raw=raw, token=buyer, headers=JSON)
        assert_problem(r, status)
        r = call("DELETE", "/products/%d" % p["id"], raw=raw, token=seller, headers=JSON)
        assert_problem(r, status)
    assert call("GET", "/orders/%d" % oid, token=buyer).json["status"] == "confirmed"
    assert (_get(p["id"])["status"], _get(p["id"])["stock"]) == ("active", 8)
    r = call("POST", "/orders/%d/cancel" % oid, raw=b"{}", token=buyer, headers=JSON)
    assert r.status == 200 and r.json["status"] == "cancelled", r
    assert _get(p["id"])["stock"] == 10
