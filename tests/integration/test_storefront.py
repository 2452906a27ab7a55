"""test_storefront.py: the storefront (web/) as the edge serves it, and as a
person uses it in a real browser.

- "/" and /app/... come from the hosts' lighttpd through the edge: HTML and
  JavaScript modules with the right types, a strict Content-Security-Policy,
  nosniff and Referrer-Policy, cached by the edge; anything else under the
  prefix is a 404 problem, other methods a 405 problem, and no other lighttpd
  path (status pages, test files) is reachable through it;
- tests/browser/journeys.mjs (scripts/browser journeys: playwright-core
  driving Debian's chromium headless) walks the customer, seller and admin
  journeys against this stack, checks every page with axe-core and writes
  screenshots at 1280 and 375 px to build/screenshots/.  The products and
  the seller it needs are made here, through the API; afterwards the API
  must show what the journeys did."""
import json
import os
import subprocess
import tempfile
import time
import uuid

import shop
from shop import assert_problem, call

CSP_NEEDS = ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'")


def _edge():
    # The browser talks to the edge itself: Prism's proxy knows the API only,
    # not the storefront's pages.  Setup and checks below use shop.call,
    # which goes through Prism under run.py --prism.
    return shop.STACK["SHOP_URL"]


def web(method, path, **kw):
    """A request for the storefront, to the edge itself (never via Prism)."""
    return call(method, path, base=_edge(), **kw)


