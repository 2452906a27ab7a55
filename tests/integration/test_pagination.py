"""test_pagination.py: keyset pagination of GET /products (ascending id) and
GET /orders (newest first) walked to the end the way a client does: a last
page that is exactly `limit` long ends the list there (next_cursor null, no
empty page after it), limit=1 walks one item per page, rows inserted during
a walk neither repeat nor hide the rows that were there at its start, a
cursor of one list is refused by the other, a cursor edited by hand (or an
empty one) is refused, and an admin pages through one user's orders with
user_id."""
import base64

import shop
from shop import assert_problem, call

_cache = {}


def _seller():
    if "seller" not in _cache:
        _cache["seller"] = shop.new_user("seller")
    return _cache["seller"][1]


def _products(tag, n):
    return [shop.new_product(_seller(), name="Page %s #%d" % (tag, i))["id"] for i in range(n)]


def _orders(tok, n):
    if "product" not in _cache:
        _cache["product"] = shop.new_product(_seller(), stock=100000)
    ids = []
    for _ in range(n):
        r = call("POST", "/orders", {"items": [{"product_id": _cache["product"]["id"], "quantity": 1}]},
                 token=tok)
        assert r.status == 201, r
        ids.append(r.json["id"])
    return ids


def walk(path, token=None, between=None, max_pages=100):
    """Every page of a list walk: [[ids of page 1], [ids of page 2], ...].
    `between(page_number)` runs after each page but the last."""
    pages, cursor = [], None
    sep = "&" if "?" in path else "?"
    for n in range(max_pages):
        r = call("GET", path + (sep + "cursor=" + cursor if cursor else ""), token=token)
        assert r.status == 200, (path, r)
        assert set(r.json) == {"items", "next_cursor"}, r
        pages.append([i["id"] for i in r.json["items"]])
        cursor = r.json["next_cursor"]
        if cursor is None:
            return pages
        assert isinstance(cursor, str) and cursor, r
        assert r.json["items"], ("an empty page with a next_cursor", path, r)
        if between:
            between(n + 1)
    raise AssertionError("the walk of %s never ended" % path)


def test_products_last_page_exactly_full_ends_the_list():
    tag = shop.unique("exact")
    made = _products(tag, 6)
    assert walk("/products?limit=3&q=%s" % tag, _seller()) == [made[:3], made[3:]]
    assert walk("/products?limit=6&q=%s" % tag, _seller()) == [made]
    assert walk("/products?limit=2&q=%s" % tag, _seller()) == [made[:2], made[2:4], made[4:]]
    assert walk("/products?limit=7&q=%s" % tag, _seller()) == [made]


def test_orders_last_page_exactly_full_ends_the_list():
    _, tok = shop.new_user()
    made = _orders(tok, 4)[::-1]                     # newest first
    assert walk("/orders?limit=2", tok) == [made[:2], made[2:]]
    assert walk("/orders?limit=4", tok) == [made]
    assert walk("/orders?limit=5", tok) == [made]


def test_limit_1_walks_one_item_per_page():
    tag = shop.unique("one")
    made = _products(tag, 3)
    assert walk("/products?limit=1&q=%s" % tag) == [[i] for i in made]
    _, tok = shop.new_user()
    orders = _orders(tok, 3)[::-1]
    assert walk("/orders?limit=1", tok) == [[i] for i in orders]


def test_products_inserted_during_a_walk_neither_repeat_nor_hide_others():
    tag = shop.unique("grow")
    made = _products(tag, 7)
    added = []

    def insert(page):
        if page <= 2:
            added.extend(_products(tag, 2))
    pages = walk("/products?limit=2&q=%s" % tag, _seller(), insert)
    seen = [i for p in pages for i in p]
    assert len(seen) == len(set(seen)), ("an item was repeated", pages)
    assert set(made) <= set(seen), ("an item present at the start was skipped", made, pages)
    # Ascending ids: what was added behind the cursor shows up at the end.
    assert seen == sorted(seen) and set(seen) == set(made + added), (pages, made, added)


def test_orders_placed_during_a_walk_neither_repeat_nor_hide_others():
    _, tok = shop.new_user()
    made = _orders(tok, 5)[::-1]
    added = []

    def insert(page):
        added.extend(_orders(tok, 2))
    pages = walk("/orders?limit=2", tok, insert)
    seen = [i for p in pages for i in p]
    assert len(seen) == len(set(seen)), ("an order was repeated", pages)
    # Newest first: orders placed after the walk began are before its cursor.
    assert seen == made, ("the orders present at the start, each once, newest first", pages, made)
    assert len(added) >= 4
    assert [o["id"] for o in call("GET", "/orders?limit=100", token=tok).json["items"]] == \
        sorted(made + added, reverse=True)


