/* token.c: ES256 access tokens.  Owns the verification key set (every
 * "<kid>.pem" in JWT_PUBLIC_DIR), the signing key (auth only) and every check
 * a token must pass.
 *
 * libjwt 1.10 signs (auth only).  It is not trusted to verify: jwt_decode()
 * with a NULL key skips verification, it happily verifies HS256 with whatever
 * key bytes it is given, and it parses the PEM key again on every call, which
 * costs about a millisecond with OpenSSL 3: more than the rest of a request.
 * So verification is done here with OpenSSL directly on keys parsed once at
 * load: the header is parsed first, the key is chosen by kid, alg must be
 * exactly ES256, the signature must be the RFC 7518 64-byte R||S form, and it
 * is checked with ECDSA/SHA-256 over "header.payload".  The claims are then
 * read from the payload with json-c and checked strictly (types, iss, aud,
 * exp, iat, nbf).  libjwt 1.10.2 emits the R||S form (checked in
 * tests/test_token.c and, against openssl, in tests/integration/test_auth.py). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "token.h"

#define TOKEN_KID_MAX 64
#define TOKEN_MAX_LEN 4096      /* no honest access token comes near this */
#define TOKEN_SKEW 30           /* seconds a host clock may run ahead of auth's */
#define TOKEN_SIG_LEN 64        /* ES256: R||S, 32 bytes each */

typedef struct token_key {
    char kid[TOKEN_KID_MAX + 1];
    char *pem;                  /* canonical SubjectPublicKeyInfo PEM */
    size_t pem_len;
    EVP_PKEY *pkey;             /* the same public key, parsed once, for verifying */
    unsigned char x[32], y[32]; /* affine coordinates, for the JWKS */
} token_key;

static token_key *token_keys;
static size_t token_nkeys;

static char *token_priv_pem;
static size_t token_priv_len;
static char token_priv_kid[TOKEN_KID_MAX + 1];
static token_key token_signer;  /* public half of the signing key */
static int token_have_signer;

/* ------------------------------------------------------------ helpers */

