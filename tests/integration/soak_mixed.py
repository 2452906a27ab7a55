"""soak_mixed.py: `make soak` (run.py --soak), not part of `make check`.
SHOP_SOAK_SECONDS (default 600) of the failure tests' mixed client load
(load.py: product reads and lists, logins, keyed orders) through the edge,
with the black-box edge fuzzer (edgefuzz.py, SHOP_SOAK_FUZZ requests,
default 20,000) running beside it.  Nothing is broken on purpose, so:
  - no attempt of the load gets a 5xx or no answer, first tries included;
  - the fuzzer's answers keep its rules (no 5xx, every error problem+json);
  - no FastCGI worker dies, and no worker's memory grows;
  - afterwards every reservation settles and the stock adds up
    (shop.wait_settled)."""
import os
import threading
import time

import edgefuzz
import load
import shop
import test_edgefuzz

SECONDS = int(os.environ.get("SHOP_SOAK_SECONDS", "600"))
FUZZ = int(os.environ.get("SHOP_SOAK_FUZZ", "20000"))
RSS_SLACK_KIB = 2048


def test_soak_mixed_load_and_fuzzer():
    state = shop.STACK["SHOP_STATE_DIR"]
    _, seller = shop.new_user("seller")
    users = load.customers(4)
    hot = [shop.new_product(seller, stock=10 ** 7)["id"] for _ in range(3)]
    cold = [shop.new_product(seller, stock=10)["id"] for _ in range(5)]
    host, port = test_edgefuzz.edge()
    toks = test_edgefuzz.tokens()
    edgefuzz.Fuzz(host, port, "soak-warm", toks).run(300)
    before = edgefuzz.workers(state)

    ld = load.Load(users, hot, cold, threads=6, pause=1.0, timeout=35.0, key_prefix="soak")
    fz = edgefuzz.Fuzz(host, port, "soak-%d" % int(time.time()), toks)
    fuzz_thread = threading.Thread(target=fz.run, args=(FUZZ, 3))
    ld.start()
    fuzz_thread.start()
    try:
        time.sleep(SECONDS)
    finally:
        ld.stop()
        fuzz_thread.join()
    after = edgefuzz.workers(state)
    s = ld.summary()
    print("\n      soak: %d load requests in %.0f s, outcomes %s" % (
        s["requests"], ld.t1 - ld.t0, sorted(s["by_status"].items())))
    print("      fuzzer: %d requests, by status %s; GETs resent after a cut answer: %d %r" % (
        len(fz.results), sorted(fz.by_status().items()), len(fz.resent), fz.resent[:5]))

    server_errors = [(r.kind, r.attempts, r.rid, r.error) for r in s["all"]
                     if any(st == 0 or st >= 500 for st, _, _ in r.attempts)]
    assert not server_errors, ("%d load requests saw a 5xx or no answer" % len(server_errors),
                               server_errors[:10])
    assert len(fz.results) == FUZZ, (len(fz.results), FUZZ)
    bad = fz.bad()
    assert not bad, test_edgefuzz.report(fz, bad)
    gone = sorted("%d %s" % (p, before[p][0]) for p in before if p not in after)
    assert not gone, "workers died during the soak: %s" % gone
    grown = ["%s %d: %d -> %d KiB" % (before[p][0], p, before[p][1], after[p][1])
             for p in before if after[p][1] - before[p][1] > RSS_SLACK_KIB]
    assert not grown, "worker memory grew: %s" % grown
    shop.wait_settled()
