/* handlers.c: the auth service's endpoints, one function each: parse and
 * validate the body, authorize, call the store, answer.  Identity lives
 * here: passwords are Argon2id (libsodium), access tokens come from
 * lib/token.c, refresh tokens from the store.
 *
 * Login never tells an unknown email from a wrong password: both answer the
 * same 401 after the same Argon2id work (an unknown email is checked against
 * a dummy hash made at start-up). */
#include <ctype.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wctype.h>

#include "config.h"
#include "db.h"
#include "handlers.h"
#include "json.h"
#include "log.h"
#include "problem.h"
#include "revoke.h"
#include "store.h"
#include "token.h"

/* Argon2id cost: the stronger of OWASP's minimum (19 MiB, t=2) and
 * libsodium's INTERACTIVE level.  Every concurrent login holds this much
 * memory; the FastCGI pool size bounds how many run at once. */
#define AUTH_OPSLIMIT (crypto_pwhash_OPSLIMIT_INTERACTIVE > 2 ? \
                       crypto_pwhash_OPSLIMIT_INTERACTIVE : 2)
#define AUTH_MEMLIMIT (crypto_pwhash_MEMLIMIT_INTERACTIVE > 19u * 1024 * 1024 ? \
                       crypto_pwhash_MEMLIMIT_INTERACTIVE : 19u * 1024 * 1024)

#define AUTH_PASSWORD_MIN 8
#define AUTH_PASSWORD_MAX 128
#define AUTH_INPUT_MAX HTTP_MAX_BODY   /* raw string bound before our own checks */

static char auth_dummy_hash[crypto_pwhash_STRBYTES];

/* ------------------------------------------------------------ helpers */

int auth_password_hash(const char *pw, char out[crypto_pwhash_STRBYTES])
{
    return crypto_pwhash_str_alg(out, pw, strlen(pw), AUTH_OPSLIMIT, AUTH_MEMLIMIT,
                                 crypto_pwhash_ALG_ARGON2ID13) == 0 ? 0 : -1;
}

int auth_password_ok(const char *pw)
{
    long n = pw ? json_utf8_len(pw, strlen(pw)) : -1;
    return n >= AUTH_PASSWORD_MIN && n <= AUTH_PASSWORD_MAX;
}

int auth_email_normalize(const char *in, char *email, char *norm)
{
    if (!in)
        return -1;
    size_t len = strlen(in);
    while (len && isspace((unsigned char)in[len - 1]))
        len--;
    while (len && isspace((unsigned char)*in)) {
        in++;
        len--;
    }
    long chars = json_utf8_len(in, len);
    if (len == 0 || chars < 0 || chars > STORE_EMAIL_MAX)
        return -1;
    const char *at = memchr(in, '@', len);
    if (!at || at == in || at == in + len - 1 || memchr(at + 1, '@', len - (size_t)(at + 1 - in)))
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c <= 0x20 || c == 0x7f)     /* spaces and control characters */
            return -1;
        email[i] = (char)c;
        /* ASCII folding here; the column's accent-sensitive, case-insensitive
         * collation (schema.sql) also folds the rest of Unicode. */
        norm[i] = (char)tolower(c);
    }
    email[len] = norm[len] = '\0';
    return 0;
}

/* Whether non-ASCII code point cp is a letter or digit, by glibc's C.UTF-8
 * character classes (Unicode's, built into glibc): what a domain label may
 * hold beyond ASCII.  Without that locale none is. */
static bool auth_domain_char(long cp)
{
    static locale_t utf8;
    if (!utf8 && !(utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0))) {
        log_error("locale C.UTF-8 unavailable: non-ASCII domains refused");
        return false;
    }
    return iswalnum_l((wint_t)cp, utf8);
}

