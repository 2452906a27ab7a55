"""test_edge.py: the "Everywhere" conventions of the contract, seen from a
client through the edge: request ids, problem+json on unknown paths and wrong
methods, /internal/ hidden, body limits and media types, health."""
import shop
from shop import assert_problem, call


def test_health_endpoints_answer_ok():
    for svc in ("auth", "products", "orders"):
        r = call("GET", "/%s/health" % svc)
        assert r.status == 200, (svc, r)
        assert r.json == {"status": "ok", "db": "ok"}, r


def test_request_id_is_echoed_when_valid():
    r = call("GET", "/products", headers={"X-Request-ID": "client-id_1.2-abc"})
    assert r.header("x-request-id") == "client-id_1.2-abc", r.headers


def test_request_id_is_replaced_when_invalid():
    for bad in ("has space", "x" * 129, "semi;colon"):
        r = call("GET", "/products", headers={"X-Request-ID": bad})
        rid = r.header("x-request-id")
        assert rid and rid != bad, (bad, rid)


def test_request_id_made_when_absent_and_in_problem_body():
    r = call("GET", "/products/999999999999")
    assert_problem(r, 404, "not_found")
    assert r.header("x-request-id") == r.json["request_id"]


def test_unknown_path_is_404_problem():
    for path in ("/nope", "/auth/nope", "/products/abc", "/orders/1/nope"):
        r = call("GET", path)
        assert_problem(r, 404, "not_found")


def test_internal_is_404_at_the_edge_whoever_asks():
    for method, path in (("POST", "/internal/reservations"), ("GET", "/internal/reservations/1"),
                         ("GET", "/internal/")):
        r = call(method, path, body={} if method == "POST" else None,
                 token=shop.admin_token(), headers={"X-Service-Token": "guess"})
        assert_problem(r, 404)


def test_wrong_method_is_405_with_allow():
    r = call("DELETE", "/products")
    assert_problem(r, 405, "method_not_allowed")
    allow = r.header("allow")
    assert allow and "GET" in allow and "POST" in allow, allow
    r = call("PUT", "/auth/login", body={})
    assert_problem(r, 405)
    assert "POST" in r.header("allow")


def test_body_over_64k_is_413():
    raw = b'{"email": "' + b"a" * (65 * 1024) + b'", "password": "x"}'
    r = call("POST", "/auth/register", raw=raw, headers={"Content-Type": "application/json"})
    assert_problem(r, 413, "payload_too_large")


def test_body_without_json_content_type_is_415():
    r = call("POST", "/auth/login", raw=b'{"email":"a@b.c","password":"12345678"}',
             headers={"Content-Type": "text/plain"})
    assert_problem(r, 415, "unsupported_media_type")
    r = call("POST", "/auth/login", raw=b'{"email":"a@b.c","password":"12345678"}')
    assert_problem(r, 415, "unsupported_media_type")


def test_charset_parameter_is_accepted():
    r = call("POST", "/auth/login", raw=b'{"email":"nobody@example.test","password":"12345678"}',
             headers={"Content-Type": "application/json; charset=utf-8"})
    assert_problem(r, 401, "invalid_credentials")


def test_malformed_json_is_400():
    for raw in (b'{"email": ', b"{'email': 'x'}", b'{"a":1} x', b"NaN"):
        r = call("POST", "/auth/login", raw=raw, headers={"Content-Type": "application/json"})
        assert_problem(r, 400, "malformed_json")


def test_non_object_body_is_422():
    r = call("POST", "/auth/login", raw=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert_problem(r, 422, "validation_failed")


def test_responses_never_leak_internals():
    r = call("POST", "/auth/register", body={"email": "x" * 300, "password": 5})
    assert_problem(r, 422, "validation_failed")
    text = r.body.decode()
    for leak in ("SELECT", "INSERT", "argon2", "$argon", "Traceback", "mysql"):
        assert leak not in text, text


def test_bodiless_post_without_content_length_is_not_refused():
    """curl -X POST sends no Content-Length for an empty body; the edge must
    not let lighttpd answer that with an HTML 411."""
    # The token first: the edge closes a connection whose request has not
    # arrived within its `timeout http-request`, and a login can be slow.
    token = shop.admin_token()
    data = shop.raw_exchange(b"POST /orders/999999999/cancel HTTP/1.1\r\nHost: x\r\n"
                             b"Authorization: Bearer " + token.encode() +
                             b"\r\nConnection: close\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404"), head
    assert b"application/problem+json" in head.lower(), head
    assert b'"code":"not_found"' in body, body
