/* test_token.c: lib/token.c as a client sees it.  Every way a token can be
 * forged or misused must fail verification: bad signature, alg none, HS256
 * keyed with the public key, unknown kid, expired, not yet valid, wrong
 * iss/aud, missing or mistyped claims.  Keys are generated at run time into a
 * temporary directory; none is committed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include "cunit_main.h"
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "token.h"

static char dir[] = "/tmp/test_token.XXXXXX";   /* public keys: <kid>.pem */
static char priv_a[4200], priv_b[4200], pub_a_path[4200];
static char *pem_a_priv, *pem_a_pub;           /* key "ka" */
static size_t pem_a_priv_len, pem_a_pub_len;
static const time_t NOW = 1800000000;

/* ------------------------------------------------------------ fixtures */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    *len = fread(buf, 1, 65535, f);
    fclose(f);
    return buf;
}

/* Generates a P-256 key pair: private PEM at priv, public PEM at pub. */
static int make_key(const char *priv, const char *pub)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    FILE *f1 = fopen(priv, "w"), *f2 = pub ? fopen(pub, "w") : NULL;
    int ok = k && f1 && PEM_write_PrivateKey(f1, k, NULL, NULL, 0, NULL, NULL) &&
             (!pub || (f2 && PEM_write_PUBKEY(f2, k)));
    if (f1)
        fclose(f1);
    if (f2)
        fclose(f2);
    EVP_PKEY_free(k);
    return ok ? 0 : -1;
}

static int suite_init(void)
{
    if (sodium_init() < 0 || !mkdtemp(dir))
        return -1;
    snprintf(priv_a, sizeof priv_a, "%s/a.key", dir);
    snprintf(priv_b, sizeof priv_b, "%s/b.key", dir);
    snprintf(pub_a_path, sizeof pub_a_path, "%s/pub/ka.pem", dir);
    char pubdir[4200];
    snprintf(pubdir, sizeof pubdir, "%s/pub", dir);
    if (mkdir(pubdir, 0700) != 0 || make_key(priv_a, pub_a_path) != 0 || make_key(priv_b, NULL) != 0)
        return -1;
    pem_a_priv = slurp(priv_a, &pem_a_priv_len);
    pem_a_pub = slurp(pub_a_path, &pem_a_pub_len);
    if (token_load_public_dir(pubdir) != 1 || token_load_private(priv_a, "ka") != 0)
        return -1;
    return 0;
}

static int suite_clean(void)
{
    token_free_all();
    free(pem_a_priv);
    free(pem_a_pub);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* An ES256 token's signature segment rewritten to its low-S form (S <=
 * n / 2), the only one the verifier takes: libjwt signs either. */
