"""edgefuzz.py: a black-box fuzzer for the public edge.  It knows the routes
of the contract and nothing of the code behind them: it sends random
methods, mutated paths (percent-encodings, dot segments, doubled slashes,
odd ids, query strings), random and hostile headers (bad lengths, chunked
bodies, long values, odd names, tokens valid, truncated and forged) and
random bodies (mutated valid JSON, wrong types, deep nesting, invalid
UTF-8, random bytes), each on its own connection, from several threads.

What it asserts of every answer (see Fuzz.bad):
  - a well-formed request gets an answer (a complete status line, headers
    and body) within `timeout` seconds.  A request that is not HTTP/1.1 at
    all (a method or target with spaces or control characters, a header
    line with a control character, a Content-Length that is not one number,
    broken chunked framing, bytes past the declared body: the generator's own
    verdict and not_http) may be
    answered or closed without a word (RFC 9112 lets a server close such a
    connection; HAProxy 2.6 could only send fixed HTML there, so the edge
    closes); when it is answered, the rules below hold for it too.  A
    complete status line and headers whose body a TCP reset then overtook
    count as the answer (see _parse).  A well-formed GET or HEAD whose
    answer came cut short is sent once more, as the failure tests' client
    does, and listed in Fuzz.resent;
  - no 5xx: nothing a client can send is a server error;
  - every error (4xx) is application/problem+json with a status equal to the
    response's, a `code` and the `request_id` the edge sent back.
What it leaves to its callers: that no worker was replaced (a crash) and that
the workers' memory stayed flat (workers() below).  Python stdlib and shop.py."""
import json
import os
import random
import socket
import threading
import time

import shop

ROUTES = [
    ("GET", "/auth/health"), ("GET", "/auth/jwks.json"), ("GET", "/auth/me"),
    ("POST", "/auth/register"), ("POST", "/auth/login"), ("POST", "/auth/refresh"),
    ("POST", "/auth/logout"), ("GET", "/auth/users/{id}"), ("PATCH", "/auth/users/{id}"),
    ("GET", "/products"), ("POST", "/products"), ("GET", "/products/{id}"),
    ("PUT", "/products/{id}"), ("PATCH", "/products/{id}"), ("DELETE", "/products/{id}"),
    ("POST", "/products/{id}/stock"), ("GET", "/products/health"),
    ("GET", "/orders"), ("POST", "/orders"), ("GET", "/orders/{id}"),
    ("POST", "/orders/{id}/cancel"), ("GET", "/orders/health"),
]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE",
           "CONNECT", "PROPFIND", "get", "FOO", "G\x01T"]
TCHAR = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
IDS = ["1", "0", "-1", "2", "999999999999", "18446744073709551616", "1e3", "0x10",
       "abc", "%00", "1%20", "%ff", "1.5", " 1", "9" * 40, "\u00e9"]
QUERIES = ["limit=1", "limit=0", "limit=-5", "limit=101", "limit=abc", "limit=20&limit=3",
           "cursor=abc", "cursor=", "cursor=" + "A" * 300, "q=", "q=ab", "q=zzzzz",
           "q=%25%27%22", "q=" + "x" * 500, "status=draft", "mine=1", "%zz=1", "a=%",
           "sort=name", "limit=20&cursor=eyJpZCI6MX0"]
FIELD_VALUES = [None, True, False, 0, -1, 1, 2 ** 31, 2 ** 63, 2 ** 64, 1.5, -0.0, 1e308,
                "", "x", "a" * 300, "a" * 5000, "\u0000", "\ud7ff", "<script>", "' OR 1=1 --",
                [], [1], {}, {"a": 1}, "EUR", "USD", "customer", "seller", "admin", "active",
                "draft", "archived", "user@example.com", "correct horse battery staple"]
FIELDS = ["email", "password", "name", "refresh_token", "role", "sku", "description",
          "price_cents", "currency", "stock", "status", "delta", "reason", "items",
          "product_id", "quantity", "version", "x"]


def _token_variants(tokens):
    out = ["Bearer", "Bearer ", "Bearer x", "Basic dXNlcjpwYXNz", "bearer a.b.c",
           "Bearer " + "A" * 4000, "Bearer a.b", "Bearer ....", "Bearer \u00e9"]
    for t in tokens:
        out += ["Bearer " + t, "Bearer " + t[:-3], "Bearer " + t + "x", t,
                "Bearer " + t.split(".")[0] + ".e30." + t.split(".")[2]]
    return out


