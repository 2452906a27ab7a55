/* fuzz_request.c: libFuzzer target for everything a request's bytes reach
 * before a handler runs: the strict JSON parser and field getters, the
 * query-string and path decoders, the route matcher, the list cursors
 * (http_cursor_decode), and the route walk itself (route_dispatch) with the
 * input as Content-Type and as Authorization, which reaches the Content-Type
 * check and token verification.  Tokens are verified against a real ES256 key
 * made at start-up, three ways: the input as the whole token, the input as
 * the header segment of an otherwise valid token (token_check_header), and the
 * input as the claims of a token signed with the trusted key (so the claim
 * checks run behind a good signature).  Every input goes through every sink.
 * Built and run by scripts/fuzz (`make fuzz`, and `make check` for 10 s).
 *
 * Besides the sanitizers, it checks invariants and abort()s when one breaks:
 * a decoded cursor re-encodes to the same string, a verified token has a
 * positive user and a role, and nothing the fuzzer forges passes unless it is
 * what the signer itself would make. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "http.h"
#include "json.h"
#include "log.h"
#include "route.h"
#include "token.h"

static const time_t NOW = 1800000000;
static char *priv_pem;          /* the trusted signing key (kid "fz") */
static size_t priv_len;
static char *good_token;        /* a token token_verify accepts at NOW */
static char *now_token;         /* a seller's token valid now (the route walk uses time()) */

/* ------------------------------------------------------------ set-up */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    *len = buf ? fread(buf, 1, 65535, f) : 0;
    fclose(f);
    return buf;
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz_request: set-up failed: %s\n", what);
    exit(1);
}

/* A fresh P-256 key pair in a temporary directory: the public half is the
 * whole verification key set, the private half signs; both are in memory
 * afterwards and the directory is removed. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_init("fuzz", LOG_ERROR);        /* 4xx problems would log every run */
    char dir[] = "/tmp/fuzz_request.XXXXXX", pub[64], pubdir[64], priv[64];
    if (sodium_init() < 0 || !mkdtemp(dir))
        die("mkdtemp");
    snprintf(pubdir, sizeof pubdir, "%s/pub", dir);
    snprintf(pub, sizeof pub, "%s/fz.pem", pubdir);
    snprintf(priv, sizeof priv, "%s/fz.key", dir);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    FILE *f1 = fopen(priv, "w");
    FILE *f2 = mkdir(pubdir, 0700) == 0 ? fopen(pub, "w") : NULL;
    int ok = k && f1 && f2 && PEM_write_PrivateKey(f1, k, NULL, NULL, 0, NULL, NULL) &&
             PEM_write_PUBKEY(f2, k);
    if (f1)
        fclose(f1);
    if (f2)
        fclose(f2);
    EVP_PKEY_free(k);
    if (!ok || token_load_public_dir(pubdir) != 1 || token_load_private(priv, "fz") != 0)
        die("key");
    priv_pem = slurp(priv, &priv_len);
    unlink(pub);
    unlink(priv);
    rmdir(pubdir);
    rmdir(dir);
    good_token = token_sign(42, USER_SELLER, NOW - 10, 900);
    now_token = token_sign(42, USER_SELLER, time(NULL), 24 * 3600);
    token_claims c;
    if (!priv_pem || !good_token || token_verify(good_token, NOW, &c) != 0 || !now_token)
        die("a signed token does not verify");
    return 0;
}

/* ------------------------------------------------------------ sinks */

static void verify(const char *jwt)
{
    token_claims c;
    memset(&c, 0, sizeof c);
    if (token_verify(jwt, NOW, &c) == 0 &&
        (c.user_id <= 0 || c.role == USER_ANON || c.exp <= NOW))
        abort();        /* accepted a token that names nobody, or is expired */
}

/* The input as the header segment of the good token (its claims and
 * signature kept): header checks run; a changed header must not verify. */