static void low_s(char *t)
{
    char *sig = strrchr(t, '.') + 1;
    unsigned char rs[64];
    size_t len = 0;
    BIGNUM *n = NULL, *half = BN_new(), *sv = NULL;
    if (sodium_base642bin(rs, sizeof rs, sig, strlen(sig), NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 && len == 64 &&
        BN_hex2bn(&n, "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551") > 0 &&
        half && BN_rshift1(half, n) && (sv = BN_bin2bn(rs + 32, 32, NULL)) &&
        BN_cmp(sv, half) > 0 && BN_sub(sv, n, sv) && BN_bn2binpad(sv, rs + 32, 32) == 32)
        sodium_bin2base64(sig, strlen(sig) + 1, rs, 64, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    BN_free(n);
    BN_free(half);
    BN_free(sv);
}

/* Builds a token by hand with libjwt: any alg/key, any kid, any claims. */
static char *forge(jwt_alg_t alg, const char *key, size_t key_len, const char *kid,
                   const char *claims_json)
{
    jwt_t *j = NULL;
    char *s = NULL;
    if (jwt_new(&j) != 0)
        return NULL;
    if ((!kid || jwt_add_header(j, "kid", kid) == 0) &&
        jwt_add_grants_json(j, claims_json) == 0 &&
        jwt_set_alg(j, alg, (const unsigned char *)key, (int)key_len) == 0)
        s = jwt_encode_str(j);
    jwt_free(j);
    if (s && alg == JWT_ALG_ES256)
        low_s(s);
    return s;
}

/* Claims that are valid at NOW, with one member replaced or removed. */
static char *claims(const char *drop, const char *extra)
{
    static const char *keys[] = {"iss", "aud", "sub", "role", "iat", "exp", "jti"};
    static const char *vals[] = {"\"shop-auth\"", "\"shop\"", "\"42\"", "\"customer\"",
                                 "1800000000", "1800000900", "\"abc\""};
    char *out = malloc(1024);
    size_t n = (size_t)sprintf(out, "{");
    for (size_t i = 0; i < 7; i++) {
        if ((drop && strcmp(drop, keys[i]) == 0))
            continue;
        n += (size_t)sprintf(out + n, "%s\"%s\":%s", n > 1 ? "," : "", keys[i], vals[i]);
    }
    if (extra)
        n += (size_t)sprintf(out + n, "%s%s", n > 1 ? "," : "", extra);
    sprintf(out + n, "}");
    return out;
}

/* Verifies a forged ES256 token signed with key "ka" and claims(drop, extra). */
static int verify_forged(const char *drop, const char *extra)
{
    char *c = claims(drop, extra);
    char *t = forge(JWT_ALG_ES256, pem_a_priv, pem_a_priv_len, "ka", c);
    token_claims out;
    int rc = t ? token_verify(t, NOW, &out) : -2;
    free(c);
    free(t);
    return rc;
}

static unsigned char *b64url_decode(const char *s, size_t n, size_t *len)
{
    unsigned char *buf = malloc(n + 1);
    if (sodium_base642bin(buf, n + 1, s, n, NULL, len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ------------------------------------------------------------ tests */

static void test_roundtrip(void)
{
    char *t = token_sign(42, USER_SELLER, NOW, 900);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    token_claims c;
    CU_ASSERT_EQUAL(token_verify(t, NOW + 10, &c), 0);
    CU_ASSERT_EQUAL(c.user_id, 42);
    CU_ASSERT_EQUAL(c.role, USER_SELLER);
    CU_ASSERT_EQUAL(c.iat, NOW);
    CU_ASSERT_EQUAL(c.exp, NOW + 900);
    CU_ASSERT(strlen(c.jti) >= 16);

    /* Header carries alg ES256 and the kid. */
    size_t hl = 0;
    unsigned char *h = b64url_decode(t, (size_t)(strchr(t, '.') - t), &hl);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_PTR_NOT_NULL(memmem(h, hl, "\"alg\":\"ES256\"", 13));
    CU_ASSERT_PTR_NOT_NULL(memmem(h, hl, "\"kid\":\"ka\"", 10));
    free(h);

    /* Two tokens never share a jti. */
    char *t2 = token_sign(42, USER_SELLER, NOW, 900);
    token_claims c2;
    CU_ASSERT_EQUAL_FATAL(token_verify(t2, NOW, &c2), 0);
    CU_ASSERT_STRING_NOT_EQUAL(c.jti, c2.jti);
    CU_ASSERT_EQUAL(c.iat_ms, (int64_t)NOW * 1000);
    free(t);
    free(t2);
}

/* The millisecond issue time (for the revocation list) rides in iat_ms,
 * whose second is iat's. */
static void test_iat_ms(void)
{
    char *t = token_sign_ms(42, USER_SELLER, (int64_t)NOW * 1000 + 789, 900, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    token_claims c;
    CU_ASSERT_EQUAL(token_verify(t, NOW + 1, &c), 0);
    CU_ASSERT_EQUAL(c.iat, NOW);
    CU_ASSERT_EQUAL(c.iat_ms, (int64_t)NOW * 1000 + 789);
    CU_ASSERT_EQUAL(c.exp, NOW + 900);
    free(t);
    CU_ASSERT_PTR_NULL(token_sign_ms(42, USER_SELLER, -1, 900, NULL));
}

/* The login a token descends from rides in sid (32 lowercase hex); a
 * token without one is still valid (no login to revoke alone). */
static void test_sid(void)
{
    const char *sid = "0123456789abcdef0123456789abcdef";
    char *t = token_sign_ms(42, USER_SELLER, (int64_t)NOW * 1000, 900, sid);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    token_claims c;
    CU_ASSERT_EQUAL(token_verify(t, NOW + 1, &c), 0);
    CU_ASSERT_STRING_EQUAL(c.sid, sid);
    free(t);
    t = token_sign_ms(42, USER_SELLER, (int64_t)NOW * 1000, 900, NULL);
    CU_ASSERT_EQUAL(token_verify(t, NOW + 1, &c), 0);
    CU_ASSERT_STRING_EQUAL(c.sid, "");
    free(t);
    CU_ASSERT_PTR_NULL(token_sign_ms(42, USER_SELLER, (int64_t)NOW * 1000, 900, "0123"));
    CU_ASSERT_PTR_NULL(token_sign_ms(42, USER_SELLER, (int64_t)NOW * 1000, 900,
                                     "0123456789ABCDEF0123456789abcdef"));
    CU_ASSERT_EQUAL(verify_forged(NULL, "\"sid\":\"0123456789abcdef0123456789abcdef\""), 0);
    CU_ASSERT_EQUAL(verify_forged(NULL, "\"sid\":\"0123456789abcdef0123456789abcde\""), -1);
    CU_ASSERT_EQUAL(verify_forged(NULL, "\"sid\":\"0123456789abcdef0123456789abcdeg\""), -1);
    CU_ASSERT_EQUAL(verify_forged(NULL, "\"sid\":12"), -1);
    CU_ASSERT_EQUAL(verify_forged(NULL, "\"sid\":null"), -1);
    CU_ASSERT_EQUAL(verify_forged(NULL, "\"sid\":\"\""), -1);
}

static void test_signature_is_raw_r_s(void)
{
    /* Many signatures, so an R or S with leading zero bytes turns up. */
    for (int i = 0; i < 300; i++) {
        char *t = token_sign(i + 1, USER_CUSTOMER, NOW, 900);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        const char *sig = strrchr(t, '.') + 1;
        size_t len = 0;
        unsigned char *raw = b64url_decode(sig, strlen(sig), &len);
        CU_ASSERT_PTR_NOT_NULL(raw);
        CU_ASSERT_EQUAL(len, 64);
        free(raw);
        free(t);
    }
}

static void test_tampered_signature(void)
{
    char *t = token_sign(7, USER_CUSTOMER, NOW, 900);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    char *sig = strrchr(t, '.') + 1;
    token_claims c;
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    CU_ASSERT_EQUAL(token_verify(t, NOW, &c), -1);
    free(t);
}

static void test_tampered_payload(void)
{
    char *t = token_sign(7, USER_CUSTOMER, NOW, 900);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    /* Same header and signature, payload re-encoded with role admin. */
    char *c = claims("role", "\"role\":\"admin\"");
    char payload[1400];
    sodium_bin2base64(payload, sizeof payload, (unsigned char *)c, strlen(c),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char forged[4096];
    const char *d1 = strchr(t, '.'), *d2 = strrchr(t, '.');
    snprintf(forged, sizeof forged, "%.*s.%s%s", (int)(d1 - t), t, payload, d2);
    token_claims out;
    CU_ASSERT_EQUAL(token_verify(forged, NOW, &out), -1);
    free(c);
    free(t);
}

static void test_alg_none(void)
{
    char *c = claims(NULL, NULL);
    char *t = forge(JWT_ALG_NONE, NULL, 0, "ka", c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    token_claims out;
    CU_ASSERT_EQUAL(token_verify(t, NOW, &out), -1);
    /* alg none with a real ES256 signature glued on. */
    char *good = token_sign(42, USER_CUSTOMER, NOW, 900);
    char glued[4096];
    snprintf(glued, sizeof glued, "%s%s", t, strrchr(good, '.') + 1);
    CU_ASSERT_EQUAL(token_verify(glued, NOW, &out), -1);
    free(good);
    free(c);
    free(t);
}

static void test_hs256_with_public_key(void)
{
    /* The classic confusion attack: HMAC keyed with the public key PEM, both
     * as stored on disk and as the verifier would hold it in memory. */
    char *c = claims(NULL, NULL);
    char *t = forge(JWT_ALG_HS256, pem_a_pub, pem_a_pub_len, "ka", c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    token_claims out;
    CU_ASSERT_EQUAL(token_verify(t, NOW, &out), -1);
    /* libjwt on its own would accept it when handed that key: the pitfall. */
    jwt_t *j = NULL;
    CU_ASSERT_EQUAL(jwt_decode(&j, t, (unsigned char *)pem_a_pub, (int)pem_a_pub_len), 0);
    jwt_free(j);
    free(t);
    free(c);
}

static void test_expired_and_not_yet_valid(void)
{
    char *t = token_sign(42, USER_CUSTOMER, NOW - 1000, 900);
    token_claims out;
    CU_ASSERT_EQUAL(token_verify(t, NOW, &out), -1);
    CU_ASSERT_EQUAL(token_verify(t, NOW - 101, &out), 0);
    CU_ASSERT_EQUAL(token_verify(t, NOW - 100, &out), -1);   /* exp is exclusive */
    free(t);

    t = token_sign(42, USER_CUSTOMER, NOW + 120, 900);      /* issued in the future */
    CU_ASSERT_EQUAL(token_verify(t, NOW, &out), -1);
    CU_ASSERT_EQUAL(token_verify(t, NOW + 100, &out), 0);   /* within the skew */
    free(t);

    CU_ASSERT_EQUAL(verify_forged(NULL, "\"nbf\":1800000300"), -1);
    CU_ASSERT_EQUAL(verify_forged(NULL, "\"nbf\":1800000000"), 0);
}

static void test_wrong_aud_iss(void)
{
    CU_ASSERT_EQUAL(verify_forged(NULL, NULL), 0);          /* the control */
    CU_ASSERT_EQUAL(verify_forged("aud", "\"aud\":\"other\""), -1);
    CU_ASSERT_EQUAL(verify_forged("aud", "\"aud\":[\"shop\"]"), -1);
    CU_ASSERT_EQUAL(verify_forged("iss", "\"iss\":\"evil\""), -1);
    CU_ASSERT_EQUAL(verify_forged("iss", "\"iss\":\"shop-auth \""), -1);
}

static void test_missing_and_bad_claims(void)
{
    const char *all[] = {"iss", "aud", "sub", "role", "iat", "exp", "jti"};
    for (size_t i = 0; i < 7; i++)
        CU_ASSERT_EQUAL(verify_forged(all[i], NULL), -1);
    CU_ASSERT_EQUAL(verify_forged("role", "\"role\":\"root\""), -1);
    CU_ASSERT_EQUAL(verify_forged("role", "\"role\":\"Admin\""), -1);
    CU_ASSERT_EQUAL(verify_forged("sub", "\"sub\":42"), -1);
    CU_ASSERT_EQUAL(verify_forged("sub", "\"sub\":\"0\""), -1);
    CU_ASSERT_EQUAL(verify_forged("sub", "\"sub\":\"42x\""), -1);
    CU_ASSERT_EQUAL(verify_forged("sub", "\"sub\":\"-4\""), -1);
    CU_ASSERT_EQUAL(verify_forged("exp", "\"exp\":\"1800000900\""), -1);
    CU_ASSERT_EQUAL(verify_forged("exp", "\"exp\":1800000900.5"), -1);
    CU_ASSERT_EQUAL(verify_forged("iat", "\"iat\":true"), -1);
}

static void test_unknown_kid_and_other_key(void)
{
    char *c = claims(NULL, NULL);
    char *t = forge(JWT_ALG_ES256, pem_a_priv, pem_a_priv_len, "nope", c);
    token_claims out;
    CU_ASSERT_EQUAL(token_verify(t, NOW, &out), -1);
    free(t);
    t = forge(JWT_ALG_ES256, pem_a_priv, pem_a_priv_len, NULL, c);   /* no kid at all */
    CU_ASSERT_EQUAL(token_verify(t, NOW, &out), -1);
    free(t);
    /* Signed by a key nobody trusts, claiming a trusted kid. */
    size_t bl = 0;
    char *pem_b = slurp(priv_b, &bl);
    t = forge(JWT_ALG_ES256, pem_b, bl, "ka", c);
    CU_ASSERT_PTR_NOT_NULL(t);
    CU_ASSERT_EQUAL(token_verify(t, NOW, &out), -1);
    free(t);
    free(pem_b);
    free(c);
}

static void test_der_signature_rejected(void)
{
    /* The same signature in DER form (what some libraries wrongly emit). */
    char *t = token_sign(42, USER_CUSTOMER, NOW, 900);
    const char *sig = strrchr(t, '.') + 1;
    size_t len = 0;
    unsigned char *rs = b64url_decode(sig, strlen(sig), &len);
    CU_ASSERT_FATAL(rs && len == 64);
    ECDSA_SIG *es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(rs, 32, NULL), BN_bin2bn(rs + 32, 32, NULL));
    unsigned char *der = NULL;
    int dl = i2d_ECDSA_SIG(es, &der);
    CU_ASSERT_FATAL(dl > 0);
    char b64[200], forged[4096];
    sodium_bin2base64(b64, sizeof b64, der, (size_t)dl, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(forged, sizeof forged, "%.*s%s", (int)(sig - t), t, b64);
    token_claims out;
    CU_ASSERT_EQUAL(token_verify(forged, NOW, &out), -1);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    free(rs);
    free(t);
}

/* ECDSA's twin: (R, n - S) verifies as (R, S) does.  The signer hands out
 * only S <= n / 2 and the verifier refuses the twin, though OpenSSL itself
 * takes it as a valid signature (checked here, so the test means something). */
static void test_high_s_twin_rejected(void)
{
    BIGNUM *n = NULL, *half = BN_new();
    CU_ASSERT_FATAL(BN_hex2bn(&n, "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551") > 0);
    CU_ASSERT_FATAL(half && BN_rshift1(half, n));
    FILE *f = fopen(pub_a_path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    EVP_PKEY *pub = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pub);
    for (int i = 0; i < 40; i++) {
        char *t = token_sign(i + 1, USER_CUSTOMER, NOW, 900);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        char *sig = strrchr(t, '.') + 1;
        size_t len = 0;
        unsigned char *rs = b64url_decode(sig, strlen(sig), &len);
        CU_ASSERT_FATAL(rs && len == 64);
        BIGNUM *r = BN_bin2bn(rs, 32, NULL), *sv = BN_bin2bn(rs + 32, 32, NULL), *twin = BN_new();
        CU_ASSERT(BN_cmp(sv, half) <= 0);                   /* handed out low */
        CU_ASSERT_FATAL(BN_sub(twin, n, sv) && BN_bn2binpad(twin, rs + 32, 32) == 32);
        char b64[100], forged[4096];
        sodium_bin2base64(b64, sizeof b64, rs, 64, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        snprintf(forged, sizeof forged, "%.*s%s", (int)(sig - t), t, b64);
        /* OpenSSL: the twin is a valid signature over header.payload. */
        ECDSA_SIG *es = ECDSA_SIG_new();
        ECDSA_SIG_set0(es, r, BN_dup(twin));
        unsigned char *der = NULL;
        int dl = i2d_ECDSA_SIG(es, &der);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        CU_ASSERT_FATAL(dl > 0 && ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1);
        CU_ASSERT_EQUAL(EVP_DigestVerify(ctx, der, (size_t)dl, (unsigned char *)t, (size_t)(sig - 1 - t)), 1);
        token_claims c;
        CU_ASSERT_EQUAL(token_verify(t, NOW, &c), 0);
        CU_ASSERT_EQUAL(token_verify(forged, NOW, &c), -1);
        EVP_MD_CTX_free(ctx);
        OPENSSL_free(der);
        ECDSA_SIG_free(es);
        BN_free(sv);
        BN_free(twin);
        free(rs);
        free(t);
    }
    EVP_PKEY_free(pub);
    BN_free(n);
    BN_free(half);
}

static void test_malformed(void)
{
    token_claims out;
    const char *bad[] = {"", "a", "a.b", "a.b.c", "a.b.c.d", "...", "eyJ.eyJ.",
                         "eyJhbGciOiJFUzI1NiJ9..", NULL};
    for (int i = 0; bad[i]; i++)
        CU_ASSERT_EQUAL(token_verify(bad[i], NOW, &out), -1);
    CU_ASSERT_EQUAL(token_verify(NULL, NOW, &out), -1);
    char *t = token_sign(42, USER_CUSTOMER, NOW, 900);
    char padded[4096];
    snprintf(padded, sizeof padded, "%s=", t);          /* not canonical base64url */
    CU_ASSERT_EQUAL(token_verify(padded, NOW, &out), -1);
    snprintf(padded, sizeof padded, " %s", t);
    CU_ASSERT_EQUAL(token_verify(padded, NOW, &out), -1);
    free(t);
}

static void test_jwks(void)
{
    json_object *doc = token_jwks();
    json_object *keys, *k, *v;
    CU_ASSERT_FATAL(json_object_object_get_ex(doc, "keys", &keys));
    CU_ASSERT_EQUAL_FATAL(json_object_array_length(keys), 1);
    k = json_object_array_get_idx(keys, 0);
    const char *want[][2] = {{"kty", "EC"}, {"crv", "P-256"}, {"kid", "ka"},
                             {"alg", "ES256"}, {"use", "sig"}};
    for (size_t i = 0; i < 5; i++) {
        CU_ASSERT_FATAL(json_object_object_get_ex(k, want[i][0], &v));
        CU_ASSERT_STRING_EQUAL(json_object_get_string(v), want[i][1]);
    }
    CU_ASSERT(json_object_object_get_ex(k, "x", &v) && strlen(json_object_get_string(v)) == 43);
    CU_ASSERT(json_object_object_get_ex(k, "y", &v) && strlen(json_object_get_string(v)) == 43);
    CU_ASSERT_FALSE(json_object_object_get_ex(k, "d", NULL));   /* never the private part */
    json_object_put(doc);
}

static void test_rotation(void)
{
    /* Rotation: new key "kb" added to the set and made the signer; tokens of
     * the old key "ka" stay valid while "ka.pem" remains in the directory. */
    char *old = token_sign(42, USER_CUSTOMER, NOW, 900);
    char pubdir[4200], pub_b[4300], priv_c[4300];
    snprintf(pubdir, sizeof pubdir, "%s/pub", dir);
    snprintf(pub_b, sizeof pub_b, "%s/kb.pem", pubdir);
    snprintf(priv_c, sizeof priv_c, "%s/c.key", dir);
    CU_ASSERT_EQUAL_FATAL(make_key(priv_c, pub_b), 0);
    CU_ASSERT_EQUAL(token_load_public_dir(pubdir), 2);
    CU_ASSERT_EQUAL(token_load_private(priv_c, "kb"), 0);
    char *fresh = token_sign(43, USER_ADMIN, NOW, 900);
    token_claims out;
    CU_ASSERT_EQUAL(token_verify(old, NOW, &out), 0);
    CU_ASSERT_EQUAL(token_verify(fresh, NOW, &out), 0);
    CU_ASSERT_EQUAL(out.role, USER_ADMIN);
    json_object *doc = token_jwks(), *keys;
    CU_ASSERT(json_object_object_get_ex(doc, "keys", &keys) && json_object_array_length(keys) == 2);
    json_object_put(doc);

    /* A private key that does not match the public file of its kid is refused. */
    CU_ASSERT_EQUAL(token_load_private(priv_b, "kb"), -1);

    /* Retiring "ka": its tokens stop verifying. */
    CU_ASSERT_EQUAL(unlink(pub_a_path), 0);
    CU_ASSERT_EQUAL(token_load_public_dir(pubdir), 1);
    CU_ASSERT_EQUAL(token_verify(old, NOW, &out), -1);
    CU_ASSERT_EQUAL(token_verify(fresh, NOW, &out), 0);

    /* A directory with a file that is not a key fails and keeps the old set. */
    char junk[4300];
    snprintf(junk, sizeof junk, "%s/junk.pem", pubdir);
    FILE *f = fopen(junk, "w");
    fputs("not a key\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(token_load_public_dir(pubdir), -1);
    CU_ASSERT_EQUAL(token_verify(fresh, NOW, &out), 0);
    CU_ASSERT_EQUAL(token_load_public_dir("/nonexistent/dir"), -1);
    free(old);
    free(fresh);
}

static void test_roles(void)
{
    CU_ASSERT_EQUAL(token_role_parse("customer"), USER_CUSTOMER);
    CU_ASSERT_EQUAL(token_role_parse("seller"), USER_SELLER);
    CU_ASSERT_EQUAL(token_role_parse("admin"), USER_ADMIN);
    CU_ASSERT_EQUAL(token_role_parse("ADMIN"), USER_ANON);
    CU_ASSERT_EQUAL(token_role_parse(NULL), USER_ANON);
    CU_ASSERT_STRING_EQUAL(token_role_name(USER_SELLER), "seller");
    CU_ASSERT_PTR_NULL(token_sign(0, USER_CUSTOMER, NOW, 900));
    CU_ASSERT_PTR_NULL(token_sign(1, USER_ANON, NOW, 900));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("token", suite_init, suite_clean);
    CU_add_test(s, "sign/verify roundtrip", test_roundtrip);
    CU_add_test(s, "iat_ms carries the milliseconds", test_iat_ms);
    CU_add_test(s, "sid names the login", test_sid);
    CU_add_test(s, "signature is 64-byte R||S", test_signature_is_raw_r_s);
    CU_add_test(s, "tampered signature", test_tampered_signature);
    CU_add_test(s, "tampered payload", test_tampered_payload);
    CU_add_test(s, "the high-S twin of a signature", test_high_s_twin_rejected);
    CU_add_test(s, "alg none", test_alg_none);
    CU_add_test(s, "HS256 keyed with the public key", test_hs256_with_public_key);
    CU_add_test(s, "expired / not yet valid", test_expired_and_not_yet_valid);
    CU_add_test(s, "wrong aud / iss", test_wrong_aud_iss);
    CU_add_test(s, "missing and mistyped claims", test_missing_and_bad_claims);
    CU_add_test(s, "unknown kid / untrusted key", test_unknown_kid_and_other_key);
    CU_add_test(s, "DER signature rejected", test_der_signature_rejected);
    CU_add_test(s, "malformed tokens", test_malformed);
    CU_add_test(s, "JWKS", test_jwks);
    CU_add_test(s, "roles", test_roles);
    CU_add_test(s, "key rotation", test_rotation);   /* last: changes the key set */
    return cunit_run_all();
}
