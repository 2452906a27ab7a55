"""test_edgefuzz.py: the black-box edge fuzzer (edgefuzz.py), a short run:
random methods, paths, headers and bodies through the public edge, signed
in and not.  Nothing it sends may get a 5xx, an error that is not a
complete problem+json, or no answer; no FastCGI worker may die (a worker
that crashed is respawned by its pool under a new pid) and the workers'
memory stays flat.  `make soak` runs the long version (20,000 requests)."""
import os
import random
import urllib.parse

import edgefuzz
import shop

REQUESTS = int(os.environ.get("SHOP_FUZZ_REQUESTS", "2500"))
# Growth a worker may show between the warm-up and the end of the run: a
# leak of even a few hundred bytes per request would exceed it.
RSS_SLACK_KIB = 1024


def edge():
    u = urllib.parse.urlsplit(shop.STACK["SHOP_URL"])
    return u.hostname, u.port


def tokens():
    _, customer = shop.new_user("customer")
    _, seller = shop.new_user("seller")
    shop.new_product(seller, stock=5)
    return [customer, seller, shop.admin_token()]


def report(fz, bad):
    lines = ["%d requests, by status %s; resent GETs: %r" % (
        len(fz.results), sorted(fz.by_status().items()), fz.resent[:5])]
    lines += ["  %r" % (b,) for b in bad[:20]]
    return "\n".join(lines)


def test_fuzzed_requests_get_no_5xx_and_every_error_is_a_problem():
    state = shop.STACK["SHOP_STATE_DIR"]
    host, port = edge()
    seed = os.environ.get("SHOP_FUZZ_SEED") or str(random.randrange(1 << 30))
    toks = tokens()
    # Warm-up: every worker has served, grown its caches and connections.
    edgefuzz.Fuzz(host, port, seed + "-warm", toks).run(max(REQUESTS // 5, 300))
    before = edgefuzz.workers(state)
    assert before, "no FastCGI workers found"
    fz = edgefuzz.Fuzz(host, port, seed, toks).run(REQUESTS)
    after = edgefuzz.workers(state)
    bad = fz.bad()
    assert not bad, "seed %s:\n%s" % (seed, report(fz, bad))
    # Answers of every kind came back (the fuzzer reached the services).
    statuses = fz.by_status()
    assert any(200 <= s < 300 for s in statuses), statuses
    assert any(400 <= s < 500 for s in statuses), statuses
    gone = sorted("%d %s" % (p, before[p][0]) for p in before if p not in after)
    assert not gone, "workers died during the run (seed %s): %s" % (seed, gone)
    grown = ["%s %d: %d -> %d KiB" % (before[p][0], p, before[p][1], after[p][1])
             for p in before if after[p][1] - before[p][1] > RSS_SLACK_KIB]
    assert not grown, "worker memory grew (seed %s): %s" % (seed, grown)
