"""shop.py: the integration tests' client.  Talks to the stack only as a client
would (HTTP through the edge), plus the few operator handles a failure test
needs (stack.env: ports, sockets).  Python stdlib only."""
import email
import email.policy
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

STACK = {}          # filled by run.py from $SHOP_STATE_DIR/stack.env
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "scripts"))
import shoplib  # noqa: E402  (scripts/shoplib.py: shared with bench/run.py)


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # dict, lower-case names
        self.body = body                # raw bytes
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:300])


def load_stack(state_dir):
    STACK.clear()
    STACK.update(shoplib.load_env(os.path.join(state_dir, "stack.env")))
    STACK["SHOP_STATE_DIR"] = state_dir


JS_SAFE_INT = 2 ** 53 - 1


def _prism_exact(v):
    """True when Prism, which parses a JSON request body with JavaScript and
    serializes it again, sends the service what json.dumps(v) says: no
    floats (2.0 would arrive as 2) and no integers beyond 2^53."""
    if isinstance(v, float):
        return False
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return True
    if isinstance(v, int):
        return abs(v) <= JS_SAFE_INT
    if isinstance(v, dict):
        return all(_prism_exact(x) for x in v.values())
    if isinstance(v, (list, tuple)):
        return all(_prism_exact(x) for x in v)
    return False


def spec_violations(headers):
    """The response violations of api/openapi.yaml that Prism's proxy
    (scripts/openapi proxy) reported in `sl-violations`; [] when none."""
    value = headers.get("sl-violations")
    if not value:
        return []
    try:
        found = json.loads(value)
    except ValueError:               # "Too many violations! <truncated JSON>"
        return [value] if '"location":["response"' in value else []
    # Prism rates an undocumented 4xx/5xx status only a Warning: count it.
    return [v for v in found
            if (v.get("location") or [None])[0] == "response"
            and v.get("severity") in ("Error", "Warning")]


def call(method, path, body=None, token=None, headers=None, raw=None,
         base=None, timeout=30, source=None):
    """One HTTP request to the edge (or `base`).  `body` is JSON-encoded with
    Content-Type application/json unless `raw` (bytes) is given instead.
    `source`: the local address to send from (e.g. "127.0.0.2": another
    client address on loopback).

    When run.py started Prism's validating proxy (SHOP_PRISM_URL), requests
    for the edge go through it and a response that violates api/openapi.yaml
    fails the test here.  Requests whose bytes or source address Prism would
    not pass on unchanged go straight to the edge: `raw` bodies, JSON bodies
    with floats or integers JavaScript cannot hold, a given `source`,
    conditional GETs (If-None-Match) and injected faults (X-Fault-Inject)."""
    lower = {k.lower() for k in (headers or {})}
    via_prism = (base is None and raw is None and source is None
                 and STACK.get("SHOP_PRISM_URL") and _prism_exact(body)
                 # Prism turns a bodiless 304 into a 500 of its own; and a
                 # deliberate fault (a worker that dies) is no contract answer.
                 and "if-none-match" not in lower and "x-fault-inject" not in lower)
    url = base or (STACK["SHOP_PRISM_URL"] if via_prism else STACK["SHOP_URL"])
    resp = Resp(*shoplib.http_request(url, method, path, body=body, token=token, headers=headers,
                                      raw=raw, timeout=timeout, source=source))
    if via_prism:
        bad = spec_violations(resp.headers)
        assert not bad, "%s %s: response %d violates api/openapi.yaml: %s (%r)" % (
            method, path, resp.status, bad, resp)
        resp.headers.pop("sl-violations", None)
    return resp


def raw_exchange(data, timeout=10):
    """Sends bytes to the edge on one connection; returns every byte it
    answers until it closes the connection (the request should say
    Connection: close)."""
    import urllib.parse
    url = urllib.parse.urlsplit(STACK["SHOP_URL"])
    out = b""
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as s:
        s.sendall(data)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def read_pid(path):
    """The pid in a pid file, or None (no file, empty, not a number)."""
    try:
        with open(path) as f:
            v = f.read().strip()
        return int(v) if v else None
    except (OSError, ValueError):
        return None


def children(pid):
    """Live child processes of pid: [(pid, comm)]."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] not in "ZX":
            out.append((int(d), comm))
    return out


def pool_workers(host_dir, svc):
    """(pool supervisor pid or None, [worker pids]) of one service's pool
    on one host (hostN/<svc>.pool.pid: pool/shop-pool and its workers)."""
    pool = read_pid(os.path.join(host_dir, "%s.pool.pid" % svc))
    if not pool:
        return None, []
    return pool, [c for c, comm in children(pool) if comm == svc + ".fcgi"]


def host_url(n):
    """Host n's lighttpd (the API port): where a test sends X-Fault-Inject,
    which the edge drops."""
    return "http://127.0.0.1:%d" % (int(STACK["SHOP_PORT_BASE"]) + 10 + n)


def internal_url(n):
    """Host n's internal listener: metrics, status pages (never proxied)."""
    return "http://127.0.0.1:%d" % (int(STACK["SHOP_PORT_BASE"]) + 4 + n)