int auth_email_valid(const char *email)
{
    const char *at = strchr(email, '@');
    if (!at)
        return 0;
    char prev = '.';                    /* so a leading dot counts as doubled */
    const char *end = email + strlen(email);
    for (const char *p = email; *p;) {
        bool domain = p > at;
        unsigned char c = (unsigned char)*p;
        if (c >= 0x80) {
            long cp = json_utf8_next(&p, end);
            if (cp < 0 || json_char_blank(cp))   /* invisible or blank: never in an address */
                return 0;
            if (domain && !auth_domain_char(cp))  /* no symbol, mark or private use */
                return 0;
            prev = 'x';
            continue;
        }
        p++;
        if (c == '@') {
            if (prev == '.')
                return 0;               /* the local part ends with a dot */
            prev = '.';
            continue;
        }
        if (c == '.' && prev == '.')
            return 0;                   /* an empty atom or label */
        /* RFC 5322's specials never stand unquoted in an address (quoted
         * local parts are not taken); a domain is letters, digits, hyphens. */
        if (strchr("()<>[]:;,\\\"", c) ||
            (domain && c != '.' && c != '-' && !isalnum(c)))
            return 0;
        if (domain && c == '-' && prev == '.')
            return 0;                   /* a label starts with a hyphen */
        if (domain && c == '.' && prev == '-')
            return 0;                   /* a label ends with one */
        prev = (char)c;
    }
    return prev != '.' && prev != '-';  /* nor does the domain end in either */
}

static long auth_ttl(const char *key, long def)
{
    long long v = config_int(key, def);
    return v > 0 && v <= 365LL * 86400 ? (long)v : def;
}

/* The public view of a user: never the password hash. */
static json_object *auth_user_json(const auth_user *u)
{
    json_object *o = json_object_new_object();
    json_set_int(o, "id", u->id);
    json_set_str(o, "email", u->email);
    json_set_str(o, "name", u->has_name ? u->name : NULL);
    json_set_str(o, "role", token_role_name(u->role));
    json_set_str(o, "created_at", u->created_at);
    return o;
}

static int auth_reply_user(http_req *req, int status, const auth_user *u)
{
    http_add_header(req, "Cache-Control", "no-store");
    return http_reply_json(req, status, auth_user_json(u));
}

/* 200 with a fresh access token for u, issued at iat_ms, of login sid, and
 * the given refresh token. */
static int auth_reply_tokens(http_req *req, const auth_user *u, int64_t iat_ms,
                             const char *refresh, const char *sid)
{
    long ttl = auth_ttl("ACCESS_TTL", 900);
    char *access = token_sign_ms(u->id, u->role, iat_ms, ttl, sid);
    if (!access)
        return problem_internal(req, "token_sign failed (signing key loaded?)");
    json_object *o = json_object_new_object();
    json_set_str(o, "access_token", access);
    json_set_str(o, "token_type", "Bearer");
    json_set_int(o, "expires_in", ttl);
    json_set_str(o, "refresh_token", refresh);
    json_object_object_add(o, "user", auth_user_json(u));
    free(access);
    http_add_header(req, "Cache-Control", "no-store");
    return http_reply_json(req, 200, o);
}

/* 422 when errs holds anything (takes it); else frees it and returns 0. */
static int auth_check_errors(http_req *req, json_object *errs)
{
    if (json_object_array_length(errs) > 0)
        return problem_invalid(req, errs);
    json_object_put(errs);
    return 0;
}

/* Reads the one-member {refresh_token} body of refresh and logout. */
static int auth_read_refresh_body(http_req *req, const char **token)
{
    static const char *const allowed[] = {"refresh_token", NULL};
    json_object *errs = json_object_new_array();
    json_check_fields(req->json, allowed, errs);
    /* Any string is a token to check: a wrong one is 401, not 422. */
    json_get_str(req->json, "refresh_token", 0, AUTH_INPUT_MAX, true, token, errs);
    return auth_check_errors(req, errs);
}

/* ------------------------------------------------------------ endpoints */

