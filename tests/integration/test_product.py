"""test_product.py: the product service as clients see it through the edge
(contract rows, error codes, the visibility matrix, pagination, ETags and
preconditions, stock under concurrency), the internal reservation API as the
order service sees it, and three database-level facts the design rests on:
the list and search queries the service runs read only their page, the
search index is the same on every node, and concurrent row locks on two Galera nodes
surface as deadlock errors (1213) without ever taking stock below zero."""
import json
import random
import re
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


def resv_id():
    # A reservation id as the order service would choose one (1..10^18-1).
    return random.randrange(10 ** 15, 10 ** 18)


# Reservations made here have no order behind them: like a request that died
# after reserving, the order service's sweep gives them back after their TTL.
RESV_USER = 424242


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
                       ("currency", 978), ("currency", "ZZZ"), ("status", "gone"),
                       ("stock", None), ("status", None), ("description", None), ("name", None)):
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
    for inm in ('"2"', 'W/"2", "3"', "1", '"1"x', '"1";x', "*x"):     # the last three malformed
        r = get(pid, customer()[1], headers={"If-None-Match": inm})
        assert r.status == 200, (inm, r)
    assert_problem(get(999999999999), 404, "not_found")


def test_the_other_preconditions_of_rfc_9110():
    """A GET with an If-Match that does not match: 412 (also anonymous, where
    the edge's cache would have answered); a write whose If-None-Match
    matches the current ETag, or is "*": 412 and nothing changes."""
    tok = seller()[1]
    p = product(tok)
    pid, path = p["id"], "/products/%d" % p["id"]
    def read(token, headers=None):          # anonymous: the plain path, which the edge caches
        return call("GET", path, token=token, headers=headers) if token is None else \
            get(pid, token, headers)
    for token in (None, customer()[1], tok):
        assert read(token).status == 200
        for im in ('"9"', 'W/"1"', '"1"x'):
            assert_problem(read(token, {"If-Match": im}), 412, "precondition_failed")
        for im in ('"1"', "*", '"7", "1"'):
            r = read(token, {"If-Match": im})
            assert r.status == 200 and r.json["id"] == pid, (im, r)
    # A draft the caller may not see stays 404 whatever the precondition.
    d = product(tok, status="draft")
    assert_problem(get(d["id"], customer()[1], headers={"If-Match": '"9"'}), 404, "not_found")
    writes = (("PATCH", path, {"name": "Changed"}), ("PUT", path, {
        "name": "Changed", "price_cents": 5, "currency": "USD", "status": "active"}),
        ("POST", path + "/stock", {"delta": 3}), ("DELETE", path, None))
    for inm in ('"1"', 'W/"1"', "*", '"5", "1"'):
        for method, target, body in writes:
            r = call(method, target, body, token=tok, headers={"If-Match": '"1"', "If-None-Match": inm})
            assert_problem(r, 412, "precondition_failed")
    after = get(pid, tok).json
    assert (after["version"], after["name"], after["stock"], after["status"]) == \
        (1, p["name"], p["stock"], "active"), after
    r = call("PATCH", path, {"name": "Changed"}, token=tok,
             headers={"If-Match": '"1"', "If-None-Match": '"5"'})
    assert r.status == 200 and r.json["version"] == 2, r


def test_a_query_parameter_given_twice_is_refused():
    for target, field in (("/products?limit=5&limit=50", "limit"),
                          ("/products?q=mug&status=active&q=cup", "q"),
                          ("/products?status=active&status=draft", "status")):
        r = call("GET", target, token=customer()[1])
        assert_problem(r, 422, "validation_failed")
        assert [e["field"] for e in r.json["errors"]] == [field], r
        assert r.json["errors"][0]["message"] == "given more than once", r
    r = call("GET", "/orders?limit=1&limit=2", token=customer()[1])
    assert_problem(r, 422, "validation_failed")
    assert [e["field"] for e in r.json["errors"]] == ["limit"], r
    # A cursor too, even the very one this API gave out, twice.
    _, buyer = shop.new_user()
    p = shop.new_product(shop.new_user("seller")[1], stock=5)
    for _ in range(2):
        r = call("POST", "/orders", {"items": [{"product_id": p["id"], "quantity": 1}]}, token=buyer)
        assert r.status == 201, r
    for path in ("/products?limit=1", "/orders?limit=1"):
        cur = call("GET", path, token=buyer).json["next_cursor"]
        assert cur, path
        r = call("GET", "%s&cursor=%s&cursor=%s" % (path, cur, cur), token=buyer)
        assert_problem(r, 422, "validation_failed")
        assert [e["field"] for e in r.json["errors"]] == ["cursor"], r


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