def scrape(host, path):
    """The Prometheus text of `path` (e.g. /orders/metrics) on host n."""
    with urllib.request.urlopen(internal_url(host) + path, timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        return r.read().decode()


def metric(text, name, **labels):
    """Value of the sample `name{labels...}` (labels matched as a subset,
    matching samples summed); None when there is none."""
    total = None
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        lbl, value = line[len(name) + 1:].rsplit("} ", 1)
        if all('%s="%s"' % kv in lbl for kv in labels.items()):
            total = (total or 0) + float(value)
    return total


def unique_email(prefix="user"):
    return "%s-%s@example.test" % (prefix, uuid.uuid4().hex[:12])


def unique(prefix="x"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


PASSWORD = "correct horse battery"


def register(email=None, password=PASSWORD, name=None):
    email = email or unique_email()
    body = {"email": email, "password": password}
    if name is not None:
        body["name"] = name
    r = call("POST", "/auth/register", body)
    assert r.status == 201, r
    return r.json


def login(email, password=PASSWORD):
    r = call("POST", "/auth/login", {"email": email, "password": password})
    assert r.status == 200, r
    return r.json


def admin_token():
    """Access token of the stack's admin (cached: logins cost an Argon2id hash)."""
    cache = STACK.get("_admin_token")
    if cache and cache[1] > time.time() + 60:
        return cache[0]
    t = login(STACK["SHOP_ADMIN_EMAIL"], STACK["SHOP_ADMIN_PASSWORD"])
    STACK["_admin_token"] = (t["access_token"], time.time() + t["expires_in"])
    return t["access_token"]


def new_user(role="customer"):
    """Registers a user, gives it `role` (via the admin), logs in.
    Returns (user dict, access token)."""
    u = register()
    if role != "customer":
        r = call("PATCH", "/auth/users/%d" % u["id"], {"role": role},
                 token=admin_token())
        assert r.status == 200, r
    t = login(u["email"])
    return t["user"], t["access_token"]


def new_product(token, **fields):
    """Creates an active product (defaults overridable).  Returns its JSON."""
    body = {"sku": unique("sku"), "name": "Test product", "price_cents": 1250,
            "currency": "EUR", "stock": 10, "status": "active"}
    body.update(fields)
    r = call("POST", "/products", body, token=token)
    assert r.status == 201, r
    return r.json


def parallel(n, fn):
    """Runs fn(i) in n threads at once; returns the results in order."""
    out = [None] * n
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        try:
            out[i] = fn(i)
        except Exception as e:          # surfaced to the caller's asserts
            out[i] = e
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def script(name, *args, check=True, env=None):
    """Runs scripts/<name> with the test stack's environment (plus env);
    returns the CompletedProcess (stdout and stderr captured as text)."""
    extra, env = env or {}, dict(os.environ)
    env.update({k: v for k, v in STACK.items() if k.startswith("SHOP_") and isinstance(v, str)})
    env.update(extra)
    return subprocess.run([os.path.join(REPO, "scripts", name)] + list(args),
                          env=env, check=check, capture_output=True, text=True)


def stack(*args, check=True):
    """Runs scripts/stack with the test stack's environment."""
    return script("stack", *args, check=check)


def wait_for(what, pred, timeout=30.0, every=0.3, ignore=()):
    """Polls pred() until it returns something true (and returns that);
    fails after timeout, naming what it waited for and the last value.  An
    exception of a type in `ignore` counts as "not yet" (its text is the
    last value)."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = pred()
        except ignore as e:
            last = e
        if last and not isinstance(last, BaseException):
            return last
        time.sleep(every)
    raise AssertionError("timed out after %.0fs waiting for %s (last: %r)" % (timeout, what, last))


def stack_status():
    """scripts/stack status, parsed: ({"node1": "Synced Primary 3", ...},
    {"host1": "up auth=3 product=3 order=3  sweep=up", ...},
    {"auth/host1": "UP", "db/node1": "UP", ...})."""
    out = stack("status", check=False).stdout
    nodes, hosts, servers = {}, {}, {}
    for line in out.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0].startswith("node"):
            nodes[f[0]] = " ".join(f[2:])
        elif f[0].startswith("host"):
            hosts[f[0]] = " ".join(f[2:])
        elif f[0] == "haproxy" and len(f) > 2 and "/" in f[1]:
            servers[f[1]] = " ".join(f[2:])
    return nodes, hosts, servers


def sql(query, node=1):
    """Runs SQL as root on Galera node `node` (1-based) through its unix socket;
    returns rows as lists of strings.  For invariant checks only."""
    return shoplib.sql(STACK["SHOP_ROOT_SOCKETS"].split()[node - 1], query)


# A token voided by a role or password change, or by the reuse of its
# login's refresh token: 401 unauthorized, its detail saying so.
TOKEN_REVOKED = "This access token was revoked ("


def assert_revoked(r):
    """Asserts r is the 401 of a revoked access token."""
    assert_problem(r, 401, "unauthorized")
    assert r.json["detail"].startswith(TOKEN_REVOKED), r
    assert (r.header("www-authenticate") or "").startswith("Bearer"), r.headers


def assert_problem(r, status, code=None):
    """Asserts r is a problem+json response with this status (and code)."""
    assert r.status == status, "expected %d, got %r" % (status, r)
    ct = r.header("content-type") or ""
    assert ct.startswith("application/problem+json"), ct
    assert r.json and r.json.get("status") == status, r
    for k in ("title", "code", "request_id"):
        assert k in r.json, (k, r)
    if code:
        assert r.json["code"] == code, "expected code %s, got %r" % (code, r)
    # No cache keeps an error, whoever answered it (the edge or a service).
    assert r.header("cache-control") == "no-store", (r.headers, r)


def unsettled():
    """What does not match yet between orders and product's reservations:
    stock held without a confirmed order, confirmed orders without confirmed
    stock, cancelled or given-up orders whose stock is not back.  Empty once
    the system has settled (reservation TTLs over, sweeps run)."""
    bad = sql(
        "SELECT 'stock held without a confirmed order', r.id, r.status, o.status"
        " FROM shop_product.reservations r"
        " LEFT JOIN shop_order.orders o ON COALESCE(o.reservation_id, o.id) = r.id"
        " WHERE r.status <> 'released' AND COALESCE(o.status, '') <> 'confirmed'")
    bad += sql(
        "SELECT 'confirmed order without confirmed stock', o.id, o.stock_state, r.status"
        " FROM shop_order.orders o"
        " LEFT JOIN shop_product.reservations r ON r.id = COALESCE(o.reservation_id, o.id)"
        " WHERE o.status = 'confirmed' AND COALESCE(r.status, '') <> 'confirmed'")
    bad += sql(
        "SELECT 'unsettled order', id, status, stock_state FROM shop_order.orders"
        " WHERE status IN ('cancelled', 'failed') AND stock_state <> 'released'"
        " OR status = 'confirmed' AND stock_state <> 'confirmed'")
    return bad


def wait_settled(timeout=60.0):
    """Waits until unsettled() is empty; fails naming what is not."""
    last = []

    def settled():
        last[:] = unsettled()
        return not last
    try:
        wait_for("orders and reservations to settle", settled, timeout=timeout, every=1)
    except AssertionError as e:
        raise AssertionError("%s: %s" % (e, last[:20]))


# ------------------------------------------------------------------ mail

def mails():
    """Every message the stack's SMTP sink holds: [email.message.EmailMessage]."""
    out = []
    root = STACK["SHOP_MAILDIR"]
    for sub in ("new", "cur"):
        d = os.path.join(root, sub)
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            with open(os.path.join(d, name), "rb") as f:
                out.append(email.message_from_bytes(f.read(), policy=email.policy.default))
    return out


def order_mails():
    """{(order_id, "confirmed"|"cancelled"): [message, ...]} of the sink."""
    got = {}
    for m in mails():
        s = re.fullmatch(r"Your order (\d+) is (confirmed|cancelled)", str(m["Subject"] or ""))
        if s:
            got.setdefault((int(s.group(1)), s.group(2)), []).append(m)
    return got


# ------------------------------------------------------------------ shared users

_users = {}


def _signed_in(role="customer"):
    """A new user of `role`, signed in: [user, token, email, token's expiry]."""
    u = register()
    if role != "customer":
        r = call("PATCH", "/auth/users/%d" % u["id"], {"role": role}, token=admin_token())
        assert r.status == 200, r
    t = login(u["email"])
    return [t["user"], t["access_token"], u["email"], time.time() + t["expires_in"]]


def _fresh(entry):
    """entry (of _signed_in) with a token good for two more minutes: a shared
    user outlives its 15-minute token when the suite runs longer."""
    if entry[3] < time.time() + 120:
        t = login(entry[2])
        entry[1], entry[3] = t["access_token"], time.time() + t["expires_in"]
    return entry


def seller_token():
    """A seller's token, the same seller for every test that asks."""
    if "seller" not in _users:
        _users["seller"] = _signed_in("seller")
    return _fresh(_users["seller"])[1]


def customers(n):
    """n signed-in customers, shared by every test that asks: [(user, token)]."""
    have = _users.setdefault("customers", [])
    while len(have) < n:
        got = parallel(min(8, n - len(have)), lambda i: _signed_in())
        for u in got:
            assert not isinstance(u, Exception), u
        have.extend(got)
    stale = [e for e in have[:n] if e[3] < time.time() + 120]
    for k in range(0, len(stale), 8):
        part = stale[k:k + 8]
        for r in parallel(len(part), lambda i: _fresh(part[i])):
            assert not isinstance(r, Exception), r
    return [(e[0], e[1]) for e in have[:n]]
