"""test_ratelimit.py: the edge's per-address rate limit as a client meets it.
The edge is restarted with a small limit; requests come from several
loopback addresses (127.0.0.2, .3, ...: the edge listens on 127.0.0.1, and
the kernel delivers from any 127/8 source), each a client of its own:
  - one address over the limit gets 429 + Retry-After (never more than the
    limit served, also for a burst in flight), another is untouched;
  - writes count like reads, and a refused write does nothing;
  - a client that waits Retry-After seconds is served again, also after a
    burst well over the limit."""
import time

import shop
from shop import assert_problem, call
from test_ops import _restart_edge

LIMIT = 30          # requests per 10 s per address


def _burst(source, n, send):
    """Sends n requests from source; returns their statuses."""
    return [send(source).status for _ in range(n)]


def _read(source):
    return call("GET", "/products?limit=1", source=source)


def _assert_429(r):
    assert_problem(r, 429, "rate_limited")
    wait = int(r.header("retry-after"))
    assert wait > 0, r.headers
    return wait


def test_rate_limit_is_per_address_counts_writes_and_lifts_after_retry_after():
    _, seller = shop.new_user("seller")           # before: logins have their own limit
    a, b, c = "127.0.0.2", "127.0.0.3", "127.0.0.4"
    try:
        _restart_edge(rate=LIMIT, login_rate=100000)
        # A fires twice its budget at once, as a client with many requests
        # in flight does: never more than LIMIT are served, the rest
        # refused.  HAProxy counts a request when it arrives and judges it a
        # moment later, on another thread maybe, so a request within the
        # budget can see a count that already holds later ones and be
        # refused: a burst in flight can get one or two fewer (seen: 29 of
        # 30 in 2 bursts of 100 on this machine).  One more is never served.
        rs = shop.parallel(2 * LIMIT, lambda i: _read(a))
        limited_at = time.monotonic()          # A's last answer
        for r in rs:
            assert not isinstance(r, Exception), r
        statuses = sorted(r.status for r in rs)
        served = statuses.count(200)
        assert statuses == [200] * served + [429] * (2 * LIMIT - served), rs
        assert LIMIT - 2 <= served <= LIMIT, (served, rs)
        retry_after = max(_assert_429(r) for r in rs if r.status == 429)
        # ...which is A's alone: B is served, and A is still refused.
        assert _read(b).status == 200
        assert _assert_429(_read(a)) > 0

        # Writes count too: C spends half its budget reading, the rest
        # creating products; the create over the limit is refused and
        # creates nothing.
        assert 429 not in _burst(c, LIMIT // 2, _read)
        skus = [shop.unique("rl") for _ in range(LIMIT - LIMIT // 2 + 1)]
        created = []
        for sku in skus:
            r = call("POST", "/products", {"sku": sku, "name": "Limited", "price_cents": 1,
                                           "currency": "EUR"}, token=seller, source=c)
            created.append(r)
        assert [r.status for r in created[:-1]] == [201] * (len(skus) - 1), created
        _assert_429(created[-1])
        # B, unaffected, checks that the refused create left its SKU free.
        r = call("POST", "/products", {"sku": skus[-1], "name": "Free", "price_cents": 1,
                                       "currency": "EUR"}, token=seller, source=b)
        assert r.status == 201, r
        # Only POSTs from a fresh address: the same limit.
        d = "127.0.0.5"
        posts = _burst(d, LIMIT + 1, lambda src: call(
            "POST", "/auth/logout", {"refresh_token": "x" * 43}, source=src))
        assert posts[:LIMIT] == [204] * LIMIT and posts[LIMIT] == 429, posts

        # A obeys Retry-After, counted from its last answer, and is served
        # (whatever the edge counts, a client that waited as told is not
        # refused again).
        time.sleep(max(0.0, limited_at + retry_after - time.monotonic()) + 0.2)
        r = _read(a)
        assert r.status == 200, ("still limited %d s after Retry-After %d" % (
            time.monotonic() - limited_at, retry_after), r)
    finally:
        _restart_edge(rate=100000, login_rate=100000)
