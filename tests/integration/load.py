"""load.py: the steady mixed client load the failure tests (ha_*.py) run
through the edge while they break something.  Owns the request mix, the test
client's retry rule and the per-request record; the failure tests own the
faults and the invariants.  Python stdlib only.

A Load runs `threads` threads, each looping over a weighted mix until stop():
  get    GET /products/{id}     (a hot or a cold product; half signed in)
  list   GET /products?limit=20
  login  POST /auth/login       (one of the load's users)
  order  POST /orders with a fresh Idempotency-Key, 1-2 lines on the hot
         products, quantity 1-3
Retry rule (what a careful client may do safely): a GET, a POST carrying an
Idempotency-Key, or a login that gets no answer or a 5xx is sent once more,
identical (same key), after `pause` seconds, or after the answer's
Retry-After when it asks for longer (a 503 says when to come back; at most
5 s).  A 409 idempotency_in_progress says "a request with this key is still
running, come back after Retry-After": it is sent again, as the storefront
does, up to IN_PROGRESS_TRIES times.  The client may hear it for a key it
sent once: HAProxy resends a keyed request whose server dropped it, and the
dropped attempt may still be running on that server's worker.  A login is safe to repeat although it is a POST without a
key: it changes nothing a client relies on (a repeat only issues one more
refresh token).  Nothing else in the mix could be repeated safely.
The client timeout (35 s) is above HAProxy's `timeout server` (30 s), so a
slow answer is HAProxy's to give, not the client's to guess.
Every request leaves one Rec; an order's Rec also carries its key, user,
lines and (on 201) the order id, for the invariants.  Every attempt counts:
an answer the client cannot read (reset, timeout, a bad status line, a body
cut short: OSError, ValueError, http.client.HTTPException) is status 0, and
an exception from anywhere else in a request is recorded as a failed request
too (status 0, error "crash: ...") and the thread carries on.  A load thread
that ends before stop() anyway makes summary() raise: a run that stopped
counting must not pass on what it did count."""
import http.client
import random
import threading
import time
import traceback
import uuid

import shop

# What counts as the request having done its job (business answers included).
OK = {"get": (200,), "list": (200,), "login": (200,), "order": (201,)}
# How often a 409 idempotency_in_progress is asked again (about a second apart).
IN_PROGRESS_TRIES = 8


class Rec:
    """One logical request: t_start/t_end (time.time(), end after any retry),
    kind, status (0: no HTTP answer), retried (bool), and for diagnosis the
    first attempt's status, the final problem code and every attempt as
    (status, code, clean) where clean says a 503 carried Retry-After and was
    application/problem+json."""
    __slots__ = ("t_start", "t_end", "kind", "status", "retried", "first_status",
                 "code", "attempts", "key", "user", "lines", "order_id", "rid", "error")

    def __init__(self, kind):
        self.kind = kind
        self.t_start = time.time()
        self.t_end = None
        self.status = 0
        self.retried = False
        self.first_status = None
        self.code = None
        self.attempts = []          # [(status, code, clean)] per attempt
        self.key = self.user = self.lines = self.order_id = self.rid = self.error = None

    @property
    def ok(self):
        return self.status in OK[self.kind]

    @property
    def deferred(self):
        """An order still told 409 idempotency_in_progress after the retries:
        an attempt of it died or was cut off (the client's own, or one HAProxy
        resent for it), and the key stays claimed, as the contract says,
        until that attempt ends or the order sweep frees it; the client must
        come back later.  The failure tests check that this later retry does
        place the order, once."""
        return (self.kind == "order" and self.status == 409
                and self.code == "idempotency_in_progress")

    def as_dict(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self):
        return "<%s %s%s t=%.2f..%.2f code=%s rid=%s err=%s>" % (
            self.kind, self.status, " (retried, first %s)" % self.first_status
            if self.retried else "", self.t_start, self.t_end or 0, self.code, self.rid,
            self.error)


def _retry_safe(method, path, headers):
    return method == "GET" or "Idempotency-Key" in headers or path == "/auth/login"


def _retry_after(resp):
    """Seconds the answer asks the client to wait (Retry-After in seconds,
    at most 5), 0 when it does not say."""
    v = resp.header("retry-after") if resp is not None else None
    return min(int(v), 5) if v and v.strip().isdigit() else 0


def _worth_retrying(status, code):
    return status == 0 or status >= 500 or (status == 409 and code == "idempotency_in_progress")


def customers(n=4):
    """n new customers signed in, as a Load takes them: [(user, email, token)]."""
    out = []
    for _ in range(n):
        u = shop.register()
        t = shop.login(u["email"])
        out.append((t["user"], u["email"], t["access_token"]))
    return out