/* True when kid is 1-64 chars of [A-Za-z0-9._-] (it names a file). */
static int token_kid_valid(const char *kid, size_t n)
{
    if (n == 0 || n > TOKEN_KID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = kid[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Decodes unpadded base64url src[0..n) into a malloc'd buffer (NUL-terminated
 * for convenience).  libsodium rejects padding, stray characters and
 * non-zero trailing bits, so every token has exactly one encoding. */
static unsigned char *token_b64url_decode(const char *src, size_t n, size_t *out_len)
{
    size_t cap = n * 3 / 4 + 1;
    unsigned char *buf = malloc(cap + 1);
    if (!buf)
        return NULL;
    size_t len = 0;
    if (sodium_base642bin(buf, cap, src, n, NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    *out_len = len;
    return buf;
}

/* Encodes n bytes as unpadded base64url into out (size >= 4n/3 + 2). */
static void token_b64url_encode(const unsigned char *in, size_t n, char *out, size_t cap)
{
    sodium_bin2base64(out, cap, in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* Reads a whole (small) file.  Returns a malloc'd NUL-terminated buffer. */
static char *token_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(65536);
    size_t n = buf ? fread(buf, 1, 65535, f) : 0;
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (!buf || bad || n == 0) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Fills k (pem, x, y) from an EC key, which must be on P-256.  Returns 0 or -1. */
static int token_key_from_pkey(EVP_PKEY *pkey, token_key *k)
{
    char group[64] = "";
    BIGNUM *x = NULL, *y = NULL;
    BIO *bio = NULL;
    int rc = -1;

    if (!EVP_PKEY_is_a(pkey, "EC") ||
        !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL) ||
        strcmp(group, "prime256v1") != 0)
        goto out;
    if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
        !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) ||
        BN_bn2binpad(x, k->x, 32) != 32 || BN_bn2binpad(y, k->y, 32) != 32)
        goto out;
    bio = BIO_new(BIO_s_mem());
    if (!bio || !PEM_write_bio_PUBKEY(bio, pkey))
        goto out;
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || !(k->pem = malloc((size_t)n + 1)))
        goto out;
    memcpy(k->pem, data, (size_t)n);
    k->pem[n] = '\0';
    k->pem_len = (size_t)n;
    /* A public-only copy: a signer's key must not verify with its private half around. */
    BIO *pub = BIO_new_mem_buf(k->pem, (int)k->pem_len);
    k->pkey = pub ? PEM_read_bio_PUBKEY(pub, NULL, NULL, NULL) : NULL;
    BIO_free(pub);
    if (!k->pkey) {
        free(k->pem);
        k->pem = NULL;
        goto out;
    }
    rc = 0;
out:
    BN_free(x);
    BN_free(y);
    BIO_free(bio);
    return rc;
}

/* Parses a PEM public key file into k.  Returns 0 or -1. */
static int token_key_load_public(const char *path, token_key *k)
{
    size_t len = 0;
    char *pem = token_read_file(path, &len);
    if (!pem)
        return -1;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    int rc = pkey ? token_key_from_pkey(pkey, k) : -1;
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    free(pem);
    return rc;
}

/* The key of kid in the loaded set, or NULL. */
static const token_key *token_find_in_set(const char *kid)
{
    for (size_t i = 0; i < token_nkeys; i++)
        if (strcmp(token_keys[i].kid, kid) == 0)
            return &token_keys[i];
    return NULL;
}

/* The verification key of kid: the loaded set first, then the signer's own. */
static const token_key *token_find(const char *kid)
{
    const token_key *k = token_find_in_set(kid);
    if (k)
        return k;
    if (token_have_signer && strcmp(token_signer.kid, kid) == 0)
        return &token_signer;
    return NULL;
}

static void token_key_clear(token_key *k)
{
    free(k->pem);
    EVP_PKEY_free(k->pkey);
    k->pem = NULL;
    k->pkey = NULL;
}

static void token_free_keys(token_key *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        token_key_clear(&keys[i]);
    free(keys);
}

static int token_key_cmp(const void *a, const void *b)
{
    return strcmp(((const token_key *)a)->kid, ((const token_key *)b)->kid);
}

/* ------------------------------------------------------------ key loading */

/* Replaces the verification set with every "<kid>.pem" in dir.  A file that
 * is not a P-256 public key fails the whole load (a half-loaded key set would
 * reject valid tokens at random), and the old set stays in place. */
int token_load_public_dir(const char *dir)
{
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d)
        return -1;
    token_key *keys = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= 4 || strcmp(e->d_name + len - 4, ".pem") != 0)
            continue;
        if (!token_kid_valid(e->d_name, len - 4)) {
            rc = -1;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            token_key *grown = realloc(keys, cap * sizeof *keys);
            if (!grown) {
                rc = -1;
                break;
            }
            keys = grown;
        }
        token_key *k = &keys[n];
        memset(k, 0, sizeof *k);
        memcpy(k->kid, e->d_name, len - 4);
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path ||
            token_key_load_public(path, k) != 0) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc != 0) {
        token_free_keys(keys, n);
        return -1;
    }
    qsort(keys, n, sizeof *keys, token_key_cmp);
    token_free_keys(token_keys, token_nkeys);
    token_keys = keys;
    token_nkeys = n;
    return (int)n;
}

/* Loads the signing key.  Its public half is also trusted under `kid`, so
 * auth verifies what it signs even before the key is in JWT_PUBLIC_DIR; a
 * file of the same kid holding a different key is a misconfiguration (-1). */
int token_load_private(const char *pem_path, const char *kid)
{
    if (sodium_init() < 0 || !pem_path || !kid || !token_kid_valid(kid, strlen(kid)))
        return -1;
    size_t len = 0;
    char *pem = token_read_file(pem_path, &len);
    if (!pem)
        return -1;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    token_key pub;
    memset(&pub, 0, sizeof pub);
    int rc = pkey ? token_key_from_pkey(pkey, &pub) : -1;
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    if (rc == 0) {
        snprintf(pub.kid, sizeof pub.kid, "%s", kid);
        for (size_t i = 0; i < token_nkeys; i++)
            if (strcmp(token_keys[i].kid, kid) == 0 &&
                (memcmp(token_keys[i].x, pub.x, 32) != 0 || memcmp(token_keys[i].y, pub.y, 32) != 0))
                rc = -1;
    }
    if (rc != 0) {
        token_key_clear(&pub);
        sodium_memzero(pem, len);
        free(pem);
        return -1;
    }
    if (token_priv_pem) {
        sodium_memzero(token_priv_pem, token_priv_len);
        free(token_priv_pem);
    }
    token_key_clear(&token_signer);
    token_priv_pem = pem;
    token_priv_len = len;
    snprintf(token_priv_kid, sizeof token_priv_kid, "%s", kid);
    token_signer = pub;
    token_have_signer = 1;
    return 0;
}

