"""test_auth.py: the auth service through the public edge, as a client sees
it: every row of the auth table, every error it may answer, token forgery
against a protected endpoint, refresh rotation and reuse detection, and an
independent check (openssl) that access tokens are standard ES256 JWTs
verifiable from the published JWKS alone."""
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import tempfile
import time

import shop
from shop import assert_problem, call, register, login, unique_email, PASSWORD
from test_notify import _revoked_everywhere

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


# ------------------------------------------------------------ helpers

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_parts(token):
    h, p, s = token.split(".")
    return json.loads(unb64url(h)), json.loads(unb64url(p)), unb64url(s)


def jwt_build(header, claims, sig=b""):
    return "%s.%s.%s" % (b64url(json.dumps(header).encode()),
                         b64url(json.dumps(claims).encode()), b64url(sig))


def assert_user(u, email=None):
    assert set(u) == {"id", "email", "name", "role", "created_at"}, u
    assert isinstance(u["id"], int) and u["id"] > 0, u
    assert RFC3339_UTC.match(u["created_at"]), u
    if email is not None:
        assert u["email"] == email, u


def assert_no_secrets(r):
    assert b"argon2" not in r.body and b"password_hash" not in r.body, r


def assert_unauthorized(r, code="unauthorized"):
    assert_problem(r, 401, code)
    assert (r.header("www-authenticate") or "").startswith("Bearer"), r.headers


def refresh(tok):
    return call("POST", "/auth/refresh", {"refresh_token": tok})