/* POST /auth/register {email, password, name?} -> 201 user + Location. */
int auth_register(http_req *req)
{
    static const char *const allowed[] = {"email", "password", "name", NULL};
    const char *email_in = NULL, *password = NULL, *name = NULL;
    char email[STORE_EMAIL_MAX * 4 + 1], norm[STORE_EMAIL_MAX * 4 + 1];
    json_object *errs = json_object_new_array();

    json_check_fields(req->json, allowed, errs);
    if (json_get_str(req->json, "email", 1, AUTH_INPUT_MAX, true, &email_in, errs) == JSON_OK &&
        (auth_email_normalize(email_in, email, norm) != 0 || !auth_email_valid(email)))
        json_add_error(errs, "email", "must be an email address (local@domain) of at most 254 characters");
    json_get_str(req->json, "password", AUTH_PASSWORD_MIN, AUTH_PASSWORD_MAX, true, &password, errs);
    if (!json_null_member(req->json, "name"))     /* null: no name, as absent */
        json_get_str(req->json, "name", 0, STORE_NAME_MAX, false, &name, errs);
    int rc = auth_check_errors(req, errs);
    if (rc)
        return rc;

    char hash[crypto_pwhash_STRBYTES];
    if (auth_password_hash(password, hash) != 0)
        return problem_internal(req, "crypto_pwhash_str_alg failed (out of memory?)");
    auth_user u;
    rc = store_user_create(email, norm, name, hash, &u);
    if (rc == DB_CONFLICT)
        return problem_send(req, 409, "email_taken", "An account with this email already exists.");
    if (rc < 0)
        return problem_db(req, rc);
    log_info("registered user %lld", (long long)u.id);
    http_add_header(req, "Location", "/auth/users/%lld", (long long)u.id);
    return auth_reply_user(req, 201, &u);
}

/* POST /auth/login {email, password} -> 200 tokens, or 401 invalid_credentials. */
int auth_login(http_req *req)
{
    static const char *const allowed[] = {"email", "password", NULL};
    const char *email_in = NULL, *password = NULL;
    char email[STORE_EMAIL_MAX * 4 + 1], norm[STORE_EMAIL_MAX * 4 + 1];
    json_object *errs = json_object_new_array();

    json_check_fields(req->json, allowed, errs);
    json_get_str(req->json, "email", 1, AUTH_INPUT_MAX, true, &email_in, errs);
    json_get_str(req->json, "password", 1, AUTH_INPUT_MAX, true, &password, errs);
    int rc = auth_check_errors(req, errs);
    if (rc)
        return rc;

    /* Whatever is wrong, the same Argon2id work is done before answering. */
    auth_user u;
    rc = STORE_NOT_FOUND;
    if (auth_email_normalize(email_in, email, norm) == 0 && auth_password_ok(password)) {
        rc = store_user_by_email(norm, &u);
        if (rc < 0 && rc != STORE_NOT_FOUND)
            return problem_db(req, rc);
    }
    const char *hash = rc == 0 ? u.password_hash : auth_dummy_hash;
    bool ok = crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
    if (rc != 0 || !ok)
        return problem_send(req, 401, "invalid_credentials", "Email or password is wrong.");

    char fresh[crypto_pwhash_STRBYTES] = "";
    if (crypto_pwhash_str_needs_rehash(u.password_hash, AUTH_OPSLIMIT, AUTH_MEMLIMIT) != 0) {
        if (auth_password_hash(password, fresh) != 0 ||
            store_user_rehash(u.id, u.password_hash, fresh) != 0) {
            log_warn("could not rehash the password of user %lld", (long long)u.id);
            fresh[0] = '\0';
        }
    }
    char refresh[STORE_REFRESH_LEN + 1], sid[TOKEN_SID_LEN + 1], verified[sizeof u.password_hash];
    snprintf(verified, sizeof verified, "%s", u.password_hash);
    int64_t at_ms = 0;
    rc = store_refresh_issue(u.id, verified, fresh[0] ? fresh : NULL,
                             auth_ttl("REFRESH_TTL", 2592000), refresh, sid, &u, &at_ms);
    if (rc == STORE_REJECTED) {
        log_info("login of user %lld refused: its password changed while it was checked",
                 (long long)u.id);
        return problem_send(req, 401, "invalid_credentials", "Email or password is wrong.");
    }
    if (rc < 0)
        return problem_db(req, rc);
    return auth_reply_tokens(req, &u, at_ms, refresh, sid);
}