void token_free_all(void)
{
    token_free_keys(token_keys, token_nkeys);
    token_keys = NULL;
    token_nkeys = 0;
    if (token_priv_pem) {
        sodium_memzero(token_priv_pem, token_priv_len);
        free(token_priv_pem);
    }
    token_priv_pem = NULL;
    token_priv_len = 0;
    token_priv_kid[0] = '\0';
    token_key_clear(&token_signer);
    memset(&token_signer, 0, sizeof token_signer);
    token_have_signer = 0;
}

/* ------------------------------------------------------------ roles */

const char *token_role_name(user_role r)
{
    switch (r) {
    case USER_CUSTOMER: return "customer";
    case USER_SELLER: return "seller";
    case USER_ADMIN: return "admin";
    default: return "anonymous";
    }
}

user_role token_role_parse(const char *s)
{
    if (!s)
        return USER_ANON;
    if (strcmp(s, "customer") == 0)
        return USER_CUSTOMER;
    if (strcmp(s, "seller") == 0)
        return USER_SELLER;
    if (strcmp(s, "admin") == 0)
        return USER_ADMIN;
    return USER_ANON;
}

/* ------------------------------------------------------------ verify */

/* Decodes one base64url segment as a JSON object.  Returns NULL otherwise. */
static json_object *token_segment_json(const char *seg, size_t n)
{
    size_t len = 0;
    unsigned char *raw = token_b64url_decode(seg, n, &len);
    if (!raw)
        return NULL;
    json_object *obj = NULL;
    json_tokener *tok = json_tokener_new_ex(16);
    if (tok && len > 0 && strlen((char *)raw) == len) {
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        obj = json_tokener_parse_ex(tok, (char *)raw, (int)len);
        if (json_tokener_get_error(tok) != json_tokener_success ||
            json_tokener_get_parse_end(tok) != len || !json_object_is_type(obj, json_type_object)) {
            json_object_put(obj);
            obj = NULL;
        }
    }
    json_tokener_free(tok);
    free(raw);
    return obj;
}

/* The string member key of obj, or NULL when absent or not a string. */
static const char *token_str(json_object *obj, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* Reads integer member key (a JSON integer, not a float or string).
 * Returns 1 when present and valid, 0 when absent, -1 when malformed. */
static int token_int(json_object *obj, const char *key, int64_t *out)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_int))
        return -1;
    errno = 0;
    int64_t n = json_object_get_int64(v);
    if (errno != 0 || n < 0)
        return -1;
    *out = n;
    return 1;
}

/* Parses sub: a positive decimal user id without sign or leading zeros. */
static int token_parse_sub(const char *s, int64_t *out)
{
    if (!s || *s < '1' || *s > '9' || strlen(s) > 18)
        return -1;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return 0;
}

/* Checks the header (alg ES256, known kid, nothing critical) and returns the
 * key to verify with, or NULL. */
static const token_key *token_check_header(json_object *hdr)
{
    const char *alg = token_str(hdr, "alg");
    const char *kid = token_str(hdr, "kid");
    const char *typ = token_str(hdr, "typ");
    json_object *v;
    if (!alg || strcmp(alg, "ES256") != 0 || !kid)
        return NULL;
    if (json_object_object_get_ex(hdr, "typ", &v) && (!typ || strcmp(typ, "JWT") != 0))
        return NULL;
    if (json_object_object_get_ex(hdr, "crit", NULL))
        return NULL;   /* no extension is understood here */
    return token_find(kid);
}

bool token_sid_valid(const char *sid)
{
    if (!sid)
        return false;
    size_t i = 0;
    for (; sid[i]; i++)
        if (!((sid[i] >= '0' && sid[i] <= '9') || (sid[i] >= 'a' && sid[i] <= 'f')))
            return false;
    return i == TOKEN_SID_LEN;
}