def test_q_matches_words_and_prefixes_case_insensitively():
    # The rule (api/openapi.yaml, parameter q): q's words (letters, digits, _)
    # of 3+ characters must each begin a word of the name, ignoring case and
    # accents; shorter words are ignored; anything else separates words.
    token = shop.unique("find")              # two words: "find" and a hex tag
    tok = seller()[1]
    mug = product(tok, name="%s Blue Mug" % token)["id"]
    mugs = product(tok, name="%s blue MUGS set" % token)["id"]
    bt = product(tok, name="%s Bluetooth speaker" % token)["id"]
    cafe = product(tok, name="%s Café crème" % token)["id"]
    stop = product(tok, name="%s about the thing" % token)["id"]
    assert list_ids(None, q=token) == [mug, mugs, bt, cafe, stop]
    assert list_ids(None, q=token.upper() + "+mug") == [mug, mugs]        # case, prefix
    assert list_ids(None, q=token + "+mugs") == [mugs]
    assert list_ids(None, q=token + "+BLUE") == [mug, mugs, bt]           # Blue, blue, Bluetooth
    assert list_ids(None, q=token + "+blue+mug") == [mug, mugs]           # every word must match
    assert list_ids(None, q=token + "+lue") == []                         # not a substring match
    assert list_ids(None, q=token + "+ug") == list_ids(None, q=token)     # 2 letters: ignored
    assert list_ids(None, q=token + "+creme") == [cafe]                   # accents fold
    # no stopword list: common words are words like any other
    assert list_ids(None, q=token + "+about") == [stop]
    assert list_ids(None, q=token + "+the") == [stop]
    # word order and separators do not matter
    assert list_ids(None, q="mug%2C" + token.replace("-", "%2F")) == [mug, mugs]
    # an edit moves the product in the index
    p = get(mug, tok).json
    r = call("PATCH", "/products/%d" % mug, {"name": "%s Red cup" % token}, token=tok,
             headers={"If-Match": etag(p), "Content-Type": "application/merge-patch+json"})
    assert r.status == 200, r
    assert list_ids(None, q=token + "+mug") == [mugs]
    assert list_ids(None, q=token + "+red+cup") == [mug]


def test_q_operators_are_plain_separators():
    # Full-text boolean operators in q are separators, never syntax: a user
    # cannot exclude (-), make a word optional, quote a phrase, or widen a match.
    token = shop.unique("ops")
    tok = seller()[1]
    mug = product(tok, name="%s blue mug" % token)["id"]
    cup = product(tok, name="%s red cup" % token)["id"]
    pct = product(tok, name="%s 100%% cotton" % token)["id"]
    for q in ("-mug", "%2Bmug", "mug*", "%22mug%22", "(mug)", "~mug", "%3Cmug%3E", "mug@2",
              "%22blue+mug%22@4"):
        assert list_ids(None, q="%s+%s" % (token, q)) == [mug], q
    assert list_ids(None, q=token + "+-red") == [cup]
    assert list_ids(None, q=token + "+100%25") == [pct]
    assert list_ids(None, q=token + "+%25%25") == [mug, cup, pct]       # % is a separator
    assert list_ids(None, q=token + "+mug+cup") == []                   # no OR
    # a word longer than any indexed word (84 characters) cannot match
    assert list_ids(None, q=token + "+" + "m" * 85) == []
    # q is at most 200 characters (counted as characters, not bytes)
    e = "%C3%A9"                                   # é, two bytes of UTF-8
    assert call("GET", "/products?q=" + e * 200).status == 200
    for q in ("a" * 201, e * 201):
        r = call("GET", "/products?q=" + q)
        assert_problem(r, 422, "validation_failed")
        assert r.json["errors"][0]["field"] == "q", r
    # a q with no word of 3 characters cannot be searched
    for q in ("tv", "a+b", "%25%25%25", "**", "+"):
        r = call("GET", "/products?q=" + q)
        assert_problem(r, 422, "validation_failed")
        assert r.json["errors"][0]["field"] == "q", r


