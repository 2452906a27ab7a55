"""test_lost_commit.py: a write whose COMMIT reached the database but whose
answer was lost with the connection (a node killed, or HAProxy cutting the
session when the writer comes back) is retried by the service (db_tx).  The
retry must not do the write twice, nor refuse the client for what its own
first attempt did.  `X-Fault-Inject: commit-lost`, sent to a host directly
(the edge drops it; the test stack honours it), makes the first COMMIT of a
request succeed and then look lost."""
import shop
from shop import call

FAULT = {"X-Fault-Inject": "commit-lost"}


def _host():
    return shop.host_url(1)


def test_a_stock_change_whose_commit_was_lost_is_applied_once_and_said_unknown():
    seller = shop.seller_token()
    p = shop.new_product(seller, stock=20)
    r = call("POST", "/products/%d/stock" % p["id"], {"delta": -3}, token=seller,
             base=_host(), headers=FAULT)
    # It may have been made: the service cannot tell, so it says so (503)
    # instead of applying it again.
    shop.assert_problem(r, 503, "unavailable")
    assert r.header("retry-after"), r.headers
    assert "may have been made" in r.json["detail"], r.json
    now = call("GET", "/products/%d" % p["id"], token=seller)
    assert now.status == 200, now
    assert (now.json["stock"], now.json["version"]) == (17, p["version"] + 1), now.json


def test_a_create_whose_commit_was_lost_is_201_not_sku_taken():
    seller = shop.seller_token()
    sku = shop.unique("lost")
    body = {"sku": sku, "name": "Created once", "price_cents": 900, "currency": "EUR",
            "stock": 4, "status": "active"}
    r = call("POST", "/products", body, token=seller, base=_host(), headers=FAULT)
    assert r.status == 201, r
    assert r.json["sku"] == sku and r.json["version"] == 1, r.json
    assert r.header("location") == "/products/%d" % r.json["id"], r.headers
    # The SKU is still taken for anyone else.
    shop.assert_problem(call("POST", "/products", dict(body, name="Another"), token=seller),
                        409, "sku_taken")


def test_an_edit_whose_commit_was_lost_is_answered_as_saved():
    seller = shop.seller_token()
    p = shop.new_product(seller)
    r = call("PATCH", "/products/%d" % p["id"], {"name": "Saved once"}, token=seller,
             base=_host(), headers=dict(FAULT, **{"If-Match": '"%d"' % p["version"],
                                                  "Content-Type": "application/merge-patch+json"}))
    assert r.status == 200, r
    assert r.json["name"] == "Saved once" and r.json["version"] == p["version"] + 1, r.json
    assert r.header("etag") == '"%d"' % (p["version"] + 1), r.headers
    now = call("GET", "/products/%d" % p["id"], token=seller).json
    assert now["name"] == "Saved once" and now["version"] == p["version"] + 1, now
    # Archiving the same way: 204, archived once.
    r = call("DELETE", "/products/%d" % p["id"], token=seller, base=_host(),
             headers=dict(FAULT, **{"If-Match": '"%d"' % now["version"]}))
    assert r.status == 204, r
    now = call("GET", "/products/%d" % p["id"], token=seller).json
    assert now["status"] == "archived" and now["version"] == p["version"] + 2, now


def test_a_registration_whose_commit_was_lost_is_201_not_email_taken():
    email = shop.unique_email("lost")
    r = call("POST", "/auth/register", {"email": email, "password": shop.PASSWORD},
             base=_host(), headers=FAULT)
    assert r.status == 201, r
    assert r.json["email"] == email and r.header("location") == "/auth/users/%d" % r.json["id"], r
    assert shop.login(email)["user"]["id"] == r.json["id"]
    # A second registration of the address is still refused.
    shop.assert_problem(call("POST", "/auth/register", {"email": email, "password": shop.PASSWORD}),
                        409, "email_taken")


def test_a_refresh_whose_commit_was_lost_is_no_reuse():
    u = shop.register()
    tokens = shop.login(u["email"])
    r = call("POST", "/auth/refresh", {"refresh_token": tokens["refresh_token"]},
             base=_host(), headers=FAULT)
    assert r.status == 200, r
    fresh = r.json
    assert fresh["refresh_token"] != tokens["refresh_token"], fresh
    # Not taken for a stolen token's replay: the family lives on and the
    # user's access tokens still work.
    assert call("GET", "/auth/me", token=tokens["access_token"]).status == 200
    again = call("POST", "/auth/refresh", {"refresh_token": fresh["refresh_token"]})
    assert again.status == 200, again
    # The presented token is spent all the same: a real replay is refused.
    shop.assert_problem(call("POST", "/auth/refresh", {"refresh_token": tokens["refresh_token"]}),
                        401, "unauthorized")
