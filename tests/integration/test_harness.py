"""test_harness.py: the failure tests' load client (load.py) counts what it
claims to count.  A local server that answers every request with something a
client cannot read (a body cut short, a bad status line, a header line too
long, the connection closed without an answer) stands in for the edge; the
load must record every one of those as a failed request and keep all its
threads running, and a load whose thread died must refuse to summarise.
Does not touch the stack."""
import contextlib
import socket
import threading
import time

import load
import shop

BROKEN = (
    # IncompleteRead: a body shorter than its Content-Length
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\"",
    # BadStatusLine
    b"HTTP/1.1 two hundred\r\n\r\n",
    # LineTooLong (http.client reads at most 65536 bytes per header line)
    b"HTTP/1.1 200 OK\r\nX-Long: " + b"x" * 70000 + b"\r\n\r\n",
    # RemoteDisconnected: closed before a status line
    b"",
)


@contextlib.contextmanager
def _broken_edge():
    """A TCP server on 127.0.0.1 answering each request with the next of
    BROKEN; yields its URL and the number of answers given so far."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    srv.settimeout(0.2)
    stop = threading.Event()
    served = [0]

    def serve():
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            with c:
                try:
                    c.settimeout(2)
                    c.recv(65536)
                    c.sendall(BROKEN[served[0] % len(BROKEN)])
                    served[0] += 1
                except OSError:
                    pass
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield "http://127.0.0.1:%d" % srv.getsockname()[1], served
    finally:
        stop.set()
        t.join()
        srv.close()


@contextlib.contextmanager
def _edge_at(url):
    old = shop.STACK.get("SHOP_URL")
    prism = shop.STACK.pop("SHOP_PRISM_URL", None)    # the proxy forwards to the real edge
    shop.STACK["SHOP_URL"] = url
    try:
        yield
    finally:
        if prism is not None:
            shop.STACK["SHOP_PRISM_URL"] = prism
        if old is None:
            shop.STACK.pop("SHOP_URL", None)
        else:
            shop.STACK["SHOP_URL"] = old


def _load():
    users = [({"id": 1}, "a@example.test", "token-a"), ({"id": 2}, "b@example.test", "token-b")]
    return load.Load(users, hot=[1, 2], cold=[3], threads=3, pause=0.01, timeout=5.0,
                     key_prefix="harness")


def test_load_counts_unreadable_answers_as_failed():
    with _broken_edge() as (url, served), _edge_at(url):
        ld = _load()
        ld.start()
        time.sleep(1.5)
        alive = sum(t.is_alive() for t in ld._threads)
        ld.stop()
    assert alive == ld.threads, "%d of %d load threads died on an unreadable answer" % (
        ld.threads - alive, ld.threads)
    s = ld.summary()
    attempts = sum(len(r.attempts) for r in s["all"])
    # Every answer the server gave is an attempt the load recorded (the
    # server may have answered a last one the client was still reading).
    assert s["requests"] > 0 and attempts >= served[0] - ld.threads, (attempts, served[0])
    assert s["failed"] == s["requests"], s["by_status"]
    assert all(r.status == 0 and r.error for r in s["all"]), s["all"][:5]
    errors = " ".join(r.error for r in s["all"])
    for name in ("IncompleteRead", "BadStatusLine", "LineTooLong", "RemoteDisconnected"):
        assert name in errors, (name, errors[:500])


def test_load_with_a_dead_thread_refuses_to_summarise():
    with _broken_edge() as (url, _), _edge_at(url):
        ld = _load()
        ld.kinds = None             # the mix itself breaks: every thread dies at once
        hook, threading.excepthook = threading.excepthook, lambda args: None
        try:
            ld.start()
            time.sleep(0.3)
            ld.stop()
        finally:
            threading.excepthook = hook
    assert len(ld.died) == ld.threads, ld.died
    try:
        ld.summary()
    except AssertionError as e:
        assert "died" in str(e), e
    else:
        raise AssertionError("summary() of a load whose threads died did not fail")


def test_gap_is_the_longest_stretch_without_a_success_counted_from_the_fault():
    ld = _load()
    ld.t0, ld.t1 = 100.0, 120.0

    def rec(end, status):
        r = load.Rec("get")
        r.t_start, r.t_end, r.status, r.first_status = end - 0.1, end, status, status
        r.attempts.append((status, None, False))
        return r
    # successes every 0.5 s, then only 503s from 105.0 to 109.0, then successes again
    ld.records = [rec(100.0 + i / 2, 200) for i in range(1, 11)] + \
                 [rec(105.0 + i / 2, 503) for i in range(1, 8)] + \
                 [rec(109.0 + i / 2, 200) for i in range(0, 23)]
    s = ld.summary()
    assert abs(s["gap"] - 4.0) < 1e-9 and abs(s["gap_at"] - 5.0) < 1e-9, (s["gap"], s["gap_at"])
    assert s["failed"] == 7, s["failed"]
    ld.fault_at = 105.75            # struck while the load was already quiet
    s = ld.summary()
    assert abs(s["gap"] - 3.25) < 1e-9 and abs(s["gap_at"] - 5.75) < 1e-9, (s["gap"], s["gap_at"])


@contextlib.contextmanager
def _busy_edge(busy):
    """An HTTP server on 127.0.0.1 answering the first `busy` requests with
    409 idempotency_in_progress (Retry-After: 0) and every later one with
    201 and an order; yields its URL and the Idempotency-Keys it was sent."""
    import http.server
    import json
    keys = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            keys.append(self.headers.get("Idempotency-Key"))
            if len(keys) <= busy:
                status, body = 409, {"code": "idempotency_in_progress", "status": 409}
            else:
                status, body = 201, {"id": 7}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 409:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield "http://127.0.0.1:%d" % srv.server_address[1], keys
    finally:
        srv.shutdown()
        t.join()
        srv.server_close()


def test_order_told_in_progress_is_asked_again_with_its_key():
    # A key's first request still running (HAProxy may have resent the
    # client's only attempt): the client comes back until it is answered.
    import random
    for busy, status in ((3, 201), (load.IN_PROGRESS_TRIES + 5, 409)):
        with _busy_edge(busy) as (url, keys), _edge_at(url):
            r = _load()._order(random.Random(1))
        assert r.status == status, (busy, r)
        assert len(set(keys)) == 1 and keys[0] == r.key, keys
        if status == 201:
            assert len(keys) == busy + 1 and r.ok and r.order_id == 7 and not r.deferred, (keys, r)
        else:
            # still busy after the retries: deferred (the failure tests
            # retry it once the stack has settled), not failed
            assert len(keys) == load.IN_PROGRESS_TRIES + 1 and r.deferred, (keys, r)