/* Checks the claims at time now and fills out. */
static int token_check_claims(json_object *c, time_t now, token_claims *out)
{
    const char *iss = token_str(c, "iss");
    const char *aud = token_str(c, "aud");
    const char *sub = token_str(c, "sub");
    const char *role = token_str(c, "role");
    const char *jti = token_str(c, "jti");
    int64_t iat = 0, exp = 0, nbf = 0, uid = 0;

    if (!iss || strcmp(iss, TOKEN_ISSUER) != 0 || !aud || strcmp(aud, TOKEN_AUDIENCE) != 0)
        return -1;
    if (token_parse_sub(sub, &uid) != 0)
        return -1;
    user_role r = token_role_parse(role);
    if (r == USER_ANON)
        return -1;
    if (!jti || jti[0] == '\0' || strlen(jti) >= sizeof out->jti)
        return -1;
    const char *sid = token_str(c, "sid");
    if (json_object_object_get_ex(c, "sid", NULL) && !token_sid_valid(sid))
        return -1;
    if (token_int(c, "iat", &iat) != 1 || token_int(c, "exp", &exp) != 1)
        return -1;
    int has_nbf = token_int(c, "nbf", &nbf);
    if (has_nbf < 0)
        return -1;
    int64_t iat_ms = 0;
    int has_iat_ms = token_int(c, "iat_ms", &iat_ms);
    if (has_iat_ms < 0 || (has_iat_ms && iat_ms / 1000 != iat))   /* must name iat's second */
        return -1;
    if ((int64_t)now >= exp)                         /* expired */
        return -1;
    if (iat > (int64_t)now + TOKEN_SKEW || exp <= iat) /* issued in the future */
        return -1;
    if (has_nbf && nbf > (int64_t)now + TOKEN_SKEW)  /* not yet valid */
        return -1;
    out->user_id = uid;
    out->role = r;
    out->iat = (time_t)iat;
    out->iat_ms = has_iat_ms ? iat_ms : iat * 1000;
    out->exp = (time_t)exp;
    snprintf(out->jti, sizeof out->jti, "%s", jti);
    snprintf(out->sid, sizeof out->sid, "%s", sid ? sid : "");
    return 0;
}

/* P-256's group order n and n / 2 (SEC 2).  ECDSA accepts (R, S) and
 * (R, n - S) alike, so each token would have a second valid spelling: this
 * signer hands out only the low-S one (S <= n / 2) and the verifier takes
 * only that, so a token altered in any byte is refused. */
static const unsigned char P256_ORDER[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
static const unsigned char P256_HALF_ORDER[32] = {
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8};

/* Verifies the ES256 signature segment over input (= "header.payload").
 * The segment must decode to exactly 64 bytes, R||S (RFC 7518 3.4), with a
 * low S (above); OpenSSL wants the DER form.  Returns 0 when valid. */
static int token_check_signature(const token_key *k, const char *input, size_t input_len,
                                 const char *sig, size_t n)
{
    size_t len = 0;
    unsigned char *raw = token_b64url_decode(sig, n, &len);
    unsigned char *der = NULL;
    ECDSA_SIG *es = NULL;
    EVP_MD_CTX *ctx = NULL;
    int rc = -1;
    if (!raw || len != TOKEN_SIG_LEN || memcmp(raw + 32, P256_HALF_ORDER, 32) > 0)
        goto out;
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
    es = ECDSA_SIG_new();
    if (!r || !s || !es || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        goto out;
    }
    int der_len = i2d_ECDSA_SIG(es, &der);
    ctx = EVP_MD_CTX_new();
    if (der_len <= 0 || !ctx ||
        EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) != 1)
        goto out;
    if (EVP_DigestVerify(ctx, der, (size_t)der_len, (const unsigned char *)input, input_len) == 1)
        rc = 0;
out:
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    free(raw);
    return rc;
}

int token_verify(const char *jwt, time_t now, token_claims *out)
{
    if (!jwt || !out)
        return -1;
    size_t len = strnlen(jwt, TOKEN_MAX_LEN + 1);
    if (len == 0 || len > TOKEN_MAX_LEN)
        return -1;
    const char *d1 = memchr(jwt, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jwt)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - jwt)))
        return -1;

    json_object *hdr = token_segment_json(jwt, (size_t)(d1 - jwt));
    json_object *claims = NULL;
    int rc = -1;
    const token_key *key = hdr ? token_check_header(hdr) : NULL;
    if (!key || token_check_signature(key, jwt, (size_t)(d2 - jwt), d2 + 1,
                                      len - (size_t)(d2 + 1 - jwt)) != 0)
        goto out;
    claims = token_segment_json(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!claims)
        goto out;
    token_claims c;
    memset(&c, 0, sizeof c);
    if (token_check_claims(claims, now, &c) != 0)
        goto out;
    *out = c;
    rc = 0;
out:
    json_object_put(hdr);
    json_object_put(claims);
    return rc;
}

/* ------------------------------------------------------------ sign */

/* Rewrites a signature segment (R||S, base64url, in place: the length is
 * the same) to its low-S form.  Returns 0, or -1 when it is not R||S. */
