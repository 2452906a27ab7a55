"""test_openapi.py: api/openapi.yaml and the running services agree.

Every response the suite receives is checked against the spec by Prism's
validating proxy (run.py --prism, see shop.call).  This file adds what a
proxy cannot see: every documented path is asked with a method no route has
(OPTIONS), and the Allow header must list exactly the documented methods;
and, per operation, the cheap error answers (no token, a bad body, an
unknown id) must be statuses that operation documents, with the problem
`code` its spec response lists for that status."""
import json
import os
import subprocess

import shop
from shop import assert_problem, call

METHODS = {"get", "post", "put", "patch", "delete"}
MISSING_ID = "999999999"

# A body each operation with a request body accepts, so the answer for an
# unknown id is 404 and not a body error.  An operation added to the spec
# with a body and no entry here fails test_unknown_ids_...
VALID_BODY = {
    "setUserRole": {"role": "customer"},
    "replaceProduct": {"name": "Mug", "price_cents": 100, "currency": "EUR", "status": "active"},
    "patchProduct": {"name": "Mug"},
    "adjustStock": {"delta": 1},
    "archiveProduct": {},           # no body needed; {} is the one allowed
    "cancelOrder": {},
}


def _spec():
    # Debian's python3-yaml (scripts/deps), whatever python runs the tests.
    out = subprocess.run(
        ["/usr/bin/python3", "-c",
         "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
         os.path.join(shop.REPO, "api", "openapi.yaml")],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def _deref(spec, node):
    """Follows a local $ref (#/a/b/c) until a non-reference node."""
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _operations(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method.upper(), op


def _problem_codes(spec, op, status):
    """The `code` values op's spec response for `status` allows (the enum its
    problem+json schema adds to Problem), and that response's status const.
    None when op does not document `status` at all."""
    resp = op["responses"].get(str(status))
    if resp is None:
        return None
    resp = _deref(spec, resp)
    schema = _deref(spec, resp["content"]["application/problem+json"]["schema"])
    codes, const = None, None
    for part in schema.get("allOf", [schema]):
        props = _deref(spec, part).get("properties", {})
        if "enum" in props.get("code", {}):           # every part must allow it
            enum = set(props["code"]["enum"])
            codes = enum if codes is None else codes & enum
        const = props.get("status", {}).get("const", const)
    return codes or set(), const


def _needs_token(op):
    return {} not in op.get("security", [])


def _assert_documented(spec, path, method, op, r, status, code):
    assert_problem(r, status, code)
    documented = _problem_codes(spec, op, status)
    assert documented is not None, "%s %s answered %d, which its spec does not list" % (
        method, path, status)
    assert code in documented[0], "%s %s: %d %s not among the documented codes %s" % (
        method, path, status, code, sorted(documented[0]))


def test_every_documented_path_has_exactly_the_documented_methods():
    spec = _spec()
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    assert len(paths) >= 16, sorted(paths)
    for path, item in paths.items():
        url = path.replace("{id}", "1")
        documented = {m.upper() for m in item if m in METHODS}
        if "GET" in documented:         # a GET is answered to HEAD too
            documented.add("HEAD")
        r = call("OPTIONS", url)
        assert_problem(r, 405, "method_not_allowed")
        allow = {m.strip() for m in r.header("allow").split(",")}
        assert allow == documented, (path, sorted(allow), sorted(documented))


def test_internal_paths_are_not_documented_as_public():
    assert not [p for p in _spec()["paths"] if p.startswith("/internal")]


def test_every_error_response_in_the_spec_names_its_status_and_codes():
    """The per-operation tables the tests below (and Prism) check against:
    every 4xx/5xx response of every operation is a Problem whose `status` is
    pinned to the response's status and whose `code` is a documented code."""
    spec = _spec()
    all_codes = set(spec["components"]["schemas"]["Problem"]["properties"]["code"]["enum"])
    for path, method, op in _operations(spec):
        for status in op["responses"]:
            if int(status) < 400:
                continue
            codes, const = _problem_codes(spec, op, status)
            assert const == int(status), (method, path, status, const)
            assert codes and codes <= all_codes, (method, path, status, sorted(codes))


def test_operations_that_need_a_token_answer_401_as_documented():
    spec = _spec()
    checked = 0
    for path, method, op in _operations(spec):
        url = path.replace("{id}", MISSING_ID)
        body = {} if "requestBody" in op else None
        for token in ([None] if _needs_token(op) else []) + (
                ["not.a.jwt"] if any("bearerAuth" in s for s in op.get("security", [])) else []):
            r = call(method, url, body, token=token)
            _assert_documented(spec, path, method, op, r, 401, "unauthorized")
            assert (r.header("www-authenticate") or "").startswith("Bearer"), (method, path, r.headers)
            checked += 1
    assert checked >= 15, checked


def test_body_errors_are_documented_per_operation():
    """415, 400 and 413 for every operation that takes a body (the route
    layer answers them before any handler looks at the id)."""
    spec = _spec()
    admin = shop.admin_token()
    big = b'{"name": "' + b"x" * (65 << 10) + b'"}'
    checked = 0
    for path, method, op in _operations(spec):
        if "requestBody" not in op:
            continue
        url = path.replace("{id}", MISSING_ID)
        token = admin if _needs_token(op) else None
        for raw, ctype, status, code in (
                (b'{}', "text/plain", 415, "unsupported_media_type"),
                (b'{"a": ', "application/json", 400, "malformed_json"),
                (big, "application/json", 413, "payload_too_large")):
            r = call(method, url, raw=raw, token=token, headers={"Content-Type": ctype})
            _assert_documented(spec, path, method, op, r, status, code)
            checked += 1
    assert checked >= 3 * 10, checked


def test_unknown_ids_answer_404_as_documented():
    spec = _spec()
    admin = shop.admin_token()
    checked = 0
    for path, method, op in _operations(spec):
        if "{id}" not in path:
            continue
        body = None
        if "requestBody" in op:
            assert op["operationId"] in VALID_BODY, "no VALID_BODY for " + op["operationId"]
            body = VALID_BODY[op["operationId"]]
        headers = {"If-Match": '"1"'} if method in ("PUT", "PATCH") and path.startswith("/products") else {}
        r = call(method, path.replace("{id}", MISSING_ID), body, token=admin, headers=headers)
        _assert_documented(spec, path, method, op, r, 404, "not_found")
        checked += 1
    assert checked >= 9, checked