/* POST /auth/refresh {refresh_token} -> 200 tokens (the presented one is
 * spent), or 401 unauthorized for anything not an active, unexpired token. */
int auth_refresh(http_req *req)
{
    const char *presented = NULL;
    int rc = auth_read_refresh_body(req, &presented);
    if (rc)
        return rc;
    char next[STORE_REFRESH_LEN + 1], sid[TOKEN_SID_LEN + 1];
    auth_user u;
    int64_t at_ms = 0;      /* taken under the token's row lock (store.h) */
    rc = store_refresh_rotate(presented, auth_ttl("REFRESH_TTL", 2592000), next, sid, &u, &at_ms);
    if (rc == STORE_REJECTED)
        return problem_send(req, 401, "unauthorized", "The refresh token is invalid, expired or already used.");
    if (rc < 0)
        return problem_db(req, rc);
    return auth_reply_tokens(req, &u, at_ms, next, sid);
}

/* POST /auth/logout {refresh_token} -> 204, whether or not the token was
 * known (answering otherwise would tell which tokens exist). */
int auth_logout(http_req *req)
{
    const char *presented = NULL;
    int rc = auth_read_refresh_body(req, &presented);
    if (rc)
        return rc;
    rc = store_refresh_revoke(presented);
    if (rc < 0)
        return problem_db(req, rc);
    return http_reply_empty(req, 204);
}

/* Reads user `id` and answers it, 404 when it does not exist. */
static int auth_reply_user_by_id(http_req *req, int64_t id)
{
    auth_user u;
    int rc = store_user_by_id(id, &u);
    if (rc == STORE_NOT_FOUND)
        return problem_send(req, 404, "not_found", "No such user.");
    if (rc < 0)
        return problem_db(req, rc);
    return auth_reply_user(req, 200, &u);
}

/* GET /auth/me -> 200 user of the token. */
int auth_me(http_req *req)
{
    return auth_reply_user_by_id(req, req->auth.user_id);
}

/* GET /auth/users/{id}: self or admin.  Anyone else gets the same 404 as
 * for a user that does not exist, so ids cannot be probed. */
int auth_user_get(http_req *req)
{
    if (req->auth.role != USER_ADMIN && req->auth.user_id != req->id)
        return problem_send(req, 404, "not_found", "No such user.");
    return auth_reply_user_by_id(req, req->id);
}

/* PATCH /auth/users/{id} {role}: admin only (the route table says so). */
int auth_user_patch(http_req *req)
{
    static const char *const allowed[] = {"role", NULL};
    const char *role_s = NULL;
    json_object *errs = json_object_new_array();
    json_check_fields(req->json, allowed, errs);
    user_role role = USER_ANON;
    if (json_get_str(req->json, "role", 1, 16, true, &role_s, errs) == JSON_OK &&
        (role = token_role_parse(role_s)) == USER_ANON)
        json_add_error(errs, "role", "must be customer, seller or admin");
    int rc = auth_check_errors(req, errs);
    if (rc)
        return rc;
    auth_user u;
    user_role old = USER_ANON;
    char changed_at[STORE_CHANGED_AT_LEN];
    rc = store_user_set_role(req->id, req->auth.user_id, role, changed_at, &u, &old);
    if (rc == STORE_REJECTED) {
        log_warn("user %lld, no longer an admin, tried to set user %lld's role with an older token",
                 (long long)req->auth.user_id, (long long)req->id);
        return problem_send(req, 403, "forbidden", "Only an admin changes roles.");
    }
    if (rc == STORE_NOT_FOUND)
        return problem_send(req, 404, "not_found", "No such user.");
    if (rc == STORE_INVALID_STATE)
        return problem_send(req, 409, "invalid_state",
                            "This is the only admin: make another user admin first.");
    if (rc < 0)
        return problem_db(req, rc);
    log_info("user %lld role set to %s (was %s) by user %lld at %s", (long long)u.id,
             token_role_name(role), token_role_name(old), (long long)req->auth.user_id, changed_at);
    return auth_reply_user(req, 200, &u);
}