class Fuzz:
    """Fuzz(host, port, seed, tokens=[...]).run(n, threads) sends n requests;
    .results holds (request summary, status, content-type, parsed body,
    x-request-id, error) per request and .bad() lists the failures."""

    def __init__(self, host, port, seed, tokens=(), timeout=20.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.seed = seed
        self.tokens = list(tokens)
        self.auth_values = _token_variants(self.tokens)
        self.results = []
        self.resent = []            # (request, why): GETs sent twice (_one)
        self.lock = threading.Lock()

    # ------------------------------------------------------------ generation

    def _path(self, r, template):
        path = template.replace("{id}", r.choice(IDS) if r.random() < 0.5 else str(r.randint(1, 50)))
        m = r.random()
        if m < 0.08:
            i = r.randrange(1, len(path))
            path = path[:i] + "%%%02X" % ord(path[i]) + path[i + 1:]
        elif m < 0.14:
            path = path.replace("/", r.choice(["//", "/./", "/x/../", "/%2e/", "/%2E%2E/x/"]), 1)
        elif m < 0.18:
            path = r.choice(["/auth/..", "/products/../auth", "/orders/%2e%2e/server-status",
                             "/auth/%2e%2e/server-config", "/server-status", "/metrics",
                             "/orders/metric%73", "/auth/logi%6e", "/..", "/%2e%2e/%2e%2e/etc/passwd",
                             "*", "http://evil.example/auth/health", "/auth/health#frag"])
        elif m < 0.21:
            path = path + "/"
        elif m < 0.23:
            path = path.upper()
        elif m < 0.25:
            path = path + "/" + "a" * r.choice([300, 3000, 9000])
        elif m < 0.27:
            path = "/" + "".join(chr(r.randrange(33, 127)) for _ in range(r.randrange(1, 40)))
        if r.random() < 0.3:
            path += "?" + "&".join(r.sample(QUERIES, r.randint(1, 3)))
        return path

    def _json_body(self, r):
        obj = {}
        for f in r.sample(FIELDS, r.randint(0, 6)):
            obj[f] = r.choice(FIELD_VALUES)
        if r.random() < 0.3:
            obj["items"] = [{"product_id": r.choice(FIELD_VALUES + [1, 2, 3]),
                             "quantity": r.choice(FIELD_VALUES + [1, 2])}
                            for _ in range(r.choice([0, 1, 2, 3, 60]))]
        v = r.random()
        if v < 0.05:
            return b"[" * 5000 + b"]" * 5000
        if v < 0.10:
            return b'{"a":' * 3000 + b"1" + b"}" * 3000
        if v < 0.15:
            return json.dumps(r.choice(FIELD_VALUES)).encode()
        if v < 0.20:
            return bytes(r.randrange(256) for _ in range(r.randrange(1, 300)))
        if v < 0.23:
            return b'{"email": "\xff\xfe", "password": "\xc3\x28"}'
        if v < 0.26:
            return json.dumps(obj).encode()[:-r.randint(1, 3)] if obj else b"{"
        if v < 0.28:
            return b'{"x":"' + b"y" * 70000 + b'"}'
        return json.dumps(obj).encode()

    def _headers(self, r, body):
        h = [("Host", r.choice(["127.0.0.1", "shop.example", "", "a" * 300]))]
        if r.random() < 0.5:
            h.append(("Authorization", r.choice(self.auth_values)))
        if body is not None and r.random() < 0.85:
            h.append(("Content-Type", r.choice(["application/json", "application/json; charset=utf-8",
                                                "text/plain", "application/x-www-form-urlencoded",
                                                "multipart/form-data; boundary=x", "application/json;;;",
                                                "", "application/problem+json"])))
        extra = [("Idempotency-Key", lambda: r.choice(["", "k", "k" * 300, "\u00e9", "a b",
                                                      "%032x" % r.getrandbits(128)])),
                 ("If-Match", lambda: r.choice(['"1"', "*", "W/\"1\"", '"', "x" * 200, '"9999"'])),
                 ("If-None-Match", lambda: r.choice(['"1"', "*", '"x", "y"', ""])),
                 ("X-Request-ID", lambda: r.choice(["abc", "x" * 200, "a b", "\u00e9", "", "req-%d" % r.randrange(10 ** 6)])),
                 ("Accept", lambda: r.choice(["*/*", "text/html", "application/xml", "", "a" * 500])),
                 ("Cookie", lambda: r.choice(["a=b", "refresh=" + "x" * 100, ";;;"])),
                 ("X-Forwarded-For", lambda: r.choice(["1.2.3.4", "127.0.0.1, 10.0.0.1", "garbage"])),
                 ("X-Fault-Inject", lambda: r.choice(["after-reserve", "delay-after-reserve", "crash"])),
                 ("Expect", lambda: "100-continue"),
                 ("Range", lambda: "bytes=0-10"),
                 ("X_Under_Score", lambda: "1"),
                 ("X-Long", lambda: "v" * r.choice([100, 4000, 9000])),
                 ("X-Weird", lambda: r.choice(["\x7f", "a\tb", "\u00e9\u00e9"]))]
        for name, val in r.sample(extra, r.randint(0, 4)):
            h.append((name, val()))
        return h

    def _request(self, r):
        method, template = r.choice(ROUTES)
        if r.random() < 0.15:
            method = r.choice(METHODS)
        path = self._path(r, template)
        body = self._json_body(r) if (method in ("POST", "PUT", "PATCH") and r.random() < 0.9) \
            or r.random() < 0.05 else None
        headers = self._headers(r, body)
        framing = r.random()
        head = ["%s %s HTTP/1.1" % (method, path)] + ["%s: %s" % kv for kv in headers]
        wellformed = (set(method) <= TCHAR and all(33 <= ord(c) < 127 for c in path)
                      and all(set(k) <= TCHAR and all(c == "\t" or 32 <= ord(c) != 127 for c in v)
                              for k, v in headers))
        payload = b""
        if body is not None:
            if framing < 0.1:
                head.append("Transfer-Encoding: chunked")
                step = r.randint(1, 500)
                chunks = [body[i:i + step] for i in range(0, len(body), step)]
                payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
                if r.random() < 0.3:
                    payload = payload.replace(b"\r\n", b"\n", 1)       # broken chunk framing
                    wellformed = False
            elif framing < 0.14:
                head.append("Transfer-Encoding: chunked")              # smuggling attempt
                head.append("Content-Length: %d" % len(body))
                payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
                wellformed = False
            elif framing < 0.17:
                head.append("Content-Length: %d" % len(body))
                head.append("Content-Length: %d" % (len(body) + 1))
                payload = body
                wellformed = False
            elif framing < 0.20:
                head.append("Content-Length: %s" % r.choice(["-1", "abc", "1e3", " ", "99999999999999999999"]))
                payload = body
                wellformed = False
            elif framing < 0.25:
                cut = r.randrange(0, len(body) + 1)
                head.append("Content-Length: %d" % cut)                # shorter than the body
                payload = body
                # The bytes past the declared length are a second request,
                # and garbage: the edge answers the first and closes, and
                # closing with bytes unread may reset the connection under
                # the answer in flight (RFC 9112, 9.6).
                wellformed = cut == len(body)
            else:
                head.append("Content-Length: %d" % len(body))
                payload = body
        head.append("Connection: close")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("utf-8", "surrogatepass") + payload
        return method, path, raw, wellformed

    # ------------------------------------------------------------ exchange

    def _exchange(self, raw, head_only=False):
        """Sends raw, reads until the server closes; returns (status, headers,
        body) or raises OSError/ValueError on no (complete) answer.  The
        answer to a HEAD has no body whatever its Content-Length says."""
        s = socket.create_connection((self.host, self.port), timeout=self.timeout)
        try:
            s.sendall(raw)
            data = b""
            deadline = time.time() + self.timeout
            reset = False
            while time.time() < deadline:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    reset = True       # an answer already read counts (below)
                    break
                if not chunk:
                    break
                data += chunk
                if _complete(data, head_only):
                    break
        finally:
            s.close()
        return _parse(data, head_only, body_lost_ok=reset)

    def _one(self, r):
        method, path, raw, wellformed = self._request(r)
        wellformed = wellformed and not not_http(raw)
        summary = "%s %s (%d bytes%s)" % (method, path[:120], len(raw),
                                          "" if wellformed else ", malformed")
        for attempt in (1, 2):
            try:
                status, headers, body = self._exchange(raw, method == "HEAD")
                err = None
            except (OSError, ValueError) as e:
                status, headers, body, err = 0, {}, b"", "%s: %s" % (type(e).__name__, e)
            # A GET whose answer came cut short is sent once more, as the
            # failure tests' client does (load.py); the cut is noted.
            if attempt == 2 or not wellformed or method not in ("GET", "HEAD") \
                    or not (err or body is None):
                break
            with self.lock:
                self.resent.append((summary, err or "body lost"))
        parsed = None
        if body is None:
            err = "body lost to a reset after the head"
        elif body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        with self.lock:
            self.results.append((summary, status, headers.get("content-type", ""), parsed,
                                 headers.get("x-request-id"), err))

    def run(self, n, threads=6):
        per = [n // threads + (1 if i < n % threads else 0) for i in range(threads)]

        def worker(i):
            r = random.Random("%s-%d" % (self.seed, i))
            for _ in range(per[i]):
                self._one(r)
        ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return self

    def bad(self):
        """Every answer that breaks the rules in the module comment."""
        out = []
        for summary, status, ctype, body, rid, err in self.results:
            method = summary.split(" ", 1)[0]
            if status == 0:
                if not summary.endswith(", malformed)"):
                    out.append(("no answer", summary, err))
            elif status >= 500:
                out.append(("5xx", summary, status, body))
            elif status >= 400 and method != "HEAD":
                if not ctype.startswith("application/problem+json"):
                    out.append(("not problem+json", summary, status, ctype))
                elif err and not rid:
                    out.append(("no request id", summary, status))
                elif err:
                    pass           # the body was lost to a reset (_parse)
                elif not isinstance(body, dict) or body.get("status") != status \
                        or not body.get("code") or not body.get("request_id") \
                        or body.get("request_id") != rid:
                    out.append(("incomplete problem", summary, status, body, rid))
        return out

    def by_status(self):
        out = {}
        for res in self.results:
            out[res[1]] = out.get(res[1], 0) + 1
        return out


def not_http(raw):
    """True when the request's head breaks HTTP/1.1's syntax (RFC 9112):
    a request line that is not three space-separated parts free of control
    characters, a header line with a control character other than HTAB, or
    Content-Length given twice or not as one number of at most 19 digits."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    if len(lines[0].split(b" ")) != 3 or any(c < 32 or c == 127 for c in lines[0]):
        return True
    if any(c < 32 and c != 9 or c == 127 for line in lines[1:] for c in line):
        return True
    lengths = [line.split(b":", 1)[1].strip() for line in lines[1:]
               if line.lower().startswith(b"content-length:")]
    return len(lengths) > 1 or any(not v.isdigit() or len(v) > 19 for v in lengths)


def _split(data):
    """(head, rest) of the final response: interim 1xx heads (100 Continue
    to an Expect) are skipped."""
    while True:
        i = data.find(b"\r\n\r\n")
        if i < 0:
            return None, None
        head, data = data[:i], data[i + 4:]
        if not head.startswith(b"HTTP/1.1 1") and not head.startswith(b"HTTP/1.0 1"):
            return head, data


def _complete(data, head_only=False):
    head, rest = _split(data)
    if head is None:
        return False
    status = int(head.split(b" ", 2)[1])
    if head_only or status in (204, 304):
        return True         # no body, whatever Content-Length says (RFC 9112, 6.3)
    hdrs = _headers(head)
    if "content-length" in hdrs:
        return len(rest) >= int(hdrs["content-length"])
    if "chunked" in hdrs.get("transfer-encoding", ""):
        return rest.endswith(b"0\r\n\r\n")
    return False


def _headers(head):
    out = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        out[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
    return out


def _parse(data, head_only=False, body_lost_ok=False):
    """(status, headers, body) of a response.  body is None when the
    connection was reset under it (body_lost_ok): the server answered, then
    closed with bytes of the request unread (a body nobody needed, say of a
    GET the cache answered), and the peer's RST overtook the body (RFC 9112,
    9.6); the status and headers still count."""
    head, rest = _split(data)
    if head is None:
        raise ValueError("no complete response head in %d bytes: %r" % (len(data), data[:80]))
    line = head.split(b"\r\n", 1)[0].split(b" ", 2)
    if len(line) < 2 or not line[0].startswith(b"HTTP/1.") or not line[1].isdigit():
        raise ValueError("bad status line %r" % head[:80])
    hdrs = _headers(head)
    body = rest
    if head_only or int(line[1]) in (204, 304):
        return int(line[1]), hdrs, b""
    if body_lost_ok and "content-length" in hdrs and len(rest) < int(hdrs["content-length"]):
        return int(line[1]), hdrs, None
    if "chunked" in hdrs.get("transfer-encoding", ""):
        body, pos = b"", 0
        while True:
            nl = rest.find(b"\r\n", pos)
            if nl < 0:
                raise ValueError("cut chunked body")
            size = int(rest[pos:nl].split(b";")[0], 16)
            if size == 0:
                break
            body += rest[nl + 2:nl + 2 + size]
            pos = nl + 2 + size + 2
    elif "content-length" in hdrs:
        want = int(hdrs["content-length"])
        if len(rest) < want:
            raise ValueError("body cut short: %d of %d bytes" % (len(rest), want))
        body = rest[:want]
    return int(line[1]), hdrs, body


# ---------------------------------------------------------------- workers

def _rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def workers(state_dir):
    """{pid: (comm, RSS KiB)} of every host's FastCGI workers (the workers
    of each host's pools, shop.pool_workers)."""
    out = {}
    for name in sorted(os.listdir(state_dir)):
        if not name.startswith("host"):
            continue
        for svc in ("auth", "product", "order"):
            _, pids = shop.pool_workers(os.path.join(state_dir, name), svc)
            for pid in pids:
                out[pid] = (svc + ".fcgi", _rss_kib(pid))
    return out
