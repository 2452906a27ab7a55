"""scripts/shoplib.py: what the Python tools that run a local stack of their
own share: the integration test runner (tests/integration/run.py, shop.py)
and the benchmark (bench/run.py).  A locked block of free ports, starting and
stopping a stack (scripts/stack) in its own state directory, reading its
stack.env, one HTTP request, SQL as root over a Galera node's socket, and
the product list's cursor for a given position.
Python 3 stdlib only; import it with scripts/ on sys.path.

Ports: a stack binds SHOP_PORT_BASE .. +PORT_SPAN, some of them only later
(a Galera joiner's IST/SST listener).  Checking ports free and binding them
are two steps, so nothing here can promise a port stays free; what it does:
  - blocks lie below the kernel's ephemeral range (read from
    /proc/sys/net/ipv4/ip_local_port_range), so no outgoing connection of
    this machine takes one as its local end;
  - blocks are aligned and each run holds an flock on its block for as long
    as its stack lives, so two runs on one machine (tests, benchmark, other
    clones) never pick the same block;
  - a stack that fails to start because a port was taken anyway (another
    program, a socket in TIME_WAIT) is stopped and started again on another
    block."""
import base64
import fcntl
import glob
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STACK_SCRIPT = os.path.join(REPO, "scripts", "stack")
PORT_SPAN = 96   # scripts/stack uses SHOP_PORT_BASE .. +95 (RabbitMQ +65..+79, the
                 # SMTP sink and Alertmanager +80..+89), the edge SHOP_PORT_BASE + 64
EDGE_OFFSET = 64
BLOCK = 128      # block alignment (> PORT_SPAN): one lock file per block; the
                 # ports between the span's end and the next block are the run's own
LOCK_DIR = os.path.join(tempfile.gettempdir(), "shop-it-ports")
BIND_FAILED = re.compile(r"address already in use|cannot bind|bind on tcp/ip port"
                         r"|failed to open ist listener|can't bind|eaddrinuse", re.I)


# ------------------------------------------------------------------ ports

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
    against other runs until the lock file is closed."""
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


def spare_port(env, n):
    """Port n (0..BLOCK-PORT_SPAN-2) of the run's locked block that the
    stack does not use (above its edge): for a proxy or helper of the run."""
    assert 0 <= n < BLOCK - PORT_SPAN - 1, n
    return int(env["SHOP_PORT_BASE"]) + PORT_SPAN + 1 + n


def wait_port(port, secs=20):
    """Waits until something accepts connections on 127.0.0.1:port."""
    end = time.time() + secs
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nothing listens on port %d" % port)


# ------------------------------------------------------------------ stack

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


def stack_env(base, state, **settings):
    """The environment of scripts/stack for a stack in `state` on the block
    at `base` (the edge at base + EDGE_OFFSET), plus SHOP_* `settings`."""
    env = dict(os.environ, SHOP_STATE_DIR=state, SHOP_PORT_BASE=str(base),
               SHOP_PORT=str(base + EDGE_OFFSET))
    env.update(settings)
    return env


def start_stack(settings, prefix="shop-it-", tries=3, retry_any=False, quiet=False, log=print):
    """Starts a stack on a locked free block in a new temporary state dir.
    A start that failed because a port was taken (with retry_any: for any
    reason) is stopped and retried on another block, up to `tries` starts.
    Returns (env, state, lock, ok); after the last failed try ok is False
    and the half-started stack is still there for its logs (stop_stack it).
    quiet: scripts/stack's own output is not shown."""
    out = subprocess.DEVNULL if quiet else None
    for attempt in range(1, tries + 1):
        base, lock = free_block()
        state = tempfile.mkdtemp(prefix=prefix)
        env = stack_env(base, state, **settings)
        t0 = time.time()
        try:
            r = subprocess.run([STACK_SCRIPT, "up"], env=env, stdout=out)
        except BaseException:       # Ctrl-C, SIGTERM: nothing is left running
            stop_stack(env, state, lock, quiet=quiet)
            raise
        if r.returncode == 0:
            log("stack up in %.0fs (ports %d-%d, state %s)" % (time.time() - t0, base,
                                                                base + PORT_SPAN, state))
            return env, state, lock, True
        taken = bind_failure(state)
        if attempt == tries or not (taken or retry_any):
            return env, state, lock, False
        log("stack start failed (%s); retrying on another block"
            % (taken or "see %s" % state))
        stop_stack(env, state, lock, keep_state=False, quiet=quiet)


def stop_stack(env, state, lock, keep_state=False, quiet=False):
    """Stops the stack (scripts/stack down), removes its state dir unless
    keep_state, and releases its port block."""
    subprocess.run([STACK_SCRIPT, "down"], env=env,
                   stdout=subprocess.DEVNULL if quiet else None)
    if not keep_state:
        shutil.rmtree(state, ignore_errors=True)
    if lock is not None:
        lock.close()


def load_env(path):
    """KEY=VALUE lines of a stack.env (quotes removed; read, not sourced)."""
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v.strip().strip("'\"")
    return env


# ------------------------------------------------------------------ clients

def http_request(base, method, path, body=None, token=None, headers=None, raw=None,
                 timeout=30, source=None):
    """One HTTP request to `base` (http://host:port).  `body` is sent as JSON
    with Content-Type application/json, unless `raw` (bytes) is given
    instead; `token` as a Bearer Authorization; `source` is the local
    address to send from.  Returns (status, {lower-case name: value}, body
    bytes); connection errors raise (OSError, http.client.HTTPException)."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    hdrs = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    if raw is not None:
        data = raw
    if token:
        hdrs["Authorization"] = "Bearer " + token
    hdrs.update(headers or {})
    try:
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


class SQLError(subprocess.CalledProcessError):
    """A failed sql(): says the query (not the variables: they may be
    passwords) and the client's error."""
    def __init__(self, returncode, cmd, output, stderr, query):
        super().__init__(returncode, cmd, output, stderr)
        self.query = query

    def __str__(self):
        return "SQL failed: %s\n%s" % (self.query[:200], (self.stderr or "").strip())


def sql(sock, query, variables=None):
    """Runs SQL as root through a Galera node's unix socket, after setting
    the user variables `variables` ({name: string}); returns the rows as
    lists of strings.  Raises SQLError (a CalledProcessError)."""
    pre = "".join("SET @%s='%s';" % (k, v.replace("\\", "\\\\").replace("'", "''"))
                  for k, v in (variables or {}).items())
    cmd = ["mariadb", "-uroot", "--socket=" + sock, "-N", "-B", "-e", pre + query]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SQLError(p.returncode, cmd[:-1] + [query], p.stdout, p.stderr, query)
    return [line.split("\t") for line in p.stdout.splitlines()]


def product_cursor(after_id, filters="seller=0;status=;q="):
    """The product service's cursor for 'ids after after_id' in the list with
    these filters (default: none): base64url without padding of the prefix
    ("p" + the first 4 bytes (hex) of BLAKE2b-128 of the filters + ":"), the
    decimal id, "." and the first 4 bytes (hex) of BLAKE2b-128 of prefix and
    id (lib/http.c http_cursor_prefix and http_cursor_encode,
    cgi/product/handlers.c product_list).  A test or the benchmark that needs
    a deep page without walking to it."""
    tag = hashlib.blake2b(filters.encode(), digest_size=16).hexdigest()[:8]
    head = "p%s:%d" % (tag, after_id)
    check = hashlib.blake2b(head.encode(), digest_size=16).hexdigest()[:8]
    raw = "%s.%s" % (head, check)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
