"""ha_backup.py: a backup taken while orders are being placed, then a
disaster, then the restore (scripts/backup, `make backup` / `make restore`;
docs/OPERATIONS.md "Restoring from a backup").  Checked through the edge, as
a client sees it: the users of the backup log in with their passwords, their
products and orders are back as they were, the stock of every product matches
its confirmed orders (the backup is one consistent moment across the three
services' databases), everything written after the backup is gone, and the
restored cluster takes orders again with three identical nodes."""
import os
import threading

import ha_failover as ha
import shop
from shop import call


def _orders(token):
    """Every order the token's user sees (GET /orders, all pages): {id: order}."""
    out, cursor = {}, None
    while True:
        r = call("GET", "/orders?limit=100" + ("&cursor=" + cursor if cursor else ""), token=token)
        assert r.status == 200, r
        out.update((o["id"], o) for o in r.json["items"])
        cursor = r.json["next_cursor"]
        if not cursor:
            return out


def _ordered(orders, product_id):
    """Quantity of product_id in the confirmed orders."""
    return sum(line["quantity"] for o in orders.values() if o["status"] == "confirmed"
               for line in o["items"] if line["product_id"] == product_id)


def test_restore_brings_back_the_backup_and_nothing_written_after_it():
    seller_user = shop.register()
    r = call("PATCH", "/auth/users/%d" % seller_user["id"], {"role": "seller"},
             token=shop.admin_token())
    assert r.status == 200, r
    seller = shop.login(seller_user["email"])["access_token"]
    buyer_user = shop.register(name="Backed Up")
    buyer = shop.login(buyer_user["email"])["access_token"]
    p = shop.new_product(seller, stock=1000, price_cents=700)
    other = shop.new_product(seller, stock=20, name="Second product")

    before = {}
    for i in range(6):
        r = call("POST", "/orders", {"items": [{"product_id": p["id"], "quantity": i + 1}]},
                 token=buyer, headers={"Idempotency-Key": "before-%d" % i})
        assert r.status == 201, r
        before[r.json["id"]] = r.json
    cancelled = next(iter(before))
    r = call("POST", "/orders/%d/cancel" % cancelled, token=buyer)
    assert r.status == 200 and r.json["status"] == "cancelled", r
    before[cancelled] = r.json
    r = call("POST", "/orders", {"items": [{"product_id": other["id"], "quantity": 2}]}, token=buyer)
    assert r.status == 201, r
    before[r.json["id"]] = r.json

    # Orders keep coming while the backup runs: it must still be one moment.
    stop = threading.Event()
    during = []

    def place():
        i = 0
        while not stop.is_set():
            try:
                r = call("POST", "/orders", {"items": [{"product_id": p["id"], "quantity": 1}]},
                         token=buyer, headers={"Idempotency-Key": "during-%d" % i}, timeout=10)
                during.append(r.status)
            except OSError as e:
                during.append(repr(e))
            i += 1
    t = threading.Thread(target=place)
    t.start()
    try:
        dest = os.path.join(shop.STACK["SHOP_STATE_DIR"], "backups", "it")
        took = shop.script("backup", "take", dest, check=False)
    finally:
        stop.set()
        t.join()
    assert took.returncode == 0, took.stdout + took.stderr
    # The backup came from a node that is not the writer (node 1).
    assert "backup: node 3 -> " in took.stdout, took.stdout
    assert os.path.isfile(os.path.join(dest, "galera-position")), os.listdir(dest)
    assert during and all(s == 201 for s in during), during

    # After the backup: a new user, a new product, an order, a price change...
    late_user = shop.register()
    late_product = shop.new_product(seller, stock=5)
    r = call("POST", "/orders", {"items": [{"product_id": p["id"], "quantity": 9}]}, token=buyer)
    assert r.status == 201, r
    late_order = r.json["id"]
    version = call("GET", "/products/%d" % p["id"], token=seller).json["version"]
    r = call("PATCH", "/products/%d" % p["id"], {"price_cents": 999}, token=seller,
             headers={"If-Match": '"%d"' % version, "Content-Type": "application/merge-patch+json"})
    assert r.status == 200 and r.json["price_cents"] == 999, r
    # ... and then the disaster: the order database is dropped on every node.
    shop.sql("DROP DATABASE shop_order")
    assert call("GET", "/orders/%d" % late_order, token=buyer).status >= 500

    restored = shop.script("backup", "restore", dest, check=False)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "backup: node 1 bootstrapped from the backup: Synced Primary 1" in restored.stdout, \
        restored.stdout
    for svc in ("auth", "products", "orders"):
        ha._wait("%s health 200 after the restore" % svc,
                 lambda: call("GET", "/%s/health" % svc).status == 200, 60)

    # The backup's users log in with their passwords; the later one does not exist.
    buyer = shop.login(buyer_user["email"])["access_token"]
    me = call("GET", "/auth/me", token=buyer)
    assert me.status == 200 and me.json["name"] == "Backed Up", me
    seller = shop.login(seller_user["email"])["access_token"]
    assert call("GET", "/auth/me", token=seller).json["role"] == "seller"
    shop.assert_problem(call("POST", "/auth/login", {"email": late_user["email"],
                                                     "password": shop.PASSWORD}),
                        401, "invalid_credentials")
    # Products as they were: the later one is gone, the price change undone.
    shop.assert_problem(call("GET", "/products/%d" % late_product["id"], token=seller),
                        404, "not_found")
    r = call("GET", "/products/%d" % p["id"], token=seller)
    assert r.status == 200 and r.json["price_cents"] == 700, r
    # Orders: every one placed before the backup, as it was; the later one gone.
    orders = _orders(buyer)
    for oid, o in before.items():
        assert oid in orders, (oid, sorted(orders))
        assert orders[oid]["status"] == o["status"] and orders[oid]["items"] == o["items"], \
            (orders[oid], o)
    assert late_order not in orders
    shop.assert_problem(call("GET", "/orders/%d" % late_order, token=buyer), 404, "not_found")
    # One moment across the databases: once orders cut in half by the backup
    # are settled, each product's stock is its start minus its confirmed orders.
    shop.wait_settled(timeout=90)
    orders = _orders(buyer)
    for prod, start in ((p, 1000), (other, 20)):
        r = call("GET", "/products/%d" % prod["id"], token=seller)
        assert r.status == 200, r
        assert r.json["stock"] == start - _ordered(orders, prod["id"]), (r.json, orders)

    # The restored cluster takes orders again, and its nodes agree.
    stock = call("GET", "/products/%d" % p["id"], token=seller).json["stock"]
    r = call("POST", "/orders", {"items": [{"product_id": p["id"], "quantity": 3}]}, token=buyer)
    assert r.status == 201 and r.json["id"] not in orders, r
    assert call("GET", "/products/%d" % p["id"], token=seller).json["stock"] == stock - 3
    ha._wait_whole()
    assert ha._nodes_identical() is None, "nodes differ after the restore"
