"""test_tokens.py: access tokens that must not pass, sent where they would do
harm: creating and editing products, listing and placing orders.  Each
forged token differs from one the services accept in exactly one respect
(expired, wrong iss or aud, another algorithm, an unknown kid): the tokens
are minted here with the stack's own signing key, and a control token minted
the same way with correct claims must be accepted by every endpoint first,
so a refusal is the services' check and not a minting mistake.  Every
refusal is 401 problem+json with WWW-Authenticate: Bearer, and does nothing.
The signatures are made with the openssl command line."""
import hashlib
import hmac
import json
import os
import subprocess
import time
import uuid

import shop
from shop import assert_problem, call
from test_auth import b64url, jwt_parts

_cache = {}


# ------------------------------------------------------------ signing

def _openssl(*args, data=None):
    r = subprocess.run(["openssl"] + list(args), input=data, capture_output=True, timeout=60)
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


def _der_to_rs(der, size):
    """An ECDSA DER signature (SEQUENCE of two INTEGERs) as JOSE's R || S."""
    assert der[0] == 0x30, der
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7f)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02, der
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\0")
        assert len(v) <= size
        out += v.rjust(size, b"\0")
        i += 2 + n
    return out


KEYS = {   # openssl genpkey arguments of the keys made here
    "p384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    "other-p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
}


def _key(name):
    """A PEM private key file: the stack's own signing key ("stack"), or one
    of KEYS, generated once."""
    if name == "stack":
        kid = _stack_kid()
        return os.path.join(shop.STACK["SHOP_STATE_DIR"], "secrets", "jwt", kid + ".key.pem")
    d = os.path.join(shop.STACK["SHOP_STATE_DIR"], "test-keys")      # goes with the stack
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, name + ".pem")
    if not os.path.exists(path):
        _openssl("genpkey", *KEYS[name], "-out", path)
    return path


def _stack_kid():
    if "kid" not in _cache:
        _cache["kid"] = jwt_parts(_seller()[1])[0]["kid"]
    return _cache["kid"]