class Load:
    """users: [(user dict, email, token)]; hot/cold: product ids."""

    def __init__(self, users, hot, cold, threads=5, pause=1.0, timeout=35.0,
                 mix=(("get", 40), ("list", 15), ("login", 10), ("order", 35)),
                 key_prefix="load"):
        self.users, self.hot, self.cold = users, list(hot), list(cold)
        self.threads, self.pause, self.timeout = threads, pause, timeout
        self.kinds = [k for k, _ in mix]
        self.weights = [w for _, w in mix]
        self.key_prefix = key_prefix
        self.records = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self.died = []              # load threads that ended before stop()
        self.t0 = self.t1 = None
        self.fault_at = None        # time.time() the fault was struck, set by the case

    # ------------------------------------------------------------ running

    def start(self):
        self.t0 = time.time()
        for i in range(self.threads):
            t = threading.Thread(target=self._loop, args=(random.Random(i * 7919 + 1),),
                                 daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self):
        """Stops the load and waits for every request in flight to end."""
        self._stop.set()
        for t in self._threads:
            t.join()
        self.t1 = time.time()

    def _loop(self, rnd):
        try:
            while not self._stop.is_set():
                kind = rnd.choices(self.kinds, self.weights)[0]
                try:
                    rec = getattr(self, "_" + kind)(rnd)
                except Exception as e:      # a failed request, never a dead thread
                    rec = Rec(kind)
                    rec.t_end = time.time()
                    rec.error = "crash: %s: %s\n%s" % (type(e).__name__, e,
                                                       traceback.format_exc(limit=5))
                    rec.attempts.append((0, None, False))
                    if rec.first_status is None:
                        rec.first_status = 0
                with self._lock:
                    self.records.append(rec)
        finally:
            if not self._stop.is_set():
                with self._lock:
                    self.died.append("%s: %s" % (threading.current_thread().name,
                                                 traceback.format_exc(limit=5)))

    def _send(self, rec, method, path, body=None, token=None, headers=None):
        """Sends the request (and the one safe retry); fills rec."""
        headers = dict(headers or {})
        retries, in_progress = 1, IN_PROGRESS_TRIES
        attempt = 0
        while True:
            rid = "%s-%s" % (self.key_prefix, uuid.uuid4().hex[:16])
            headers["X-Request-ID"] = rid
            status, code, resp = 0, None, None
            try:
                resp = shop.call(method, path, body, token=token, headers=headers,
                                 timeout=self.timeout)
                status = resp.status
                if isinstance(resp.json, dict):
                    code = resp.json.get("code")
            except (OSError, ValueError, http.client.HTTPException) as e:
                # refused, reset, timeout; bad status line, line too long,
                # body cut short (IncompleteRead), remote closed: no answer
                rec.error = "%s: %s" % (type(e).__name__, e)
            rec.rid = rid if rec.rid is None else rec.rid + "," + rid
            rec.status, rec.code = status, code
            rec.attempts.append((status, code, bool(
                resp is not None and status == 503 and resp.header("retry-after")
                and (resp.header("content-type") or "").startswith("application/problem+json"))))
            if attempt == 0:
                rec.first_status = status
            attempt += 1
            if not _worth_retrying(status, code) or not _retry_safe(method, path, headers):
                break
            if status == 409:
                # not cut short by stop(): the answer is near
                if in_progress == 0:
                    break
                in_progress -= 1
            elif retries == 0 or self._stop.is_set() and status:
                break
            else:
                retries -= 1
            rec.retried = True
            time.sleep(max(self.pause, _retry_after(resp)))
        rec.t_end = time.time()
        return resp

    # ------------------------------------------------------------ the mix

    def _get(self, rnd):
        # Half signed in: the edge caches anonymous product reads for a few
        # seconds, and a load served from that cache would test little.
        rec = Rec("get")
        pid = rnd.choice(self.hot + self.cold)
        token = rnd.choice(self.users)[2] if rnd.random() < 0.5 else None
        self._send(rec, "GET", "/products/%d" % pid, token=token)
        return rec

    def _list(self, rnd):
        rec = Rec("list")
        self._send(rec, "GET", "/products?limit=20")
        return rec

    def _login(self, rnd):
        rec = Rec("login")
        _, email, _ = rnd.choice(self.users)
        self._send(rec, "POST", "/auth/login", {"email": email, "password": shop.PASSWORD})
        return rec

    def _order(self, rnd):
        rec = Rec("order")
        user, _, token = rnd.choice(self.users)
        pids = sorted(rnd.sample(self.hot, rnd.choice((1, 1, 2))))
        rec.lines = [{"product_id": p, "quantity": rnd.randint(1, 3)} for p in pids]
        rec.user, rec.key = user["id"], "%s-%s" % (self.key_prefix, uuid.uuid4().hex)
        resp = self._send(rec, "POST", "/orders", {"items": rec.lines}, token=token,
                          headers={"Idempotency-Key": rec.key})
        if rec.status == 201 and isinstance(resp.json, dict):
            rec.order_id = resp.json.get("id")
        return rec

    # ------------------------------------------------------------ results

    def summary(self):
        """Raises AssertionError when a load thread died.  Otherwise
        {requests, failed (not ok, not deferred), failed_pct, deferred, gap (longest stretch without a
        success, from start to stop, a stretch that began before a fault counted from the fault's
        onset (self.fault_at): requests still busy when it struck owe their wait to the load, not
        to it; gap_at: the stretch's start, seconds after start),
        first_failed_pct (before the client's retry), by_status {kind/status: n}, failures
        and all: the Recs}."""
        if self.died:
            raise AssertionError("%d load thread(s) died before stop(); the counts are "
                                 "incomplete: %s" % (len(self.died), self.died))
        recs = sorted(self.records, key=lambda r: r.t_end)
        failed = [r for r in recs if not r.ok and not r.deferred]
        ends = sorted([self.t0] + [r.t_end for r in recs if r.ok] + [self.t1]
                      + ([self.fault_at] if self.fault_at else []))
        gap, gap_at = max((b - a, a - self.t0) for a, b in zip(ends, ends[1:]))
        first_failed = sum(1 for r in recs if r.first_status not in OK[r.kind])
        deferred = [r for r in recs if r.deferred]
        by = {}
        for r in recs:
            k = "%s/%s" % (r.kind, r.status if r.ok else "%s:%s" % (r.status, r.code))
            by[k] = by.get(k, 0) + 1
        return {"requests": len(recs), "failed": len(failed), "gap_at": gap_at,
                "first_failed_pct": 100.0 * first_failed / max(1, len(recs)),
                "failed_pct": 100.0 * len(failed) / max(1, len(recs)),
                "gap": gap, "by_status": by, "failures": failed, "all": recs,
                "deferred": deferred}
