"""test_retention.py: what the sweeps delete, with short windows.  The stack
runs with the default windows (24 h for Idempotency-Key records, 7 days for
failed orders, 30 days for spent refresh tokens); each test makes its rows,
checks that the running sweeps leave them alone, then runs one sweep pass
(`order.fcgi --sweep-once`, `auth.fcgi --sweep-once`, with the stack's
config and a 1-second window through SHOP_<KEY>) and observes the result as
a client does, and in the database."""
import base64
import hashlib
import os
import subprocess
import time

import shop


def _bin(name):
    return os.path.join(os.environ.get("SHOP_BIN_DIR") or os.path.join(shop.REPO, "build"), name)


def _sweep_once(svc, **windows):
    """One pass of svc's sweep with the given SHOP_<KEY> overrides.  A pass
    that found another host's sweep holding the lock does nothing, so the
    caller polls for the outcome."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "SHOP_CONFIG": os.path.join(shop.STACK["SHOP_STATE_DIR"], "etc", svc + ".conf")}
    env.update({"SHOP_" + k: str(v) for k, v in windows.items()})
    r = subprocess.run([_bin(svc + ".fcgi"), "--sweep-once"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def _purged_by(svc, windows, what, gone, timeout=20):
    def attempt():
        _sweep_once(svc, **windows)
        return gone()
    shop.wait_for(what, attempt, timeout=timeout, every=0.5)


def _count(query):
    return int(shop.sql(query)[0][0])


# ---------------------------------------------------------------- orders

def test_retention_idempotency_key_expires_then_a_retry_is_a_new_order():
    seller = shop.new_user("seller")[1]
    user, tok = shop.new_user()
    p = shop.new_product(seller, stock=10)
    key = shop.unique("ret")
    items = [{"product_id": p["id"], "quantity": 2}]
    first = shop.call("POST", "/orders", {"items": items}, token=tok,
                      headers={"Idempotency-Key": key})
    assert first.status == 201, first
    rows = "SELECT COUNT(*) FROM shop_order.idempotency_keys WHERE user_id = %d" % user["id"]
    assert _count(rows) == 1
    # Past a 1 s window, but the stack's own sweeps keep it for 24 h: the
    # key still replays.
    time.sleep(1.5)
    again = shop.call("POST", "/orders", {"items": items}, token=tok,
                      headers={"Idempotency-Key": key})
    assert again.status == 201 and again.json["id"] == first.json["id"], again
    # A sweep with a 1 s window deletes the record (and nothing else of it).
    _purged_by("order", {"IDEMPOTENCY_RETENTION": 1}, "the key's record to be purged",
               lambda: _count(rows) == 0)
    # The retry is now a new request: a second order, stock taken again.
    retry = shop.call("POST", "/orders", {"items": items}, token=tok,
                      headers={"Idempotency-Key": key})
    assert retry.status == 201, retry
    assert retry.json["id"] != first.json["id"], retry
    r = shop.call("GET", "/products/%d" % p["id"], token=seller)
    assert r.json["stock"] == 6, r
    old = shop.call("GET", "/orders/%d" % first.json["id"], token=tok)
    assert old.status == 200 and old.json["status"] == "confirmed", old
    # The new record replays the new order.
    replay = shop.call("POST", "/orders", {"items": items}, token=tok,
                       headers={"Idempotency-Key": key})
    assert replay.status == 201 and replay.json["id"] == retry.json["id"], replay
    # Purged again, the key with other lines is a first request too: a new
    # order of those lines (not 409 "still running" against the reservation
    # of the old lines), and it replays.
    _purged_by("order", {"IDEMPOTENCY_RETENTION": 1}, "the key's record to be purged",
               lambda: _count(rows) == 0)
    other = [{"product_id": p["id"], "quantity": 1}]
    new = shop.call("POST", "/orders", {"items": other}, token=tok,
                    headers={"Idempotency-Key": key})
    assert new.status == 201, new
    assert new.json["id"] not in (first.json["id"], retry.json["id"]), new
    assert [(i["product_id"], i["quantity"]) for i in new.json["items"]] == [(p["id"], 1)], new
    r = shop.call("GET", "/products/%d" % p["id"], token=seller)
    assert r.json["stock"] == 5, r
    again = shop.call("POST", "/orders", {"items": other}, token=tok,
                      headers={"Idempotency-Key": key})
    assert again.status == 201 and again.json["id"] == new.json["id"], again
    shop.wait_settled()


def test_retention_failed_orders_are_purged():
    """A worker dies after product reserved the stock: the reservation
    outlives its TTL, the sweep fences it with a failed order and releases
    the stock; a sweep with a 1 s window then deletes the fence."""
    seller = shop.new_user("seller")[1]
    user, tok = shop.new_user()
    p = shop.new_product(seller, stock=5)
    with open(os.path.join(shop.STACK["SHOP_STATE_DIR"], "etc", "order.conf")) as f:
        assert "ALLOW_FAULT_INJECTION=1" in f.read().split(), "run with SHOP_FAULT_INJECTION=1"
    try:
        r = shop.call("POST", "/orders", {"items": [{"product_id": p["id"], "quantity": 1}]},
                      token=tok, base=shop.host_url(1),
                      headers={"X-Fault-Inject": "after-reserve"})
        assert r.status != 201, r
    except (ConnectionError, OSError):
        pass        # the worker died mid-request: no answer
    failed = ("SELECT COUNT(*) FROM shop_order.orders WHERE user_id = %d AND status = 'failed'"
              % user["id"])
    shop.wait_for("the sweep to fence the orphaned reservation",
                  lambda: _count(failed) >= 1, timeout=60, every=1)
    shop.wait_settled()
    assert shop.call("GET", "/products/%d" % p["id"], token=seller).json["stock"] == 5
    time.sleep(1.5)
    assert _count(failed) >= 1, "the stack's own sweeps keep failed orders for 7 days"
    _purged_by("order", {"FAILED_ORDER_RETENTION": 1}, "the failed order to be purged",
               lambda: _count(failed) == 0)
    # Nothing the client sees changed: no orders, stock back.
    lst = shop.call("GET", "/orders", token=tok)
    assert lst.status == 200 and lst.json["items"] == [], lst
    assert shop.call("GET", "/products/%d" % p["id"], token=seller).json["stock"] == 5
    shop.wait_settled()


# ---------------------------------------------------------------- refresh tokens

def _token_rows(tokens):
    hashes = []
    for t in tokens:
        raw = base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))
        hashes.append("UNHEX('%s')" % hashlib.sha256(raw).hexdigest())
    return ("SELECT COUNT(*) FROM shop_auth.refresh_tokens WHERE token_hash IN (%s)"
            % ", ".join(hashes))


def test_retention_spent_and_expired_refresh_tokens_are_purged():
    u = shop.register()
    t1 = shop.login(u["email"])["refresh_token"]
    r = shop.call("POST", "/auth/refresh", {"refresh_token": t1})
    assert r.status == 200, r
    t2 = r.json["refresh_token"]                      # t1 is now used
    t3 = shop.login(u["email"])["refresh_token"]       # another family, revoked below
    assert shop.call("POST", "/auth/logout", {"refresh_token": t3}).status in (200, 204)
    # A token that expired 10 s ago, never used (its client went away).
    shop.sql("INSERT INTO shop_auth.refresh_tokens (token_hash, family_id, user_id, status,"
             " expires_at) VALUES (RANDOM_BYTES(32), RANDOM_BYTES(16), %d, 'active',"
             " UTC_TIMESTAMP(3) - INTERVAL 10 SECOND)" % u["id"])
    mine = "SELECT COUNT(*) FROM shop_auth.refresh_tokens WHERE user_id = %d" % u["id"]
    assert _count(mine) == 4
    assert _count(_token_rows([t1, t3])) == 2
    time.sleep(1.5)
    assert _count(mine) == 4, "the stack's own sweeps keep spent tokens for 30 days"
    _purged_by("auth", {"REFRESH_RETENTION": 1}, "spent and expired tokens to be purged",
               lambda: _count(mine) == 1)
    # Only the live token is left, and it still works.
    assert _count(_token_rows([t2])) == 1
    r = shop.call("POST", "/auth/refresh", {"refresh_token": t2})
    assert r.status == 200, r
    # A purged token is unknown: refused like any other bad token.
    shop.assert_problem(shop.call("POST", "/auth/refresh", {"refresh_token": t1}), 401)
