#!/usr/bin/env python3
"""run.py: the integration test runner.  Starts one real stack (3 Galera
nodes, 3 lighttpd hosts, HAProxy) on free ports in a temporary state
directory, runs every test_* function of tests/integration/test_*.py (or
ha_*.py with --ha, soak_*.py with --soak), always stops the stack, and
prints "N passed, N failed".

  run.py [--ha | --soak] [--keep] [--prism] [-k SUBSTRING]...

--prism puts Stoplight Prism's validating proxy (scripts/openapi proxy) in
front of the edge: shop.call sends the tests' requests through it, and a
response that violates api/openapi.yaml fails the test that received it.

Ports: a stack binds SHOP_PORT_BASE .. +PORT_SPAN, some of them only later
(a Galera joiner's IST/SST listener).  Checking ports free and binding them
are two steps, so nothing here can promise a port stays free; what it does:
  - blocks lie below the kernel's ephemeral range (read from
    /proc/sys/net/ipv4/ip_local_port_range), so no outgoing connection of
    this machine takes one as its local end;
  - blocks are aligned and each run holds an flock on its block for as long
    as its stack lives, so two run.py runs on one machine never pick the same
    block;
  - a stack that fails to start because a port was taken anyway (another
    program, a socket in TIME_WAIT) is stopped and started again on another
    block."""
import argparse
import fcntl
import glob
import http.client
import importlib
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import shop  # noqa: E402

PORT_SPAN = 64   # scripts/stack uses SHOP_PORT_BASE .. +63, the edge SHOP_PORT_BASE + 64
BLOCK = 128      # block alignment (> PORT_SPAN): one lock file per block
START_TRIES = 3
LOCK_DIR = os.path.join(tempfile.gettempdir(), "shop-it-ports")
BIND_FAILED = re.compile(r"address already in use|cannot bind|bind on tcp/ip port"
                         r"|failed to open ist listener|can't bind", re.I)


def port_free(p):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()


def ephemeral_low():
    """The lowest port the kernel hands out as an outgoing connection's local
    end (Linux's default range is 32768-60999)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_block():
    """(base, lock file) of a free block below the ephemeral range, locked
    against other run.py runs until the lock file is closed."""
    os.makedirs(LOCK_DIR, exist_ok=True)
    top = ephemeral_low() - PORT_SPAN - 1
    blocks = list(range(10240, top, BLOCK))
    random.shuffle(blocks)
    for base in blocks:
        lock = open(os.path.join(LOCK_DIR, "%d.lock" % base), "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        if all(port_free(p) for p in range(base, base + PORT_SPAN + 1)):
            return base, lock
        lock.close()
    raise RuntimeError("no free port block below %d" % ephemeral_low())


def bind_failure(state):
    """The first log line of a half-started stack saying a port was taken."""
    for path in glob.glob(os.path.join(state, "**", "*.log"), recursive=True):
        try:
            with open(path, errors="replace") as f:
                for line in f:
                    if BIND_FAILED.search(line):
                        return "%s: %s" % (os.path.relpath(path, state), line.strip()[:200])
        except OSError:
            pass
    return None


def stack_env(base, state):
    return dict(os.environ,
                SHOP_STATE_DIR=state,
                SHOP_PORT_BASE=str(base),
                SHOP_PORT=str(base + PORT_SPAN),
                SHOP_RATE_LIMIT="100000",
                SHOP_LOGIN_RATE_LIMIT="100000",
                SHOP_FAULT_INJECTION="1",      # X-Fault-Inject honoured (order crash tests)
                SHOP_RESERVATION_TTL="6",      # orphaned reservations come back within a test
                SHOP_SWEEP_INTERVAL="1",
                SHOP_ADMIN_EMAIL="admin@shop.test",
                SHOP_ADMIN_PASSWORD="it-admin-password")


def start_stack(stack):
    """Starts a stack; a start that failed because a port was taken is
    stopped and retried on another block.  Returns (env, state, lock) or
    (env, state, None) after the last failed try."""
    for attempt in range(1, START_TRIES + 1):
        base, lock = free_block()
        state = tempfile.mkdtemp(prefix="shop-it-")
        env = stack_env(base, state)
        t0 = time.time()
        r = subprocess.run([stack, "up"], env=env)
        if r.returncode == 0:
            print("stack up in %.0fs (ports %d-%d)" % (time.time() - t0, base, base + PORT_SPAN),
                  flush=True)
            return env, state, lock
        taken = bind_failure(state)
        if not taken or attempt == START_TRIES:
            return env, state, None
        print("stack start lost a port (%s); retrying on another block" % taken, flush=True)
        subprocess.run([stack, "down"], env=env)
        shutil.rmtree(state, ignore_errors=True)
        lock.close()


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
    ap.add_argument("--keep", action="store_true", help="leave the stack running")
    ap.add_argument("--prism", action="store_true",
                    help="validate every response against api/openapi.yaml (Prism's proxy)")
    ap.add_argument("-k", action="append", default=[],
                    help="only tests whose name contains this (repeatable: any of them)")
    args = ap.parse_args()

    if args.prism:
        # npm ci of the pinned tools when needed, before any stack exists.
        subprocess.run([os.path.join(REPO, "scripts", "openapi"), "deps"], check=True)
    stack = os.path.join(REPO, "scripts", "stack")
    passed, failed = 0, 0
    prism = None
    env, state, lock = start_stack(stack)
    os.environ.update({k: v for k, v in env.items() if k.startswith("SHOP_")})
    base = int(env["SHOP_PORT_BASE"])
    prism_port = base + PORT_SPAN + 8  # in this run's locked block, unused by the stack
    try:
        if lock is None:
            print("stack failed to start; logs in", state)
            subprocess.run(["sh", "-c", "tail -n 30 %s/*/*.log %s/*.log 2>/dev/null" % (state, state)])
            failed = 1                 # keeps the logs (finally, below)
            return 1
        shop.load_stack(state)
        shop.STACK.update(SHOP_ADMIN_EMAIL=env["SHOP_ADMIN_EMAIL"],
                          SHOP_ADMIN_PASSWORD=env["SHOP_ADMIN_PASSWORD"])
        if args.prism:
            prism = start_prism(state, prism_port, "http://127.0.0.1:%d" % (base + PORT_SPAN))
            try:
                wait_prism(prism, state, prism_port)
            except RuntimeError as e:
                print(e)
                failed = 1
                return 1
            shop.STACK["SHOP_PRISM_URL"] = "http://127.0.0.1:%d" % prism_port
            print("prism proxy validating responses on", shop.STACK["SHOP_PRISM_URL"], flush=True)
        prefix = "ha_" if args.ha else "soak_" if args.soak else "test_"
        mods = sorted(f[:-3] for f in os.listdir(HERE)
                      if f.startswith(prefix) and f.endswith(".py"))
        for m in mods:
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
    finally:
        if args.keep and prism is not None:
            print("prism proxy left running, pid %d" % prism.pid)
        elif prism is not None:
            stop_prism(prism)
        if not args.keep:
            subprocess.run([stack, "down"], env=env)
            if failed == 0:
                shutil.rmtree(state, ignore_errors=True)
            else:
                print("state and logs kept in", state)
        else:
            print("stack left running; state in", state)
        if lock is not None:
            lock.close()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