static int token_low_s(char *sig)
{
    size_t n = strlen(sig), len = 0;
    unsigned char *raw = token_b64url_decode(sig, n, &len);
    if (!raw || len != TOKEN_SIG_LEN) {
        free(raw);
        return -1;
    }
    int rc = 0;
    if (memcmp(raw + 32, P256_HALF_ORDER, 32) > 0) {          /* S = n - S */
        BIGNUM *order = BN_bin2bn(P256_ORDER, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
        if (order && s && BN_sub(s, order, s) && BN_bn2binpad(s, raw + 32, 32) == 32)
            token_b64url_encode(raw, TOKEN_SIG_LEN, sig, n + 1);
        else
            rc = -1;
        BN_free(order);
        BN_free(s);
    }
    free(raw);
    return rc;
}

char *token_sign(int64_t user_id, user_role role, time_t now, long ttl)
{
    return token_sign_ms(user_id, role, (int64_t)now * 1000, ttl, NULL);
}

char *token_sign_ms(int64_t user_id, user_role role, int64_t now_ms, long ttl, const char *sid)
{
    time_t now = (time_t)(now_ms / 1000);
    if (now_ms < 0 || !token_priv_pem || user_id <= 0 || role == USER_ANON || ttl <= 0 ||
        (sid && !token_sid_valid(sid)))
        return NULL;
    unsigned char rnd[16];
    char jti[32], sub[24];
    randombytes_buf(rnd, sizeof rnd);
    token_b64url_encode(rnd, sizeof rnd, jti, sizeof jti);
    snprintf(sub, sizeof sub, "%lld", (long long)user_id);

    jwt_t *j = NULL;
    char *s = NULL;
    if (jwt_new(&j) != 0)
        return NULL;
    if (jwt_add_header(j, "kid", token_priv_kid) != 0 ||
        jwt_add_grant(j, "iss", TOKEN_ISSUER) != 0 ||
        jwt_add_grant(j, "aud", TOKEN_AUDIENCE) != 0 ||
        jwt_add_grant(j, "sub", sub) != 0 ||
        jwt_add_grant(j, "role", token_role_name(role)) != 0 ||
        jwt_add_grant_int(j, "iat", (long)now) != 0 ||
        jwt_add_grant_int(j, "iat_ms", (long)now_ms) != 0 ||
        jwt_add_grant_int(j, "exp", (long)now + ttl) != 0 ||
        jwt_add_grant(j, "jti", jti) != 0 ||
        (sid && jwt_add_grant(j, "sid", sid) != 0) ||
        jwt_set_alg(j, JWT_ALG_ES256, (const unsigned char *)token_priv_pem, (int)token_priv_len) != 0)
        goto out;
    s = jwt_encode_str(j);
    char *dot = s ? strrchr(s, '.') : NULL;
    if (dot && token_low_s(dot + 1) != 0) {
        free(s);
        s = NULL;
        dot = NULL;
    }
    /* Never hand out a token our own verifier (or any RFC 7518 one) would
     * reject, e.g. a DER-form signature. */
    if (s && (!dot || token_check_signature(&token_signer, s, (size_t)(dot - s), dot + 1,
                                            strlen(dot + 1)) != 0)) {
        free(s);
        s = NULL;
    }
out:
    jwt_free(j);
    return s;
}

/* ------------------------------------------------------------ JWKS */

static json_object *token_jwk(const token_key *k)
{
    char x[48], y[48];
    token_b64url_encode(k->x, 32, x, sizeof x);
    token_b64url_encode(k->y, 32, y, sizeof y);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "kty", json_object_new_string("EC"));
    json_object_object_add(o, "crv", json_object_new_string("P-256"));
    json_object_object_add(o, "x", json_object_new_string(x));
    json_object_object_add(o, "y", json_object_new_string(y));
    json_object_object_add(o, "kid", json_object_new_string(k->kid));
    json_object_object_add(o, "use", json_object_new_string("sig"));
    json_object_object_add(o, "alg", json_object_new_string("ES256"));
    return o;
}

json_object *token_jwks(void)
{
    json_object *keys = json_object_new_array();
    for (size_t i = 0; i < token_nkeys; i++)
        json_object_array_add(keys, token_jwk(&token_keys[i]));
    if (token_have_signer && !token_find_in_set(token_signer.kid))
        json_object_array_add(keys, token_jwk(&token_signer));
    json_object *doc = json_object_new_object();
    json_object_object_add(doc, "keys", keys);
    return doc;
}