def test_q_pages_by_id_within_visibility():
    # A search pages by id like any list, and shows only what the caller may see.
    token = shop.unique("sp")
    me, tok = seller()
    other = other_seller()[1]
    made = []
    for i in range(9):
        made.append(product(tok, name="%s item %d" % (token, i),
                            status="draft" if i % 3 == 0 else "active")["id"])
    draft_of_other = product(other, name="%s item x" % token, status="draft")["id"]
    public = [pid for i, pid in enumerate(made) if i % 3]
    for who, t, want in (("anonymous", None, public), ("customer", customer()[1], public),
                         ("owner", tok, made), ("other seller", other, public + [draft_of_other]),
                         ("admin", admin()[1], made + [draft_of_other])):
        for limit in (1, 2, 100):
            assert list_ids(t, q=token + "+item", limit=limit) == sorted(want), (who, limit)
    assert list_ids(tok, q=token, status="draft") == [made[0], made[3], made[6]]
    assert list_ids(None, q=token, status="draft") == []
    assert list_ids(None, q=token, seller_id=me["id"]) == public


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
    # null is no value of a PUT's fields (only a PATCH removes with it)
    r = call("PUT", path, {"name": "Put", "price_cents": 5, "currency": "USD",
                           "status": "active", "description": None}, token=tok,
             headers={"If-Match": "*"})
    assert_problem(r, 422, "validation_failed")
    assert [e["field"] for e in r.json["errors"]] == ["description"], r
    # An edit that changes nothing keeps the version (and every client's
    # ETag), but still needs a current If-Match.
    same = {"name": "Put", "price_cents": 5, "currency": "USD", "status": "active"}
    for method, body in (("PATCH", {}), ("PATCH", {"name": "Put"}), ("PUT", same)):
        r = call(method, path, body, token=tok, headers={"If-Match": '"3"'})
        assert_problem(r, 412, "precondition_failed")
        r = call(method, path, body, token=tok, headers={"If-Match": '"4"'})
        assert r.status == 200 and r.json["version"] == 4, (method, body, r)
        assert r.header("etag") == '"4"' and get(p["id"], tok).json == r.json, r


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
    # A name must show something: not only spaces or invisible characters.
    for blank in ("   ", "\t\n", "\u00a0\u3000\u200b"):
        r = call("PATCH", path, {"name": blank}, token=tok, headers=hdr)
        assert_problem(r, 422, "validation_failed")
        assert r.json["errors"] == [{"field": "name", "message": "must not be blank"}], r
        r = call("POST", "/products", {"sku": shop.unique("blank"), "name": blank,
                                       "price_cents": 1, "currency": "EUR"}, token=tok)
        assert_problem(r, 422, "validation_failed")
        assert [e["field"] for e in r.json["errors"]] == ["name"], r
    r = call("PATCH", path, {"name": ""}, token=tok, headers=hdr)
    assert r.json["errors"] == [{"field": "name", "message": "must not be empty"}], r
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
    assert r.json["items"] == [{"product_id": p["id"], "requested": 9, "available": 8}], r.json
    assert (r.json["requested"], r.json["available"]) == (9, 8), r.json
    r = call("POST", path, {"delta": -8}, token=tok)
    assert r.status == 200 and r.json["stock"] == 0, r
    for bad in ({"delta": 0}, {"delta": 1.5}, {"delta": "1"}, {"delta": True},
                {"delta": 10 ** 9 + 1}, {}, {"delta": 1, "x": 1}):
        assert_problem(call("POST", path, bad, token=tok), 422, "validation_failed")
    r = call("POST", path, {"delta": 2}, token=admin()[1])
    assert r.status == 200 and r.json["stock"] == 2, r
    assert get(p["id"], tok).json["stock"] == 2
    # Nor above the 10^9 a product may hold, however it is reached.
    r = call("POST", path, {"delta": 10 ** 9 - 2}, token=tok)
    assert r.status == 200 and r.json["stock"] == 10 ** 9, r
    r = call("POST", path, {"delta": 1}, token=tok)
    assert_problem(r, 422, "validation_failed")
    assert [e["field"] for e in r.json["errors"]] == ["delta"], r
    assert get(p["id"], tok).json["stock"] == 10 ** 9
    # If-Match is not needed, but one that is sent must match.
    cur = get(p["id"], tok).json
    r = call("POST", path, {"delta": -1}, token=tok, headers={"If-Match": '"%d"' % (cur["version"] + 5)})
    assert_problem(r, 412, "precondition_failed")
    r = call("POST", path, {"delta": -1}, token=tok, headers={"If-Match": '"%d"' % cur["version"]})
    assert r.status == 200 and r.json["stock"] == 10 ** 9 - 1, r
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
    assert_problem(call("POST", "/internal/reservations", {"id": 1, "items": []}), 404)
    r = internal("GET", "/internal/reservations/1", token=False)
    assert_problem(r, 404)
    assert_problem(internal("GET", "/internal/reservations/expired", token=False), 404)