def der_int(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b


def rs_to_der(sig):
    body = der_int(sig[:32]) + der_int(sig[32:])
    return b"\x30" + bytes([len(body)]) + body


# SubjectPublicKeyInfo DER prefix for an uncompressed P-256 point.
P256_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")


def jwk_to_pem(jwk):
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256", jwk
    x, y = unb64url(jwk["x"]), unb64url(jwk["y"])
    assert len(x) == 32 and len(y) == 32, jwk
    der = P256_SPKI_PREFIX + b"\x04" + x + y
    lines = [base64.b64encode(der)[i:i + 64].decode() for i in range(0, len(base64.b64encode(der)), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def openssl_verify(pem, signing_input, der_sig):
    with tempfile.TemporaryDirectory() as d:
        paths = {n: os.path.join(d, n) for n in ("pub.pem", "sig.der", "data")}
        for name, data in (("pub.pem", pem.encode()), ("sig.der", der_sig), ("data", signing_input)):
            with open(paths[name], "wb") as f:
                f.write(data)
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", paths["pub.pem"],
                            "-signature", paths["sig.der"], paths["data"]],
                           capture_output=True, text=True)
        return r.returncode == 0 and "Verified OK" in r.stdout


def jwks():
    r = call("GET", "/auth/jwks.json")
    assert r.status == 200, r
    return {k["kid"]: k for k in r.json["keys"]}


def bin_dir():
    return os.environ.get("SHOP_BIN_DIR") or os.path.join(shop.REPO, "build")


def create_user_cli(email, role, password, *name):
    env = dict(os.environ, SHOP_CONFIG=os.path.join(shop.STACK["SHOP_STATE_DIR"], "etc", "auth.conf"),
               SHOP_NEW_USER_PASSWORD=password)
    return subprocess.run([os.path.join(bin_dir(), "auth.fcgi"), "--create-user", email, role] + list(name),
                          env=env, capture_output=True, text=True, timeout=60)


# ------------------------------------------------------------ register

def test_auth_register_returns_user_and_location():
    email = unique_email("reg")
    r = call("POST", "/auth/register", {"email": email, "password": PASSWORD, "name": "Ada Lovelace"})
    assert r.status == 201, r
    assert_no_secrets(r)
    u = r.json
    assert_user(u, email)
    assert u["name"] == "Ada Lovelace" and u["role"] == "customer", u
    assert r.header("location") == "/auth/users/%d" % u["id"], r.headers
    t = login(email)
    got = call("GET", r.header("location"), token=t["access_token"])
    assert got.status == 200 and got.json == u, got
    # name is optional: absent is null
    r = call("POST", "/auth/register", {"email": unique_email(), "password": PASSWORD})
    assert r.status == 201 and r.json["name"] is None, r


def test_auth_register_email_trimmed_and_case_insensitive():
    local = shop.unique("MiXed")
    email = "%s@Example.TEST" % local
    r = call("POST", "/auth/register", {"email": "  %s \t" % email, "password": PASSWORD})
    assert r.status == 201, r
    assert r.json["email"] == email, r                      # trimmed, case kept
    for variant in (email.lower(), email.upper(), " " + email.lower()):
        r = call("POST", "/auth/register", {"email": variant, "password": PASSWORD})
        assert_problem(r, 409, "email_taken")
    t = login(email.upper())
    assert t["user"]["email"] == email, t
    # Non-ASCII case folds too, accents do not.
    u = shop.unique("uni")
    r = call("POST", "/auth/register", {"email": "%s-Ä@example.test" % u, "password": PASSWORD})
    assert r.status == 201, r
    r = call("POST", "/auth/register", {"email": "%s-ä@example.test" % u, "password": PASSWORD})
    assert_problem(r, 409, "email_taken")
    r = call("POST", "/auth/register", {"email": "%s-a@example.test" % u, "password": PASSWORD})
    assert r.status == 201, r


def test_auth_register_validation():
    def fields(r):
        assert_problem(r, 422, "validation_failed")
        return sorted({e["field"] for e in r.json["errors"]})

    assert fields(call("POST", "/auth/register", {})) == ["email", "password"]
    for bad in ("", "plain", "a@", "@b.test", "a@@b.test", "a@b@c.test", "a b@c.test",
                "a@b .test", "a\u0000@b.test", 1, None, True, ["a@b.test"],
                ".a@b.test", "a..b@c.test", "a@b..test", "a@-b.test", "a@b.test.", "a<b>@c.test",
                "\u00a0a@b.test", "a\u3000@b.test", "a@b\u200b.test",
                "a\u00ad@b.test", "a\ufe0f@b.test", "a\U000e0041@b.test", "a@b\u3164.test",
                "a@x\u2603y.test", "a@shop\u20ac.test", "a@\ue000.test", "a@b\u0301.test",
                "x" * 248 + "@b.test"):           # 255 characters: too long
        body = {"email": bad, "password": PASSWORD}
        assert fields(call("POST", "/auth/register", body)) == ["email"], bad
    for bad in ("short7!", "p" * 129, 12345678, None, "ab\u0000cdefgh"):
        body = {"email": unique_email(), "password": bad}
        assert fields(call("POST", "/auth/register", body)) == ["password"], bad
    for bad in ("n" * 201, 5, ["x"]):
        body = {"email": unique_email(), "password": PASSWORD, "name": bad}
        assert fields(call("POST", "/auth/register", body)) == ["name"], bad
    body = {"email": unique_email(), "password": PASSWORD, "role": "admin"}
    assert fields(call("POST", "/auth/register", body)) == ["role"]       # unknown field
    # every bad field is named at once
    r = call("POST", "/auth/register", {"email": "nope", "password": "x", "name": 1, "extra": 1})
    assert fields(r) == ["email", "extra", "name", "password"]
    # limits: 254-char email, 8 Unicode characters (16 bytes), 200-char name
    email = ("e" * (254 - len("@example.test") - 13)) + shop.unique("")[-13:] + "@example.test"
    assert len(email) == 254
    r = call("POST", "/auth/register", {"email": email, "password": "ääääääää", "name": "n" * 200})
    assert r.status == 201, r
    login(email, "ääääääää")


def test_auth_register_http_errors():
    r = call("POST", "/auth/register", raw=json.dumps({"email": unique_email(), "password": PASSWORD}).encode(),
             headers={"Content-Type": "text/plain"})
    assert_problem(r, 415, "unsupported_media_type")
    r = call("POST", "/auth/register", raw=b'{"email": "a@b.test", "password": ',
             headers={"Content-Type": "application/json"})
    assert_problem(r, 400, "malformed_json")
    big = json.dumps({"email": unique_email(), "password": PASSWORD, "name": "n" * (70 * 1024)}).encode()
    r = call("POST", "/auth/register", raw=big, headers={"Content-Type": "application/json"})
    assert_problem(r, 413, "payload_too_large")
    # Any JSON value is well-formed, but only an object is a body: 422.
    for raw in (b'["a"]', b'1', b' true ', b'-1.5e3', b'"x"', b'null'):
        r = call("POST", "/auth/register", raw=raw, headers={"Content-Type": "application/json"})
        assert_problem(r, 422, "validation_failed")
    # Half a surrogate pair is no character: not JSON text (RFC 8259 8.2).
    for raw in (b'{"email": "a@b.test", "password": "pass\\ud800word"}',
                b'{"email": "a@b.test", "password": "pass\\udc00word"}', b'1 2'):
        r = call("POST", "/auth/register", raw=raw, headers={"Content-Type": "application/json"})
        assert_problem(r, 400, "malformed_json")
    r = call("POST", "/auth/register", raw=json.dumps({"email": unique_email(), "password": PASSWORD}).encode(),
             headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 201, r


def test_auth_concurrent_registration_same_email():
    email = unique_email("race")
    rs = shop.parallel(6, lambda i: call("POST", "/auth/register",
                                         {"email": email if i % 2 else email.upper(), "password": PASSWORD}))
    statuses = sorted(r.status for r in rs)
    assert statuses == [201, 409, 409, 409, 409, 409], rs
    for r in rs:
        if r.status == 409:
            assert_problem(r, 409, "email_taken")


# ------------------------------------------------------------ login

def test_auth_login_tokens():
    u = register(name="Login")
    r = call("POST", "/auth/login", {"email": u["email"], "password": PASSWORD})
    assert r.status == 200, r
    assert_no_secrets(r)
    t = r.json
    assert set(t) == {"access_token", "token_type", "expires_in", "refresh_token", "user"}, t
    assert t["token_type"] == "Bearer" and t["expires_in"] == 900, t
    assert t["user"] == u, t
    assert re.match(r"^[A-Za-z0-9_-]{43}$", t["refresh_token"]), t
    assert "no-store" in (r.header("cache-control") or ""), r.headers
    header, claims, sig = jwt_parts(t["access_token"])
    assert header["alg"] == "ES256" and header["kid"] in jwks(), header
    assert claims["iss"] == "shop-auth" and claims["aud"] == "shop", claims
    assert claims["sub"] == str(u["id"]) and claims["role"] == "customer", claims
    assert claims["exp"] - claims["iat"] == 900 and abs(claims["iat"] - time.time()) < 60, claims
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16, claims
    assert len(sig) == 64, len(sig)                         # RFC 7518: R || S
    t2 = login(u["email"])
    assert jwt_parts(t2["access_token"])[1]["jti"] != claims["jti"]
    assert t2["refresh_token"] != t["refresh_token"]


def test_auth_login_failures_look_the_same():
    u = register()
    wrong = call("POST", "/auth/login", {"email": u["email"], "password": "wrong password"})
    unknown = call("POST", "/auth/login", {"email": unique_email("nobody"), "password": PASSWORD})
    short = call("POST", "/auth/login", {"email": u["email"], "password": "x"})
    bad_email = call("POST", "/auth/login", {"email": "not-an-email", "password": PASSWORD})
    for r in (wrong, unknown, short, bad_email):
        assert_problem(r, 401, "invalid_credentials")
        body = dict(r.json)
        body.pop("request_id")
        assert body == {k: v for k, v in wrong.json.items() if k != "request_id"}, r


def _writer_socket():
    """The root socket of the Galera node the services write to (the DB
    listener's current server), asked through the listener itself."""
    conf = {}
    with open(os.path.join(shop.STACK["SHOP_STATE_DIR"], "etc", "auth.conf")) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.strip().split("=", 1)
                conf[k] = v
    out = subprocess.run(["mariadb", "-h", conf["DB_HOST"], "-P", conf["DB_PORT"],
                          "-u", conf["DB_USER"], "-p" + conf["DB_PASSWORD"], "-N", "-B",
                          "-e", "SELECT @@wsrep_node_name"],
                         capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    assert out.startswith("node"), out
    return shop.STACK["SHOP_ROOT_SOCKETS"].split()[int(out[4:]) - 1]


def test_auth_login_loses_to_a_password_change_committed_while_it_was_checked():
    """A login checks the password (Argon2id, outside any transaction) and
    then issues its tokens.  A password change that holds the user's row
    meanwhile and commits first wins: the login gets 401, not a session of
    the old password (which would outlive the change: its refresh token was
    not there to be revoked)."""
    u = register()
    other = register(password="another password 1")
    held = subprocess.Popen(
        ["mariadb", "-uroot", "--socket=" + _writer_socket(), "-N", "-B", "-e",
         "BEGIN; SELECT id FROM shop_auth.users WHERE id = %d FOR UPDATE; DO SLEEP(2);"
         " UPDATE shop_auth.users u JOIN shop_auth.users o ON o.id = %d"
         " SET u.password_hash = o.password_hash WHERE u.id = %d; COMMIT;"
         % (u["id"], other["id"], u["id"])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)                 # the row is held
        r = call("POST", "/auth/login", {"email": u["email"], "password": PASSWORD})
    finally:
        out, err = held.communicate(timeout=30)
    assert held.returncode == 0, err
    assert_problem(r, 401, "invalid_credentials")
    t = login(u["email"], "another password 1")
    assert t["user"]["id"] == u["id"], t


def test_auth_login_unknown_email_costs_the_same():
    u = register()

    def timed(email, pw):
        t0 = time.monotonic()
        r = call("POST", "/auth/login", {"email": email, "password": pw})
        assert r.status == 401, r
        return time.monotonic() - t0

    wrong = sorted(timed(u["email"], "wrong password") for _ in range(3))[1]
    unknown = sorted(timed(unique_email("ghost"), "wrong password") for _ in range(3))[1]
    # Without the dummy hash an unknown email answers in about a millisecond.
    assert unknown > 0.5 * wrong, (unknown, wrong)


def test_auth_login_validation():
    r = call("POST", "/auth/login", {"email": unique_email()})
    assert_problem(r, 422, "validation_failed")
    assert [e["field"] for e in r.json["errors"]] == ["password"]
    r = call("POST", "/auth/login", {"email": unique_email(), "password": PASSWORD, "remember": True})
    assert_problem(r, 422, "validation_failed")
    assert [e["field"] for e in r.json["errors"]] == ["remember"]
    r = call("POST", "/auth/login", {"email": 5, "password": 5})
    assert_problem(r, 422, "validation_failed")


def test_auth_passwords_stored_as_argon2id():
    u = register()
    rows = shop.sql("SELECT password_hash FROM shop_auth.users WHERE id = %d" % u["id"])
    h = rows[0][0]
    assert h.startswith("$argon2id$v=19$"), h
    m, t = re.search(r"m=(\d+),t=(\d+)", h).groups()
    assert int(m) >= 19 * 1024 and int(t) >= 2, h
    assert PASSWORD not in h


# ------------------------------------------------------------ access tokens

def test_auth_jwks_verifies_tokens_with_openssl():
    keys = jwks()
    assert keys, keys
    for k in keys.values():
        assert k["alg"] == "ES256" and k["use"] == "sig" and "d" not in k, k
    t = login(register()["email"])["access_token"]
    header, _, sig = jwt_parts(t)
    pem = jwk_to_pem(keys[header["kid"]])
    signing_input = t.rsplit(".", 1)[0].encode()
    assert len(sig) == 64
    assert openssl_verify(pem, signing_input, rs_to_der(sig))
    # the check can fail: another signing input does not verify
    assert not openssl_verify(pem, signing_input + b"x", rs_to_der(sig))


def test_auth_me_and_forged_tokens():
    u = register()
    t = login(u["email"])["access_token"]
    r = call("GET", "/auth/me", token=t)
    assert r.status == 200 and r.json == u, r
    assert_no_secrets(r)

    header, claims, sig = jwt_parts(t)
    signing_input = t.rsplit(".", 1)[0]
    head_b64 = signing_input.split(".")[0]
    admin_claims = dict(claims, role="admin")
    public_pem = open(os.path.join(shop.STACK["SHOP_STATE_DIR"], "secrets", "jwt", "public",
                                   header["kid"] + ".pem"), "rb").read()
    hs_header = {"alg": "HS256", "typ": "JWT", "kid": header["kid"]}
    hs_input = "%s.%s" % (b64url(json.dumps(hs_header).encode()), b64url(json.dumps(admin_claims).encode()))
    flipped = bytearray(sig)
    flipped[5] ^= 1
    forged = {
        "tampered signature": signing_input + "." + b64url(bytes(flipped)),
        "tampered payload": head_b64 + "." + b64url(json.dumps(admin_claims).encode()) + "." + b64url(sig),
        "alg none": jwt_build({"alg": "none", "typ": "JWT", "kid": header["kid"]}, admin_claims),
        "alg none, signature kept": jwt_build({"alg": "none", "kid": header["kid"]}, claims, sig),
        "HS256 keyed with the public key": hs_input + "." + b64url(
            hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest()),
        "HS256 keyed with the JWK PEM": hs_input + "." + b64url(
            hmac.new(jwk_to_pem(jwks()[header["kid"]]).encode(), hs_input.encode(), hashlib.sha256).digest()),
        "unknown kid": jwt_build(dict(header, kid="nope"), claims, sig),
        "DER signature": signing_input + "." + b64url(rs_to_der(sig)),
        "truncated": t[:-5],
        "garbage": "not.a.token",
        "empty": "",
    }
    for name, tok in forged.items():
        r = call("GET", "/auth/me", headers={"Authorization": "Bearer " + tok})
        assert r.status == 401, (name, r)
        assert_unauthorized(r)
    assert_unauthorized(call("GET", "/auth/me"))
    assert_unauthorized(call("GET", "/auth/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}))
    # A header without credentials is a malformed one, not none, on a public
    # route too (where no header at all is fine) ...
    for h in ("", "Bearer", "Bearer  "):
        r = call("GET", "/products?limit=1", headers={"Authorization": h})
        assert_unauthorized(r)
        assert r.json["request_id"] == r.header("x-request-id"), r
    assert call("GET", "/products?limit=1").status == 200
    # ... but not where the credentials are in the body.
    r = call("POST", "/auth/login", {"email": "nobody@example.test", "password": "wrong password"},
             headers={"Authorization": ""})
    assert_problem(r, 401, "invalid_credentials")
    # a bad token is refused even on a public route
    assert_unauthorized(call("GET", "/auth/jwks.json", token=forged["alg none"]))


def test_auth_methods_and_paths():
    r = call("DELETE", "/auth/me")
    assert_problem(r, 405, "method_not_allowed")
    assert "GET" in r.header("allow"), r.headers
    r = call("GET", "/auth/login")
    assert_problem(r, 405, "method_not_allowed")
    assert r.header("allow") == "POST", r.headers
    r = call("PUT", "/auth/users/1", {"role": "admin"})
    assert_problem(r, 405)
    assert set(r.header("allow").replace(" ", "").split(",")) == {"GET", "HEAD", "PATCH"}, r.headers
    for p in ("/auth/nope", "/auth/users/abc", "/auth/users/0", "/auth/users/1/x"):
        assert_problem(call("GET", p, token=shop.admin_token()), 404, "not_found")


def test_auth_health():
    r = call("GET", "/auth/health")
    assert r.status == 200 and r.json == {"status": "ok", "db": "ok"}, r


# ------------------------------------------------------------ refresh / logout

def test_auth_refresh_rotates_and_reuse_revokes_family():
    u = register()
    first = login(u["email"])
    other = login(u["email"])                       # another login: another family
    r = refresh(first["refresh_token"])
    assert r.status == 200, r
    second = r.json
    assert second["refresh_token"] != first["refresh_token"]
    assert second["user"] == u and second["token_type"] == "Bearer", second
    assert call("GET", "/auth/me", token=second["access_token"]).status == 200
    r = refresh(second["refresh_token"])
    assert r.status == 200, r
    third = r.json
    # replaying a spent token: 401, and the whole family dies
    assert_unauthorized(refresh(first["refresh_token"]))
    assert_unauthorized(refresh(third["refresh_token"]))
    assert_unauthorized(refresh(second["refresh_token"]))
    # ...and so do its access tokens issued until then, on every host (the
    # thief's among them: 401, revoked)...
    for t in (first, second, third):
        _revoked_everywhere("/auth/me", t["access_token"])
    # ...while the user's other login is untouched: its access token, issued
    # before the reuse, still works on every host and in every service, and
    # its refresh token refreshes.
    for n in (1, 2, 3):
        for path in ("/auth/me", "/orders"):
            r = call("GET", path, token=other["access_token"], base=shop.host_url(n))
            assert r.status == 200, (n, path, r)
    r = refresh(other["refresh_token"])
    assert r.status == 200, r
    assert call("GET", "/auth/me", token=r.json["access_token"]).status == 200
    # A client that sends its (here: no longer valid) access token with
    # every request can still refresh, log out and sign in.
    stale = {"Authorization": "Bearer " + first["access_token"][:-4] + "AAAA"}
    r = call("POST", "/auth/refresh", {"refresh_token": r.json["refresh_token"]}, headers=stale)
    assert r.status == 200, r
    r = call("POST", "/auth/logout", {"refresh_token": r.json["refresh_token"]}, headers=stale)
    assert r.status == 204, r
    r = call("POST", "/auth/login", {"email": u["email"], "password": shop.PASSWORD}, headers=stale)
    assert r.status == 200, r
    assert_unauthorized(call("GET", "/auth/me", headers=stale))


def test_auth_refresh_concurrent_same_token():
    t = login(register()["email"])
    rs = shop.parallel(8, lambda i: refresh(t["refresh_token"]))
    ok = [r for r in rs if r.status == 200]
    assert len(ok) == 1, rs                         # exactly one winner
    for r in rs:
        if r.status != 200:
            assert_unauthorized(r)
    # the losers replayed a spent token: the winner's successor is revoked too,
    # and so is the winner's access token, issued as the losers waited on the
    # token's lock ("every token descended from that login").
    for r in ok:
        assert_unauthorized(refresh(r.json["refresh_token"]))
        _revoked_everywhere("/auth/me", r.json["access_token"])


def test_auth_refresh_rejects_bad_tokens():
    for tok in ("", "x", "A" * 43, b64url(os.urandom(32)), b64url(os.urandom(31)), "A" * 1000):
        assert_unauthorized(refresh(tok))
    assert_problem(call("POST", "/auth/refresh", {}), 422, "validation_failed")
    assert_problem(call("POST", "/auth/refresh", {"refresh_token": 5}), 422, "validation_failed")
    r = call("POST", "/auth/refresh", {"refresh_token": b64url(os.urandom(32)), "x": 1})
    assert_problem(r, 422, "validation_failed")
    assert [e["field"] for e in r.json["errors"]] == ["x"]


def test_auth_refresh_tokens_stored_hashed_and_expire():
    t = login(register()["email"])
    raw = unb64url(t["refresh_token"])
    assert len(raw) == 32
    digest = hashlib.sha256(raw).hexdigest()
    rows = shop.sql("SELECT status FROM shop_auth.refresh_tokens WHERE token_hash = UNHEX('%s')" % digest)
    assert rows == [["active"]], rows
    rows = shop.sql("SELECT COUNT(*) FROM shop_auth.refresh_tokens WHERE HEX(token_hash) = HEX('%s')"
                    % t["refresh_token"])
    assert rows == [["0"]], rows
    shop.sql("UPDATE shop_auth.refresh_tokens SET expires_at = UTC_TIMESTAMP(3) - INTERVAL 1 SECOND "
             "WHERE token_hash = UNHEX('%s')" % digest)
    assert_unauthorized(refresh(t["refresh_token"]))


def test_auth_logout():
    u = register()
    t = login(u["email"])
    other = login(u["email"])
    r = call("POST", "/auth/logout", {"refresh_token": t["refresh_token"]})
    assert r.status == 204 and r.body == b"", r
    assert_unauthorized(refresh(t["refresh_token"]))
    # The login's access token dies on every host; the user's other login
    # goes on, in every service.
    _revoked_everywhere("/auth/me", t["access_token"])
    for n in (1, 2, 3):
        for path in ("/auth/me", "/orders"):
            r = call("GET", path, token=other["access_token"], base=shop.host_url(n))
            assert r.status == 200, (n, path, r)
    assert refresh(other["refresh_token"]).status == 200
    # logout of a rotated token ends that login
    t = login(u["email"])
    nxt = refresh(t["refresh_token"]).json
    assert call("POST", "/auth/logout", {"refresh_token": nxt["refresh_token"]}).status == 204
    assert_unauthorized(refresh(nxt["refresh_token"]))
    # unknown or malformed tokens: the same 204, nothing leaks
    for tok in (b64url(os.urandom(32)), "garbage", t["refresh_token"]):
        r = call("POST", "/auth/logout", {"refresh_token": tok})
        assert r.status == 204, r
    assert_problem(call("POST", "/auth/logout", {}), 422, "validation_failed")
    r = call("POST", "/auth/logout", raw=b"{", headers={"Content-Type": "application/json"})
    assert_problem(r, 400, "malformed_json")


# ------------------------------------------------------------ users

def test_auth_user_visibility():
    a, ta = shop.new_user()
    b, tb = shop.new_user()
    r = call("GET", "/auth/users/%d" % a["id"], token=ta)
    assert r.status == 200 and r.json == a, r
    hidden = call("GET", "/auth/users/%d" % b["id"], token=ta)
    missing = call("GET", "/auth/users/%d" % (10 ** 15), token=ta)
    assert_problem(hidden, 404, "not_found")
    assert_problem(missing, 404, "not_found")
    assert hidden.json["detail"] == missing.json["detail"]
    r = call("GET", "/auth/users/%d" % b["id"], token=shop.admin_token())
    assert r.status == 200 and r.json == b, r
    assert_problem(call("GET", "/auth/users/%d" % (10 ** 15), token=shop.admin_token()), 404, "not_found")
    assert_unauthorized(call("GET", "/auth/users/%d" % a["id"]))


def test_auth_the_last_admin_stays_admin():
    me = call("GET", "/auth/me", token=shop.admin_token()).json
    # Only the stack's admin is left an admin (earlier tests made others).
    shop.sql("UPDATE shop_auth.users SET role = 'customer' WHERE role = 'admin' AND id <> %d"
             % me["id"])
    path = "/auth/users/%d" % me["id"]
    for role in ("seller", "customer"):
        r = call("PATCH", path, {"role": role}, token=shop.admin_token())
        assert_problem(r, 409, "invalid_state")
    assert call("GET", path, token=shop.admin_token()).json["role"] == "admin"
    # With a second admin, either may step down; then the other is the last.
    u, _ = shop.new_user()
    r = call("PATCH", "/auth/users/%d" % u["id"], {"role": "admin"}, token=shop.admin_token())
    assert r.status == 200, r
    r = call("PATCH", "/auth/users/%d" % u["id"], {"role": "customer"}, token=shop.admin_token())
    assert r.status == 200 and r.json["role"] == "customer", r
    assert_problem(call("PATCH", path, {"role": "customer"}, token=shop.admin_token()),
                   409, "invalid_state")


def test_auth_role_change_by_admin_only():
    u, tu = shop.new_user()
    admin = shop.admin_token()
    path = "/auth/users/%d" % u["id"]
    r = call("PATCH", path, {"role": "seller"}, token=tu)
    assert_problem(r, 403, "forbidden")
    assert_unauthorized(call("PATCH", path, {"role": "seller"}))
    seller, ts = shop.new_user("seller")
    assert_problem(call("PATCH", path, {"role": "admin"}, token=ts), 403, "forbidden")

    t = login(u["email"])
    r = call("PATCH", path, {"role": "seller"}, token=admin)
    assert r.status == 200 and r.json == dict(u, role="seller"), r
    assert_no_secrets(r)
    # a refresh picks up the new role; so does a new login
    r = refresh(t["refresh_token"])
    assert r.status == 200 and jwt_parts(r.json["access_token"])[1]["role"] == "seller", r
    assert r.json["user"]["role"] == "seller"
    assert jwt_parts(login(u["email"])["access_token"])[1]["role"] == "seller"
    r = call("PATCH", path, raw=b'{"role":"customer"}', token=admin,
             headers={"Content-Type": "application/merge-patch+json"})
    assert r.status == 200 and r.json["role"] == "customer", r

    for body, field in (({"role": "root"}, "role"), ({"role": 1}, "role"), ({}, "role"),
                        ({"role": None}, "role"), ({"role": "admin", "email": "x@y.z"}, "email"),
                        ({"role": "Admin"}, "role")):
        r = call("PATCH", path, body, token=admin)
        assert_problem(r, 422, "validation_failed")
        assert field in [e["field"] for e in r.json["errors"]], (body, r)
    assert_problem(call("PATCH", "/auth/users/%d" % (10 ** 15), {"role": "seller"}, token=admin),
                   404, "not_found")
    r = call("PATCH", path, raw=b'{"role":"seller"}', token=admin, headers={"Content-Type": "text/plain"})
    assert_problem(r, 415, "unsupported_media_type")
    assert call("GET", path, token=admin).json["role"] == "customer"


def test_auth_demoted_admin_cannot_change_roles_with_their_older_token():
    # An admin's token outlives a demotion by up to the revocation's spread
    # (about 2 s); in that moment it must not make or unmake an admin.
    x, _ = shop.new_user()
    victim, _ = shop.new_user()
    admin = shop.admin_token()
    r = call("PATCH", "/auth/users/%d" % x["id"], {"role": "admin"}, token=admin)
    assert r.status == 200, r
    xt = login(x["email"])["access_token"]
    assert jwt_parts(xt)[1]["role"] == "admin"
    r = call("PATCH", "/auth/users/%d" % x["id"], {"role": "customer"}, token=admin)
    assert r.status == 200 and r.json["role"] == "customer", r
    r = call("PATCH", "/auth/users/%d" % victim["id"], {"role": "admin"}, token=xt)
    assert r.status in (401, 403), r
    if r.status == 403:
        assert_problem(r, 403, "forbidden")
    else:
        shop.assert_revoked(r)
    assert call("GET", "/auth/users/%d" % victim["id"], token=admin).json["role"] == "customer"


def test_auth_admin_from_stack():
    t = login(shop.STACK["SHOP_ADMIN_EMAIL"], shop.STACK["SHOP_ADMIN_PASSWORD"])
    assert t["user"]["role"] == "admin", t
    assert jwt_parts(t["access_token"])[1]["role"] == "admin"


def test_auth_create_user_cli():
    email = unique_email("cli")
    r = create_user_cli(email, "seller", "first password", "Cli User")
    assert r.returncode == 0, r
    t = login(email, "first password")
    assert t["user"]["role"] == "seller" and t["user"]["name"] == "Cli User", t
    # again for an existing email (any case): new role and password, old refresh tokens die
    r = create_user_cli(email.upper(), "admin", "second password")
    assert r.returncode == 0, r
    assert_unauthorized(refresh(t["refresh_token"]))
    # ...and its access tokens issued before die on every host, as after a
    # role or password change through the API (the events of both).
    _revoked_everywhere("/auth/me", t["access_token"])
    r = call("POST", "/auth/login", {"email": email, "password": "first password"})
    assert_problem(r, 401, "invalid_credentials")
    t2 = login(email, "second password")
    assert t2["user"]["role"] == "admin" and t2["user"]["id"] == t["user"]["id"], t2
    assert t2["user"]["name"] == "Cli User"
    for args in ((email, "root", "long enough"), ("not-an-email", "admin", "long enough"),
                 (email, "admin", "short")):
        r = create_user_cli(*args)
        assert r.returncode == 1 and r.stderr, (args, r)
    # The same role and password again (a repeated `stack up` does this for
    # its admin): nothing changes, the session lives on.
    r = create_user_cli(email, "admin", "second password")
    assert r.returncode == 0, r
    time.sleep(2.5)
    assert call("GET", "/auth/me", token=t2["access_token"]).status == 200
    assert refresh(t2["refresh_token"]).status == 200