def test_storefront_pages_are_served_with_security_headers():
    r = web("GET", "/")
    assert r.status == 200, r
    assert r.header("content-type").startswith("text/html"), r.headers
    assert b'<script type="module" src="/app/main.js">' in r.body, r.body[:400]
    assert b"<script>" not in r.body and b"onclick" not in r.body, "inline script in index.html"
    csp = r.header("content-security-policy") or ""
    for need in CSP_NEEDS:
        assert need in csp, (need, csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
    assert r.header("x-content-type-options") == "nosniff", r.headers
    assert r.header("referrer-policy"), r.headers
    assert r.header("x-request-id"), r.headers
    js = web("GET", "/app/main.js")
    assert js.status == 200 and js.header("content-type").startswith("text/javascript"), js
    assert js.header("content-security-policy") == csp and js.header("x-content-type-options") == "nosniff"
    css = web("GET", "/app/style.css")
    assert css.status == 200 and css.header("content-type").startswith("text/css"), css
    head = web("HEAD", "/")
    assert head.status == 200 and head.body == b"", head


def test_storefront_files_are_cached_by_the_edge_and_revalidated():
    first = web("GET", "/app/api.js")
    second = web("GET", "/app/api.js")
    assert second.status == 200 and second.body == first.body
    # HAProxy adds Age to what its cache serves.
    assert second.header("age") is not None, second.headers
    assert second.header("cache-control") == "no-cache", second.headers
    etag = second.header("etag")
    assert etag, second.headers
    again = web("GET", "/app/api.js", headers={"If-None-Match": etag})
    assert again.status == 304, again
    # Every host serves the same file under the same ETag.
    tags = {web("GET", "/app/ui.js", headers={"Cache-Control": "no-cache"}).header("etag") for _ in range(6)}
    assert len(tags) == 1, tags


def test_storefront_prefix_reaches_nothing_else():
    for path in ("/app/nope.js", "/app/main.js.bak", "/app/", "/app", "/index.html",
                 "/server-status", "/static/hello.txt"):
        r = web("GET", path)
        assert_problem(r, 404, "not_found")
    # Not canonical: refused before any routing.
    for path in ("/app/../server-status", "/app/%2e%2e/server-status", "/app//main.js",
                 "/app/x/../../server-statistics"):
        r = web("GET", path)
        assert_problem(r, 400, "bad_request")
    for method in ("POST", "PUT", "DELETE"):
        r = web(method, "/", body={} if method != "DELETE" else None)
        assert_problem(r, 405, "method_not_allowed")
        assert r.header("allow") == "GET, HEAD", r.headers
        assert r.header("content-security-policy"), r.headers


def _call(method, path, body=None, token=None, want=200):
    """shop.call for the setup, retrying a 503 (nothing was changed, the
    contract says; a loaded machine's database can be briefly unavailable)."""
    for _ in range(20):
        r = call(method, path, body, token=token)
        if r.status != 503:
            break
        time.sleep(1)
    assert r.status == want, (method, path, r)
    return r.json


def _setup():
    """The seller, the admin and the products the journeys use: made through
    the API, as a seller would.  Returns the SETUP dict."""
    tag = "t" + uuid.uuid4().hex[:10]
    bulk = "b" + uuid.uuid4().hex[:10]
    password = "seller pass 123"
    email = "seller-%s@example.test" % tag
    u = _call("POST", "/auth/register", {"email": email, "password": password, "name": "Sam Seller"}, want=201)
    admin = _call("POST", "/auth/login", {"email": shop.STACK["SHOP_ADMIN_EMAIL"],
                                          "password": shop.STACK["SHOP_ADMIN_PASSWORD"]})["access_token"]
    _call("PATCH", "/auth/users/%d" % u["id"], {"role": "seller"}, token=admin)
    token = _call("POST", "/auth/login", {"email": email, "password": password})["access_token"]

    def make(name, price, stock):
        p = _call("POST", "/products", {"sku": shop.unique("sku"), "name": name, "price_cents": price,
                                        "currency": "EUR", "stock": stock, "status": "active",
                                        "description": "%s, made by the storefront test." % name},
                  token=token, want=201)
        return {k: p[k] for k in ("id", "name", "price_cents", "currency", "stock")}

    products = {
        "alpha": make("Alpha %s mug" % tag, 1250, 5),
        "beta": make("Beta %s plate" % tag, 899, 3),
        "gamma": make("Gamma %s bowl" % tag, 1500, 9),
        "scarce": make("Scarce %s vase" % tag, 4200, 1),
    }
    bulk_count = 13                      # one page of 12, then "more"
    for i in range(bulk_count):
        make("Bulk %s item %d" % (bulk, i), 100 + i, 2)
    return {"tag": tag, "bulk_tag": bulk, "bulk_count": bulk_count,
            "seller": {"email": email, "password": password, "id": u["id"]},
            "admin": {"email": shop.STACK["SHOP_ADMIN_EMAIL"], "password": shop.STACK["SHOP_ADMIN_PASSWORD"]},
            "products": products}


def test_storefront_journeys_in_a_browser():
    setup = _setup()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(setup, f)
    try:
        p = subprocess.run([os.path.join(shop.REPO, "scripts", "browser"), "journeys", _edge(), f.name],
                           capture_output=True, text=True, timeout=600)
    finally:
        os.unlink(f.name)
    print(p.stdout, end="")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    assert p.returncode == 0 and lines, "journeys failed (exit %d):\n%s\n%s" % (
        p.returncode, p.stdout[-6000:], p.stderr[-3000:])
    out = json.loads(lines[-1])

    # What the API says the journeys did.
    admin = _call("POST", "/auth/login", {"email": setup["admin"]["email"],
                                          "password": setup["admin"]["password"]})["access_token"]
    dbl = out["double_click"]
    t = _call("POST", "/auth/login", {"email": dbl["email"], "password": dbl["password"]})["access_token"]
    orders = _call("GET", "/orders", token=t)["items"]
    assert [o["id"] for o in orders] == [dbl["order"]], orders
    assert _call("GET", "/orders/%d" % out["customer_order"], token=admin)["status"] == "cancelled"
    for key in ("alpha", "beta"):
        p_ = setup["products"][key]
        stock = _call("GET", "/products/%d" % p_["id"], token=admin)["stock"]
        # alpha: the cancelled order gave its stock back; one more was ordered
        # by the out-of-stock journey's corrected cart.
        want = p_["stock"] - (1 if key == "alpha" else 0)
        assert stock == want, (key, stock, want)
    p_ = _call("GET", "/products/%d" % out["seller_product"], token=admin)
    assert p_["name"] == out["seller_product_name"] and p_["status"] == "archived", p_
    assert _call("GET", "/auth/users/%d" % out["promoted"], token=admin)["role"] == "seller"

    shots = os.path.join(shop.REPO, "build", "screenshots")
    for page in out["pages"]:
        for width in (1280, 375):
            f = os.path.join(shots, "%s-%d.png" % (page, width))
            assert os.path.getsize(f) > 1000, f
    assert len(out["pages"]) >= 15, out["pages"]