P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _sign(key_pem, digest, signing_input, ec_size=None, high_s=False):
    """openssl's signature; for P-256, R || S with S in the half the caller
    asks for: ECDSA takes (R, S) and (R, n - S) alike, auth hands out only
    the low one (S <= n / 2), and the twin is a tampered token."""
    sig = _openssl("dgst", "-" + digest, "-sign", key_pem, data=signing_input)
    if not ec_size:
        return sig
    rs = _der_to_rs(sig, ec_size)
    if ec_size == 32:
        s = int.from_bytes(rs[32:], "big")
        if (s > P256_N // 2) != high_s:
            rs = rs[:32] + (P256_N - s).to_bytes(32, "big")
    return rs


def mint(header=None, claims=None, alg="ES256", key="stack", high_s=False):
    """A JWT whose claims are the seller's (fresh iat, exp, jti) with the
    given header and claim overrides (None drops one), signed as `alg` says
    with `key` ("stack": the stack's own signing key; else one of KEYS)."""
    seller, tok = _seller()          # first: making the seller changes its role
    now_ms = int(time.time() * 1000)
    now = now_ms // 1000
    base_claims = dict(jwt_parts(tok)[1], iat=now, exp=now + 600, jti=uuid.uuid4().hex)
    for k, v in (claims or {}).items():
        if v is None:
            base_claims.pop(k, None)
        else:
            base_claims[k] = v
    # iat_ms (the issue time in ms, for the revocation list) names iat's
    # second, as in every token auth signs, unless the test sets it; for a
    # token issued now, now to the millisecond (the seller's promotion, a
    # moment ago, voids every token of theirs issued before it).
    if "iat_ms" not in (claims or {}) and isinstance(base_claims.get("iat"), int):
        base_claims["iat_ms"] = base_claims["iat"] * 1000 + now_ms % 1000
    hdr = {"alg": alg, "typ": "JWT", "kid": _stack_kid()}
    for k, v in (header or {}).items():
        if v is None:
            hdr.pop(k, None)
        else:
            hdr[k] = v
    signing_input = ("%s.%s" % (b64url(json.dumps(hdr).encode()),
                                b64url(json.dumps(base_claims).encode()))).encode()
    if alg == "ES256":
        sig = _sign(_key(key), "sha256", signing_input, 32, high_s)
    elif alg == "ES384" and key == "stack":
        # The stack's own P-256 key with SHA-384: a verifier that takes the
        # digest from the header and the curve from the key would accept it.
        sig = _sign(_key("stack"), "sha384", signing_input, 32)
    elif alg == "ES384":
        sig = _sign(_key("p384"), "sha384", signing_input, 48)
    elif alg == "RS256":
        sig = _sign(_key("rsa"), "sha256", signing_input)
    elif alg == "HS256":
        # Keyed with the stack's public key, the classic algorithm confusion.
        pub = os.path.join(shop.STACK["SHOP_STATE_DIR"], "secrets", "jwt", "public",
                           _stack_kid() + ".pem")
        with open(pub, "rb") as f:
            sig = hmac.new(f.read(), signing_input, hashlib.sha256).digest()
    elif alg == "none":
        sig = b""
    else:
        raise ValueError(alg)
    return signing_input.decode() + "." + b64url(sig)


# ------------------------------------------------------------ fixtures

def _seller():
    if "seller" not in _cache:
        _cache["seller"] = shop.new_user("seller")
    return _cache["seller"]


def _product():
    if "product" not in _cache:
        _cache["product"] = shop.new_product(_seller()[1], stock=1000)
    return _cache["product"]


def _stock_and_version():
    r = call("GET", "/products/%d" % _product()["id"], token=_seller()[1])
    assert r.status == 200, r
    return r.json["stock"], r.json["version"]


def _attempts(tok):
    """The four endpoints, each as (name, request thunk, check that it did its
    work or did nothing)."""
    pid = _product()["id"]
    sku = shop.unique("tok")

    def create():
        return call("POST", "/products", {"sku": sku, "name": "Forged", "price_cents": 1,
                                          "currency": "EUR"}, token=tok)

    def created():
        # A refused create leaves the SKU free: the real seller can take it.
        r = call("POST", "/products", {"sku": sku, "name": "Real", "price_cents": 1,
                                       "currency": "EUR"}, token=_seller()[1])
        return r.status == 409

    def patch():
        _, version = _stock_and_version()
        return call("PATCH", "/products/%d" % pid, {"name": "Forged %s" % sku}, token=tok,
                    headers={"If-Match": '"%d"' % version})

    def patched():
        r = call("GET", "/products/%d" % pid, token=_seller()[1])
        return r.json["name"] == "Forged %s" % sku

    def list_orders():
        return call("GET", "/orders?limit=1", token=tok)

    def place():
        return call("POST", "/orders", {"items": [{"product_id": pid, "quantity": 1}]}, token=tok)

    return [("POST /products", create, created),
            ("PATCH /products/{id}", patch, patched),
            ("GET /orders", list_orders, None),
            ("POST /orders", place, None)]


# ------------------------------------------------------------ tests

def test_minted_control_token_is_accepted_everywhere():
    tok = mint()
    want = {"POST /products": 201, "PATCH /products/{id}": 200, "GET /orders": 200,
            "POST /orders": 201}
    stock, _ = _stock_and_version()
    for name, send, did in _attempts(tok):
        r = send()
        assert r.status == want[name], (name, r)
        if did:
            assert did(), name
    assert _stock_and_version()[0] == stock - 1


def forged_tokens():
    now = int(time.time())
    return {
        "expired a minute ago": mint(claims={"iat": now - 960, "exp": now - 60}),
        "expired one second ago": mint(claims={"iat": now - 901, "exp": now - 1}),
        "wrong iss": mint(claims={"iss": "shop-auth-evil"}),
        "no iss": mint(claims={"iss": None}),
        "wrong aud": mint(claims={"aud": "other-service"}),
        "aud of another case": mint(claims={"aud": "Shop"}),
        "no aud": mint(claims={"aud": None}),
        "RS256 (another key)": mint(alg="RS256"),
        "ES384 (a P-384 key)": mint(alg="ES384", key="p384"),
        "ES384 header, the stack's key": mint(alg="ES384"),
        "HS256 keyed with the public key": mint(alg="HS256"),
        "alg none": mint(alg="none"),
        "alg none, no kid": mint(alg="none", header={"kid": None}),
        "unknown kid": mint(header={"kid": "no-such-key"}),
        "kid as a path": mint(header={"kid": "../public/" + _stack_kid()}),
        "no kid": mint(header={"kid": None}),
        "signed by another P-256 key": mint(key="other-p256"),
        "the signature's high-S twin (n - S)": mint(high_s=True),
        "iat_ms of another second than iat": mint(claims={"iat_ms": (now - 5) * 1000}),
        "iat_ms not an integer": mint(claims={"iat_ms": str(now * 1000)}),
    }


def test_forged_tokens_are_refused_by_product_and_order_endpoints():
    stock, version = _stock_and_version()
    forged = forged_tokens()
    for what, tok in forged.items():
        for name, send, did in _attempts(tok):
            r = send()
            assert r.status == 401, (what, name, r)
            assert_problem(r, 401, "unauthorized")
            assert (r.header("www-authenticate") or "").startswith("Bearer"), (what, name, r.headers)
            if did:
                assert not did(), ("a refused request did its work", what, name)
    assert _stock_and_version() == (stock, version), "a refused request changed the product"
    # The same claims, minted correctly, still work: the refusals above were
    # for the one thing each token got wrong.
    r = call("GET", "/orders?limit=1", token=mint())
    assert r.status == 200, r