def test_a_cursor_of_one_list_is_refused_by_the_other():
    tag = shop.unique("cross")
    _products(tag, 2)
    pcur = call("GET", "/products?limit=1&q=%s" % tag).json["next_cursor"]
    _, tok = shop.new_user()
    _orders(tok, 2)
    ocur = call("GET", "/orders?limit=1", token=tok).json["next_cursor"]
    assert pcur and ocur, (pcur, ocur)
    # Both work where they came from...
    assert call("GET", "/products?limit=1&q=%s&cursor=%s" % (tag, pcur)).status == 200
    assert call("GET", "/orders?limit=1&cursor=%s" % ocur, token=tok).status == 200
    # ...and nowhere else.
    assert_problem(call("GET", "/orders?limit=1&cursor=%s" % pcur, token=tok), 400, "invalid_cursor")
    assert_problem(call("GET", "/orders?cursor=%s" % pcur, token=shop.admin_token()),
                   400, "invalid_cursor")
    assert_problem(call("GET", "/products?limit=1&cursor=%s" % ocur), 400, "invalid_cursor")
    assert_problem(call("GET", "/products?cursor=%s" % ocur, token=_seller()), 400, "invalid_cursor")


def test_a_cursor_is_taken_back_only_with_its_filters():
    tag = shop.unique("filt")
    _products(tag, 3)
    cur = call("GET", "/products?limit=1&q=%s" % tag).json["next_cursor"]
    assert cur
    assert call("GET", "/products?limit=1&q=%s&cursor=%s" % (tag, cur)).status == 200
    for other in ("/products?limit=1&cursor=%s", "/products?limit=1&status=draft&q=" + tag + "&cursor=%s",
                  "/products?limit=1&q=" + tag + "x&cursor=%s", "/products?seller_id=1&q=" + tag + "&cursor=%s"):
        assert_problem(call("GET", other % cur), 400, "invalid_cursor")
    # Nor is a cursor made up from an id (base64url of "5").
    assert_problem(call("GET", "/products?cursor=NQ"), 400, "invalid_cursor")
    # Orders: an admin's cursor for one user's orders is not another's.
    (a, ta), (b, _) = shop.new_user(), shop.new_user()
    _orders(ta, 2)
    adm = shop.admin_token()
    cur = call("GET", "/orders?user_id=%d&limit=1" % a["id"], token=adm).json["next_cursor"]
    assert cur
    assert call("GET", "/orders?user_id=%d&limit=1&cursor=%s" % (a["id"], cur), token=adm).status == 200
    for other in ("/orders?user_id=%d&cursor=%%s" % b["id"], "/orders?cursor=%s"):
        assert_problem(call("GET", other % cur, token=adm), 400, "invalid_cursor")


def _b64(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(cur):
    return base64.urlsafe_b64decode(cur + "=" * (-len(cur) % 4))


def test_an_edited_or_empty_cursor_is_refused():
    tag = shop.unique("edit")
    _products(tag, 3)
    cur = call("GET", "/products?limit=1&q=%s" % tag).json["next_cursor"]
    tok = shop.new_user()[1]
    _orders(tok, 3)
    ocur = call("GET", "/orders?limit=1", token=tok).json["next_cursor"]
    assert cur and ocur
    for path, c, token in (("/products?limit=1&q=" + tag + "&cursor=", cur, None),
                           ("/orders?limit=1&cursor=", ocur, tok)):
        assert call("GET", path + c, token=token).status == 200
        raw = _unb64(c)
        digits = [i for i, ch in enumerate(raw) if 0x30 <= ch <= 0x39]
        edits = [c[:-1], c + "A", c[:-1] + ("A" if c[-1] != "A" else "B"),
                 _b64(raw[:-1]), _b64(raw + b"0")]
        for i in digits:                           # every digit changed in turn
            edits.append(_b64(raw[:i] + (b"1" if raw[i] != 0x31 else b"2") + raw[i + 1:]))
        for e in edits:
            assert_problem(call("GET", path + e, token=token), 400, "invalid_cursor")
        assert_problem(call("GET", path, token=token), 400, "invalid_cursor")   # cursor=


def test_admin_pages_through_one_users_orders():
    (a, ta), (_, tb) = shop.new_user(), shop.new_user()
    mine = []
    for _ in range(5):                               # interleaved with B's orders
        mine += _orders(ta, 1)
        _orders(tb, 1)
    mine.reverse()
    adm = shop.admin_token()
    pages = walk("/orders?user_id=%d&limit=2" % a["id"], adm)
    assert pages == [mine[:2], mine[2:4], mine[4:]], (pages, mine)
    r = call("GET", "/orders?user_id=%d&limit=2" % a["id"], token=adm)
    assert all(o["user_id"] == a["id"] for o in r.json["items"]), r
    # limit=1 to the end, and the exact multiple, with the filter on.
    assert walk("/orders?user_id=%d&limit=1" % a["id"], adm) == [[i] for i in mine]
    assert walk("/orders?user_id=%d&limit=5" % a["id"], adm) == [mine]
    # A user with no orders: one empty page.
    nobody, _ = shop.new_user()
    assert walk("/orders?user_id=%d" % nobody["id"], adm) == [[]]