static void verify_with_header(const char *s, size_t n)
{
    const char *d1 = strchr(good_token, '.');
    size_t cap = n * 4 / 3 + 8 + strlen(d1);
    char *t = malloc(cap);
    if (!t)
        return;
    sodium_bin2base64(t, cap, (const unsigned char *)s, n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    size_t hl = strlen(t);
    bool same = hl == (size_t)(d1 - good_token) && memcmp(t, good_token, hl) == 0;
    strcat(t, d1);
    token_claims c;
    if (token_verify(t, NOW, &c) == 0 && !same)
        abort();        /* the signature covers the header */
    free(t);
}

/* The input as the claims of a token signed by the trusted key, with kid
 * "fz": everything past the signature check runs on fuzzed claims. */
static void verify_signed_claims(const char *s)
{
    jwt_t *j = NULL;
    if (jwt_new(&j) != 0)
        return;
    if (jwt_add_header(j, "kid", "fz") == 0 && jwt_add_grants_json(j, s) == 0 &&
        jwt_set_alg(j, JWT_ALG_ES256, (const unsigned char *)priv_pem, (int)priv_len) == 0) {
        char *t = jwt_encode_str(j);
        if (t)
            verify(t);
        free(t);
    }
    jwt_free(j);
}

static void cursor(const char *prefix, const char *s)
{
    int64_t id = 0;
    if (http_cursor_decode(prefix, s, &id)) {
        char again[72];
        http_cursor_encode(prefix, id, again, sizeof again);
        if (id <= 0 || strcmp(again, s) != 0)
            abort();    /* one spelling per value, positive ids only */
    }
}

static int handler_ok(http_req *req)
{
    if (!req->json || !json_object_is_type(req->json, json_type_object))
        abort();        /* a body route's handler always gets an object */
    return http_reply_empty(req, 204);
}

static int handler_get(http_req *req)
{
    if (req->auth.role < USER_SELLER || req->auth.user_id <= 0)
        abort();        /* the walk let in someone the route does not admit */
    return http_reply_empty(req, 204);
}

static const route table[] = {
    {"POST", "/things", ROUTE_PUBLIC, true, handler_ok},
    {"PATCH", "/things/{id}", ROUTE_PUBLIC, true, handler_ok},
    {"PUT", "/things/{id}", ROUTE_USER, true, handler_ok},
    {"GET", "/things/{id}", ROUTE_SELLER, false, handler_get},
};

/* One request through the route walk with these CGI parameters and a JSON
 * object body; checks the walk replied exactly once. */
static int dispatch(const char *method, const char *path, char **env)
{
    char body[] = "{}", p[32];
    snprintf(p, sizeof p, "%s", path);
    http_req req;
    memset(&req, 0, sizeof req);
    req.env = env;
    req.method = method;
    req.path = p;
    req.query = "";
    req.body = body;
    req.body_len = 2;
    int status = route_dispatch(table, sizeof table / sizeof table[0], &req);
    if (status != req.status || status < 200 || status > 599)
        abort();        /* the walk replies exactly once, with what it returns */
    json_object_put(req.json);
    free(req.sent);
    free(req.headers);
    return status;
}

/* True when ct names JSON: "application/json" (any case), then nothing, or
 * spaces and a ';' with parameters.  What the walk accepts must be this. */
static bool names_json(const char *ct)
{
    if (strncasecmp(ct, "application/json", 16) != 0)
        return false;
    ct += 16;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static char *param(const char *name, const char *prefix, const char *value)
{
    size_t n = strlen(name) + strlen(prefix) + strlen(value) + 2;
    char *kv = malloc(n);
    if (kv)
        snprintf(kv, n, "%s=%s%s", name, prefix, value);
    return kv;
}

/* The input as Content-Type (anonymous and signed in) and as the
 * Authorization header, and the token after "Bearer ". */
static void dispatch_all(const char *s)
{
    char *ct = param("CONTENT_TYPE", "", s);
    char *auth = param("HTTP_AUTHORIZATION", "", s);
    char *bearer = param("HTTP_AUTHORIZATION", "Bearer ", s);
    char *now_auth = param("HTTP_AUTHORIZATION", "Bearer ", now_token);
    if (ct && auth && bearer && now_auth) {
        char cl[] = "CONTENT_LENGTH=2", json[] = "CONTENT_TYPE=application/json";
        char *e1[] = {ct, cl, NULL};
        char *e2[] = {ct, cl, now_auth, NULL};
        char *e3[] = {auth, json, cl, NULL};
        char *e4[] = {bearer, json, cl, NULL};
        if (dispatch("POST", "/things", e1) == 204 && !names_json(s))
            abort();    /* a body that is not JSON by its Content-Type got through */
        dispatch("PATCH", "/things/7", e1);
        dispatch("PUT", "/things/7", e2);
        dispatch("GET", "/things/7", e3);
        dispatch("PUT", "/things/7", e4);
        dispatch("GET", "/things/7", e4);
    }
    free(ct);
    free(auth);
    free(bearer);
    free(now_auth);
}

/* ------------------------------------------------------------ the target */

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    json_object *o = json_parse_strict(s, size, NULL);
    if (o && json_object_is_type(o, json_type_object)) {
        static const char *const allowed[] = {"sku", "name", "price_cents", NULL};
        json_object *errs = json_object_new_array();
        int64_t n;
        const char *str;
        json_check_fields(o, allowed, errs);
        json_get_int(o, "price_cents", 0, 100000000000LL, true, &n, errs);
        json_get_str(o, "name", 1, 200, true, &str, errs);
        json_object_put(errs);
        verify_signed_claims(s);
    }
    json_object_put(o);

    http_req req;
    memset(&req, 0, sizeof req);
    req.query = s;
    char buf[256], path[512];
    http_query(&req, "q", buf, sizeof buf);
    http_query(&req, "limit", buf, sizeof buf);
    if (http_decode_path(s, size, path, sizeof path) == 0) {
        int64_t id;
        route_match("/products/{id}/stock", path, &id);
        route_match("/orders/{id}", path, &id);
    }
    http_request_id_valid(s);
    json_utf8_len(s, size);

    cursor("", s);              /* product lists */
    cursor("o1:", s);           /* order lists */
    verify(s);
    verify_with_header(s, size);
    if (strlen(s) == size) {    /* a CGI parameter cannot hold a NUL */
        dispatch_all(s);
    }
    free(s);
    return 0;
}
