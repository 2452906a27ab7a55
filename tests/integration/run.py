#!/usr/bin/env python3
"""run.py: the integration test runner.  Starts one real stack (3 Galera
nodes, 3 lighttpd hosts, HAProxy) on free ports in a temporary state
directory, runs every test_* function of tests/integration/test_*.py (or
ha_*.py with --ha, soak_*.py with --soak), always stops the stack, and
prints "N passed, N failed".  After a failure test (ha_*) fails, the stack is
made whole again before the next one.

  run.py [--ha | --soak] [--keep] [--prism] [-k SUBSTRING]...

--prism puts Stoplight Prism's validating proxy (scripts/openapi proxy) in
front of the edge: shop.call sends the tests' requests through it, and a
response that violates api/openapi.yaml fails the test that received it.

Ports and stack start/stop: scripts/shoplib.py (shared with bench/run.py):
a locked block of free ports per run, a start that lost a port to another
program retried on another block."""
import argparse
import http.client
import importlib
import os
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import shop  # noqa: E402  (puts scripts/ on sys.path)
import shoplib  # noqa: E402

START_TRIES = 3
PRISM_SPARE = 7                 # Prism's port: spare port 7 of the run's block

# The test stack: rate limits out of the way, short timers, faults injectable.
SETTINGS = dict(SHOP_RATE_LIMIT="100000",
                SHOP_LOGIN_RATE_LIMIT="100000",
                SHOP_FAULT_INJECTION="1",      # X-Fault-Inject honoured (order crash tests)
                SHOP_RESERVATION_TTL="6",      # orphaned reservations come back within a test
                SHOP_SWEEP_INTERVAL="1",
                SHOP_CONSUME_RETRY_MS="100",   # a poison event reaches its .dead in seconds
                SHOP_ADMIN_EMAIL="admin@shop.test",
                SHOP_ADMIN_PASSWORD="it-admin-password")


def start_prism(state, port, upstream):
    """Starts scripts/openapi proxy on `port` in front of `upstream` (the
    edge); its output goes to state/prism.log.  Started before the stack so
    that its start-up (seconds of CPU) overlaps the stack's."""
    log = open(os.path.join(state, "prism.log"), "wb")
    return subprocess.Popen([os.path.join(REPO, "scripts", "openapi"), "proxy", str(port), upstream],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_prism(p, state, port, timeout=180):
    """Waits until the proxy forwards to the edge: an answer that carries the
    edge's X-Request-ID (whatever its status)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if p.poll() is not None:
            raise RuntimeError("prism exited with %d; see %s/prism.log" % (p.returncode, state))
        try:
            r = shop.call("GET", "/auth/health", base="http://127.0.0.1:%d" % port, timeout=10)
            if r.header("x-request-id"):
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.5)
    raise RuntimeError("prism did not forward on port %d in %d s; see %s/prism.log" % (port, timeout, state))


def stop_prism(p):
    if p is None or p.poll() is not None:
        return
    os.killpg(p.pid, 15)          # its own session: scripts/openapi, node
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ha", action="store_true", help="run the failure tests (ha_*.py)")
    ap.add_argument("--soak", action="store_true",
                    help="run the long soak (soak_*.py; `make soak`)")
    ap.add_argument("--and-ha", action="store_true",
                    help="after the tests, the failure tests on the same stack (Prism "
                         "off for them): `make check` pays for one stack start, not two")
    ap.add_argument("--keep", action="store_true", help="leave the stack running")
    ap.add_argument("--prism", action="store_true",
                    help="validate every response against api/openapi.yaml (Prism's proxy)")
    ap.add_argument("-k", action="append", default=[],
                    help="only tests whose name contains this (repeatable: any of them)")
    args = ap.parse_args()

    if args.prism:
        # npm ci of the pinned tools when needed, before any stack exists.
        subprocess.run([os.path.join(REPO, "scripts", "openapi"), "deps"], check=True)
    passed, failed = 0, 0
    prism = None
    env, state, lock, ok = shoplib.start_stack(SETTINGS, tries=START_TRIES,
                                               log=lambda m: print(m, flush=True))
    os.environ.update({k: v for k, v in env.items() if k.startswith("SHOP_")})
    prism_port = shoplib.spare_port(env, PRISM_SPARE)
    try:
        if not ok:
            print("stack failed to start; logs in", state)
            subprocess.run(["sh", "-c", "tail -n 30 %s/*/*.log %s/*.log 2>/dev/null" % (state, state)])
            failed = 1                 # keeps the logs (finally, below)
            return 1
        shop.load_stack(state)
        shop.STACK.update(SHOP_ADMIN_EMAIL=env["SHOP_ADMIN_EMAIL"],
                          SHOP_ADMIN_PASSWORD=env["SHOP_ADMIN_PASSWORD"])
        if args.prism:
            prism = start_prism(state, prism_port, shop.STACK["SHOP_URL"])
            try:
                wait_prism(prism, state, prism_port)
            except RuntimeError as e:
                print(e)
                failed = 1
                return 1
            shop.STACK["SHOP_PRISM_URL"] = "http://127.0.0.1:%d" % prism_port
            print("prism proxy validating responses on", shop.STACK["SHOP_PRISM_URL"], flush=True)
        prefix = "ha_" if args.ha else "soak_" if args.soak else "test_"
        mods = _modules(prefix)
        if args.and_ha and not args.ha and not args.soak:
            mods += [None] + _modules("ha_")       # None: the end of the tests
        for m in mods:
            if m is None:
                # The failure tests break the stack on purpose, through the
                # edge itself: Prism stays out of their way.
                if prism is not None:
                    stop_prism(prism)
                    prism = None
                shop.STACK.pop("SHOP_PRISM_URL", None)
                continue
            mod = importlib.import_module(m)
            tests = [(n, getattr(mod, n)) for n in sorted(vars(mod))
                     if n.startswith("test_") and callable(getattr(mod, n))]
            tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
            for name, fn in tests:
                full = "%s.%s" % (m, name)
                if args.k and not any(k in full for k in args.k):
                    continue
                t1 = time.time()
                try:
                    fn()
                    passed += 1
                    print("ok    %-60s %5.1fs" % (full, time.time() - t1), flush=True)
                except Exception:
                    failed += 1
                    print("FAIL  %s" % full, flush=True)
                    traceback.print_exc()
                    if m.startswith("ha_"):
                        heal()
    finally:
        if args.keep and prism is not None:
            print("prism proxy left running, pid %d" % prism.pid)
        elif prism is not None:
            stop_prism(prism)
        if not args.keep:
            shoplib.stop_stack(env, state, lock, keep_state=failed > 0)
            if failed:
                print("state and logs kept in", state)
        else:
            print("stack left running; state in", state)
            lock.close()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


def heal():
    """After a failure test failed: the stack made whole again (scripts/stack
    up starts whatever is down), so that one broken case does not fail every
    case after it."""
    import ha_failover
    up = shop.stack("up", check=False)
    print("heal: scripts/stack up exited %d%s" % (up.returncode, "" if up.returncode == 0
                                                  else "\n" + up.stdout + up.stderr), flush=True)
    try:
        ha_failover._wait_whole(180)
    except AssertionError as e:
        print("heal: %s" % e, flush=True)


def _modules(prefix):
    return sorted(f[:-3] for f in os.listdir(HERE) if f.startswith(prefix) and f.endswith(".py"))


if __name__ == "__main__":
    sys.exit(main())