def resv(rid, *lines):
    return {"id": rid, "user_id": RESV_USER,
            "items": [{"product_id": p, "quantity": q} for p, q in lines]}


def test_reserve_confirm_release_cycle():
    tok = seller()[1]
    a, b = product(tok, stock=5, price_cents=300), product(tok, stock=2, currency="EUR")
    rid = resv_id()
    body = resv(rid, (b["id"], 2), (a["id"], 3))
    r = internal("POST", "/internal/reservations", body)
    assert r.status == 200, r
    want = {"id": rid, "status": "held", "items": [
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
    assert internal("GET", "/internal/reservations/%d" % rid).json == \
        {"id": rid, "status": "held"}
    missing = resv_id()
    for _ in range(2):
        r = internal("POST", "/internal/reservations/confirm", {"ids": [rid, missing]})
        assert r.status == 200 and r.json == {"items": [
            {"id": rid, "status": "confirmed"}, {"id": missing, "status": "missing"}]}, r
    r = internal("POST", "/internal/reservations", body)
    assert r.status == 200 and r.json["status"] == "confirmed", r
    for _ in range(2):
        r = internal("POST", "/internal/reservations/%d/release" % rid)
        assert r.status == 200 and r.json == {"id": rid, "status": "released"}, r
    assert (get(a["id"], tok).json["stock"], get(b["id"], tok).json["stock"]) == (5, 2)
    assert_problem(internal("POST", "/internal/reservations", body), 409, "invalid_state")
    r = internal("POST", "/internal/reservations/confirm", {"ids": [rid]})
    assert r.status == 200 and r.json["items"] == [{"id": rid, "status": "released"}], r
    assert get(a["id"], tok).json["stock"] == 5
    for bad in ({"ids": []}, {"ids": [0]}, {"ids": ["1"]}, {"ids": list(range(1, 502))}, {}):
        assert_problem(internal("POST", "/internal/reservations/confirm", bad), 422,
                       "validation_failed")


def test_release_before_reserve_leaves_tombstone():
    p = product(stock=4)
    rid = resv_id()
    assert_problem(internal("GET", "/internal/reservations/%d" % rid), 404)
    r = internal("POST", "/internal/reservations/%d/release" % rid)
    assert r.status == 200 and r.json["status"] == "released", r
    assert_problem(internal("POST", "/internal/reservations", resv(rid, (p["id"], 1))), 409,
                   "invalid_state")
    assert get(p["id"], seller()[1]).json["stock"] == 4


def test_reserve_is_all_or_nothing():
    tok = seller()[1]
    ok, short, draft = product(tok, stock=5), product(tok, stock=1), product(tok, status="draft")
    rid = resv_id()
    r = internal("POST", "/internal/reservations",
                 resv(rid, (ok["id"], 1), (draft["id"], 1), (999999999999, 1)))
    assert_problem(r, 422, "product_unavailable")
    assert r.json["items"] == [{"product_id": draft["id"]}, {"product_id": 999999999999}], r
    r = internal("POST", "/internal/reservations", resv(rid, (ok["id"], 5), (short["id"], 3)))
    assert_problem(r, 409, "insufficient_stock")
    assert r.json["items"] == [{"product_id": short["id"], "requested": 3, "available": 1}], r
    assert (get(ok["id"], tok).json["stock"], get(short["id"], tok).json["stock"]) == (5, 1)
    assert_problem(internal("GET", "/internal/reservations/%d" % rid), 404)
    line = [{"product_id": ok["id"], "quantity": 1}]
    for bad in ({"id": rid, "user_id": 1, "items": []},
                {"id": rid, "user_id": 1, "items": [{"product_id": ok["id"], "quantity": 0}]},
                {"id": rid, "user_id": 1, "items": line * 2},
                {"id": "1", "user_id": 1, "items": line},
                {"id": 10 ** 18, "user_id": 1, "items": line},
                {"id": rid, "items": line}):
        assert_problem(internal("POST", "/internal/reservations", bad), 422, "validation_failed")
    # the same id now succeeds: failures left nothing behind
    r = internal("POST", "/internal/reservations", resv(rid, (ok["id"], 5), (short["id"], 1)))
    assert r.status == 200, r
    assert (get(ok["id"], tok).json["stock"], get(short["id"], tok).json["stock"]) == (0, 0)


def test_concurrent_reserves_of_one_id_take_stock_once():
    p = product(stock=100)
    body = resv(resv_id(), (p["id"], 7))
    res = shop.parallel(10, lambda i: internal("POST", "/internal/reservations", body))
    assert all(r.status == 200 for r in res), res
    assert get(p["id"], seller()[1]).json["stock"] == 93


def test_reservation_without_order_comes_back_after_its_ttl():
    """A reservation nobody writes an order for (its request died) is listed
    as expired once its TTL is over, and the order service's sweep releases
    it: the stock returns without anyone asking."""
    p = product(stock=10)
    rid = resv_id()
    assert internal("POST", "/internal/reservations", resv(rid, (p["id"], 4))).status == 200
    assert get(p["id"], seller()[1]).json["stock"] == 6
    shop.wait_for("the orphaned reservation's stock to come back",
                  lambda: get(p["id"], seller()[1]).json["stock"] == 10, timeout=40)
    assert internal("GET", "/internal/reservations/%d" % rid).json["status"] == "released"
    assert_problem(internal("POST", "/internal/reservations", resv(rid, (p["id"], 4))), 409,
                   "invalid_state")
    r = internal("GET", "/internal/reservations/expired?limit=500")
    assert r.status == 200 and rid not in [i["id"] for i in r.json["items"]], r
    assert_problem(internal("GET", "/internal/reservations/expired?limit=0"), 422,
                   "validation_failed")


# ------------------------------------------------------------ database facts

def nodes():
    return range(1, len(shop.STACK["SHOP_ROOT_SOCKETS"].split()) + 1)


def statements_run_by_service(action):
    """Runs action() with every Galera node's general log on (into the
    mysql.general_log table) and returns the statements the product service
    executed meanwhile, as the log writes them: prepared statements with their
    bound values in place.  Every node: whichever one the service reads from.
    The server decides when a statement is prepared whether its executions log
    their values, so the product service's connections are cut first: it
    reconnects (a read is repeated once on a new connection, lib/db.c) and
    prepares its statements again with the log on."""
    saved, since = {}, {}
    for n in nodes():
        saved[n] = shop.sql("SELECT @@global.log_output, @@global.general_log", node=n)[0]
        since[n] = shop.sql("SELECT NOW(6)", node=n)[0][0]
        shop.sql("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = ON", node=n)
    for n in nodes():
        for (cid,) in shop.sql("SELECT id FROM information_schema.PROCESSLIST"
                               " WHERE user = 'shop_product'", node=n):
            run_mysql(shop.STACK["SHOP_ROOT_SOCKETS"].split()[n - 1], "KILL CONNECTION %s" % cid)
    try:
        action()
    finally:
        for n in nodes():
            shop.sql("SET GLOBAL general_log = %s; SET GLOBAL log_output = '%s'"
                     % (saved[n][1], saved[n][0]), node=n)
    out = []
    for n in nodes():
        out += [r[0] for r in shop.sql(
            "SELECT argument FROM mysql.general_log WHERE command_type = 'Execute'"
            " AND user_host LIKE 'shop_product%%' AND event_time >= '%s'" % since[n], node=n)]
    return out


def analyze(statement):
    """ANALYZE FORMAT=JSON of a statement the service ran (executes it again;
    a search's "SET STATEMENT max_statement_time = ... FOR" budget prefix is
    not part of the plan)."""
    statement = re.sub(r"^SET STATEMENT .*? FOR ", "", statement, flags=re.S)
    r = subprocess.run(["mariadb", "-uroot", "--socket=" + shop.STACK["SHOP_ROOT_SOCKETS"].split()[0],
                        "-N", "-B", "-r", "-D", "shop_product", "-e",
                        "ANALYZE FORMAT=JSON " + statement],
                       check=True, capture_output=True, text=True)
    return json.loads(r.stdout)


def table_accesses(plan, sorted_=False):
    """Every table read of an ANALYZE FORMAT=JSON plan: dicts with name,
    access_type, key, r_rows and whether a filesort reads it directly."""
    found = []
    if isinstance(plan, list):
        for x in plan:
            found += table_accesses(x, sorted_)
    elif isinstance(plan, dict):
        if "table_name" in plan:
            found.append({"name": plan["table_name"], "access": plan.get("access_type"),
                          "key": plan.get("key"), "r_rows": plan.get("r_rows"),
                          "sorted": sorted_})
        for k, v in plan.items():
            # a nested query block has its own ORDER BY
            found += table_accesses(v, (sorted_ or k == "filesort") and k != "query_block")
    return found


def the_list_statement(statements, after, limit):
    """The one list statement (after `after`, limit+1 rows) among those captured."""
    pat = re.compile(r"\bFROM products WHERE .*\bid > %d\b.*\bLIMIT %d$" % (after, limit + 1),
                     re.S)
    hits = [st for st in statements if "FROM products" in st and pat.search(st)]
    assert len(hits) == 1, statements
    return hits[0]


def test_list_queries_the_service_runs_read_only_their_page():
    # The statements are captured from the database's general log while the
    # service answers real list requests, so a change to the SQL in
    # cgi/product/store.c is what gets checked.  A deep page (a cursor with 14
    # rows after it and every earlier test's rows before it) must read about
    # limit+1 rows along an index in id order, not the rows before the cursor
    # and not a sort of everything after it; a search must read only the rows
    # the FULLTEXT index returned for its words.
    me, tok = seller()
    word = shop.unique("plan").split("-")[1]
    ids = [product(tok, name="Plan %s %d" % (word if i % 8 == 0 else "x", i))["id"]
           for i in range(24)]
    for _ in range(3):
        product(other_seller()[1], status="draft")
    after, limit = ids[9], 7
    cursor = shop.shoplib.product_cursor(after)
    viewers_ = {"anonymous": None, "admin": admin()[1], "seller": tok}
    pages = {}

    def requests():
        for who, t in viewers_.items():
            r = call("GET", "/products?limit=%d&cursor=%s" % (limit, cursor), token=t,
                     headers={"Cache-Control": "no-cache"})
            assert r.status == 200 and r.json["items"][0]["id"] == ids[10], (who, r)
            pages[who] = r
        r = call("GET", "/products?q=%s&limit=2" % word, headers={"Cache-Control": "no-cache"})
        assert [p["id"] for p in r.json["items"]] == [ids[0], ids[8]], r
        pages["search"] = r
    statements = statements_run_by_service(requests)

    # anonymous: public rows along products_status_id (or the primary key)
    # admin: the primary key; both stop after limit+1 rows
    for who, keys in (("anonymous", {"products_status_id", "PRIMARY"}), ("admin", {"PRIMARY"})):
        st = the_list_statement([x for x in statements if "UNION" not in x and "MATCH" not in x
                                 and (("status = 'active'" in x) == (who == "anonymous"))],
                                after, limit)
        (t,) = table_accesses(analyze(st))
        assert t["key"] in keys and not t["sorted"], (who, t, st)
        assert t["r_rows"] <= limit + 1, (who, t, st)
    # a seller: the public rows, its drafts, its archived rows (the union's
    # parts in that order), each an index range that stops at limit+1
    st = [x for x in statements if "UNION ALL" in x]
    assert len(st) == 1, statements
    reads = [t for t in table_accesses(analyze(st[0])) if t["name"] == "products"]
    assert len(reads) == 3, reads
    for t in reads:
        # which index each part walks is the optimizer's choice (by the data);
        # that it walks one in id order and stops is what matters
        assert t["key"] in {"products_status_id", "products_seller_status_id", "PRIMARY"}, (t, st)
        assert not t["sorted"] and t["r_rows"] <= limit + 1, (t, st)
    # a search: the FULLTEXT index yields the 3 rows with the word, nothing else is read
    st = [x for x in statements if "MATCH(name) AGAINST" in x]
    assert len(st) == 1, statements
    (t,) = table_accesses(analyze(st[0]))
    assert t["access"] == "fulltext" and t["key"] == "products_name_ft", (t, st)
    assert t["r_rows"] <= 3, (t, st)


def test_search_index_has_no_stopwords_on_any_node():
    # Every node built products_name_ft itself (Galera runs the DDL on each);
    # a node built with the stopword list would never find "about" or "the".
    token = shop.unique("stop").split("-")[1]
    pid = product(name="%s about the" % token)["id"]
    for n in nodes():
        rows = shop.wait_for("node %d to apply the insert" % n, lambda: shop.sql(
            "SELECT id FROM shop_product.products WHERE id = %d" % pid, node=n))
        assert rows == [[str(pid)]]
        for q in ("+about* +%s*" % token, "+the +%s" % token):
            got = shop.sql("SELECT id FROM shop_product.products"
                           " WHERE MATCH(name) AGAINST('%s' IN BOOLEAN MODE)" % q, node=n)
            assert got == [[str(pid)]], (n, q, got)


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