/* POST /auth/password {current_password, new_password} -> 204.  The
 * signed-in user's own password: a wrong current one is 401
 * invalid_credentials.  Every refresh token of the user is revoked and
 * user.password_changed is written with the change, so every host refuses
 * the access tokens issued before it (401, revoked) within seconds. */
int auth_password_change(http_req *req)
{
    static const char *const allowed[] = {"current_password", "new_password", NULL};
    const char *current = NULL, *fresh = NULL;
    json_object *errs = json_object_new_array();
    json_check_fields(req->json, allowed, errs);
    json_get_str(req->json, "current_password", 1, AUTH_INPUT_MAX, true, &current, errs);
    json_get_str(req->json, "new_password", AUTH_PASSWORD_MIN, AUTH_PASSWORD_MAX, true, &fresh, errs);
    int rc = auth_check_errors(req, errs);
    if (rc)
        return rc;
    auth_user u;
    rc = store_user_by_id(req->auth.user_id, &u);
    if (rc < 0 && rc != STORE_NOT_FOUND)
        return problem_db(req, rc);
    const char *hash = rc == 0 ? u.password_hash : auth_dummy_hash;
    bool ok = crypto_pwhash_str_verify(hash, current, strlen(current)) == 0;
    if (rc != 0 || !ok) {
        log_info("password change for user %lld refused: wrong current password",
                 (long long)req->auth.user_id);
        return problem_send(req, 401, "invalid_credentials", "The current password is wrong.");
    }
    char next[crypto_pwhash_STRBYTES];
    if (auth_password_hash(fresh, next) != 0)
        return problem_internal(req, "crypto_pwhash_str_alg failed (out of memory?)");
    char changed_at[STORE_CHANGED_AT_LEN];
    rc = store_user_set_password(u.id, u.password_hash, next, changed_at);
    if (rc == STORE_REJECTED)     /* changed meanwhile: what was checked is no longer current */
        return problem_send(req, 401, "invalid_credentials", "The current password is wrong.");
    if (rc < 0)
        return problem_db(req, rc);
    log_info("user %lld changed their password at %s", (long long)u.id, changed_at);
    http_add_header(req, "Cache-Control", "no-store");
    return http_reply_empty(req, 204);
}

/* GET /auth/jwks.json: the verification keys, for anyone (other services,
 * clients).  Cacheable for a short while: rotation publishes the new key
 * well before it signs anything. */
int auth_jwks(http_req *req)
{
    http_add_header(req, "Cache-Control", "public, max-age=300");
    return http_reply_json(req, 200, token_jwks());
}

/* ------------------------------------------------------------ setup */

int auth_init(void)
{
    const char *key = config_get("JWT_PRIVATE_KEY", NULL);
    const char *kid = config_get("JWT_KID", NULL);
    if (!key || !kid || token_load_private(key, kid) != 0) {
        log_error("cannot load the signing key (JWT_PRIVATE_KEY=%s, JWT_KID=%s)",
                  key ? key : "unset", kid ? kid : "unset");
        return -1;
    }
    /* A hash of a random password at the current cost: verifying against it
     * takes as long as against a real user's hash. */
    unsigned char rnd[16];
    char pw[33];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(pw, sizeof pw, rnd, sizeof rnd);
    if (auth_password_hash(pw, auth_dummy_hash) != 0) {
        log_error("cannot compute the dummy password hash");
        return -1;
    }
    return 0;
}
