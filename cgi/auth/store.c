/* store.c: all of the auth service's SQL (database shop_auth).  Every public
 * function runs inside db_tx(), so a lost connection, a Galera node going
 * away or a certification conflict is retried as a whole instead of failing
 * the request.  Timestamps are written as UTC_TIMESTAMP() so they do not
 * depend on any session or server time zone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "db.h"
#include "log.h"
#include "revoke.h"
#include "store.h"
#include "token.h"

#define STORE_HASH_LEN crypto_hash_sha256_BYTES   /* 32: refresh_tokens.token_hash */
#define STORE_FAMILY_LEN 16                        /* refresh_tokens.family_id */
#define STORE_TOKEN_BYTES 32                       /* 256-bit refresh tokens */

/* Each statement lives in one place: db.c caches prepared statements by
 * the address of their text. */
static const char SQL_USER_BY_ID[] =
    "SELECT id, email, name, role, created_at, password_hash FROM users WHERE id = ?";
static const char SQL_USER_BY_EMAIL[] =
    "SELECT id, email, name, role, created_at, password_hash FROM users WHERE email_norm = ?";
static const char SQL_USER_INSERT[] =
    "INSERT INTO users (email, email_norm, name, role, password_hash, created_at) "
    "VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(3))";
static const char SQL_USER_ID_FOR_UPDATE[] =
    "SELECT id, role, password_hash FROM users WHERE email_norm = ? FOR UPDATE";
static const char SQL_USER_RESET[] =
    "UPDATE users SET role = ?, password_hash = ?, name = COALESCE(?, name) WHERE id = ?";
static const char SQL_USER_SET_ROLE[] =
    "UPDATE users SET role = ? WHERE id = ?";
/* The user whose role changes and the admin changing it, locked in id order
 * (two admins demoting each other lock the same two rows the same way). */
static const char SQL_USER_ROLES_FOR_UPDATE[] =
    "SELECT id, role FROM users WHERE id IN (?, ?) ORDER BY id FOR UPDATE";
static const char SQL_USER_SET_PASSWORD[] =
    "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?";
static const char SQL_OUTBOX_INSERT[] =
    "INSERT INTO outbox (event_type, subject, payload, request_id, created_at)"
    " VALUES (?, ?, ?, NULLIF(?, ''), UTC_TIMESTAMP(3))";
static const char SQL_USER_REHASH[] =
    "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?";
static const char SQL_REFRESH_INSERT[] =
    "INSERT INTO refresh_tokens (token_hash, family_id, user_id, status, expires_at, created_at) "
    "VALUES (?, ?, ?, 'active', UTC_TIMESTAMP(3) + INTERVAL ? SECOND, UTC_TIMESTAMP(3))";
static const char SQL_REFRESH_LOCK[] =
    "SELECT id, family_id, user_id, status, expires_at <= UTC_TIMESTAMP(3) "
    "FROM refresh_tokens WHERE token_hash = ? FOR UPDATE";
static const char SQL_REFRESH_SPEND[] =
    "UPDATE refresh_tokens SET status = 'used', spent_at = UTC_TIMESTAMP(3) WHERE id = ?";
static const char SQL_REFRESH_REVOKE_FAMILY[] =
    "UPDATE refresh_tokens SET status = 'revoked', spent_at = UTC_TIMESTAMP(3)"
    " WHERE family_id = ? AND status = 'active'";
static const char SQL_REFRESH_REVOKE_USER[] =
    "UPDATE refresh_tokens SET status = 'revoked', spent_at = UTC_TIMESTAMP(3)"
    " WHERE user_id = ? AND status = 'active'";

/* ------------------------------------------------------------ helpers */

/* Copies a DB text column into dst (size n); NULL becomes "". */
/* Runs a users SELECT (id or email_norm parameter) and fills *out.
 * Returns 0, STORE_NOT_FOUND or DB_ERROR. */
static int store_user_fetch(const char *sql, int64_t id, const char *email_norm, auth_user *out)
{
    db_res *r = email_norm ? db_query(sql, "s", email_norm) : db_query(sql, "i", id);
    if (!r)
        return DB_ERROR;
    if (db_rows(r) == 0) {
        db_free(r);
        return STORE_NOT_FOUND;
    }
    memset(out, 0, sizeof *out);
    out->id = db_int(r, 0, 0);
    db_copy(out->email, sizeof out->email, r, 0, 1);
    out->has_name = !db_null(r, 0, 2);
    db_copy(out->name, sizeof out->name, r, 0, 2);
    out->role = token_role_parse(db_str(r, 0, 3));
    db_time_rfc3339(db_str(r, 0, 4), out->created_at, sizeof out->created_at);
    db_copy(out->password_hash, sizeof out->password_hash, r, 0, 5);
    db_free(r);
    return 0;
}

/* Hashes a client's refresh token.  Returns 0, or -1 when it is not the
 * base64url form of 32 bytes (then it cannot be one of ours). */
static int store_token_hash(const char *token, unsigned char hash[STORE_HASH_LEN])
{
    unsigned char raw[STORE_TOKEN_BYTES];
    size_t len = 0;
    if (!token || strlen(token) != STORE_REFRESH_LEN ||
        sodium_base642bin(raw, sizeof raw, token, STORE_REFRESH_LEN, NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        len != sizeof raw)
        return -1;
    crypto_hash_sha256(hash, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    return 0;
}

/* Makes a fresh token in `token` and records it (family, user, ttl).
 * Returns 0 or a db.h error (inside a transaction). */
static int store_token_insert(const unsigned char family[STORE_FAMILY_LEN], int64_t user_id,
                              long ttl, char token[STORE_REFRESH_LEN + 1])
{
    unsigned char raw[STORE_TOKEN_BYTES], hash[STORE_HASH_LEN];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(token, STORE_REFRESH_LEN + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    crypto_hash_sha256(hash, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    int64_t rc = db_exec(SQL_REFRESH_INSERT, "bbii", hash, sizeof hash, family,
                         (size_t)STORE_FAMILY_LEN, user_id, (int64_t)ttl);
    return rc == 1 ? 0 : rc < 0 ? (int)rc : DB_ERROR;
}

/* Writes one event into the outbox (inside the caller's transaction):
 * type, the user as subject, data as its JSON text.  Returns 0 or DB_ERROR. */
static int store_outbox(const char *type, int64_t user_id, const char *data)
{
    char subject[24];
    snprintf(subject, sizeof subject, "%lld", (long long)user_id);
    return db_exec(SQL_OUTBOX_INSERT, "ssss", type, subject, data, log_current_request_id()) == 1
               ? 0 : DB_ERROR;
}

/* ------------------------------------------------------------ users */

typedef struct user_args {
    const char *email, *email_norm, *name, *hash, *old_hash;
    const char *password;            /* upsert: the plain password, to compare */
    char *changed_at;                /* out (STORE_CHANGED_AT_LEN): RFC 3339 with ms,
                                        taken under the user's row lock */
    user_role role, old_role;
    int64_t id, actor;
    auth_user *out;
} user_args;

static int store_user_create_tx(void *arg)
{
    user_args *a = arg;
    int64_t rc = db_exec(SQL_USER_INSERT, "sssss", a->email, a->email_norm, a->name,
                         token_role_name(USER_CUSTOMER), a->hash);
    if (rc == DB_CONFLICT && db_tx_outcome_unknown()) {
        /* The last attempt's COMMIT got no answer: the user in the way may
         * be its own, told by the Argon2id hash (salted at random, this
         * request's alone). */
        rc = store_user_fetch(SQL_USER_BY_EMAIL, 0, a->email_norm, a->out);
        if (rc == 0 && strcmp(a->out->password_hash, a->hash) == 0)
            return DB_OK;
        return rc == 0 || rc == STORE_NOT_FOUND ? DB_CONFLICT : (int)rc;
    }
    if (rc < 0)
        return (int)rc;          /* DB_CONFLICT rolls back and comes out as is */
    int64_t id = db_last_id();
    rc = store_user_fetch(SQL_USER_BY_ID, id, NULL, a->out);
    return rc == STORE_NOT_FOUND ? DB_ERROR : (int)rc;
}

int store_user_create(const char *email, const char *email_norm, const char *name,
                      const char *password_hash, auth_user *out)
{
    user_args a = {.email = email, .email_norm = email_norm, .name = name,
                   .hash = password_hash, .out = out};
    return db_tx(store_user_create_tx, &a);
}

/* Another admin, locked, so two admins demoting each other at once cannot
 * both go through (one waits, then finds none). */
static const char SQL_OTHER_ADMIN_FOR_UPDATE[] =
    "SELECT id FROM users WHERE role = 'admin' AND id <> ? LIMIT 1 FOR UPDATE";

/* 0 when user `id` may go from role `from` to `to`: the shop keeps at least
 * one admin.  STORE_INVALID_STATE when it is the last, or a DB error. */
static int store_keeps_an_admin(int64_t id, user_role from, user_role to)
{
    if (from != USER_ADMIN || to == USER_ADMIN)
        return 0;
    db_res *r = db_query(SQL_OTHER_ADMIN_FOR_UPDATE, "i", id);
    if (!r)
        return DB_ERROR;
    int others = db_rows(r);
    db_free(r);
    return others ? 0 : STORE_INVALID_STATE;
}

/* An existing user gets what an admin's role change and a password change
 * would give: the last admin stays one, the events void the tokens issued
 * before (on every host), a new password revokes the refresh tokens.  The
 * same role and password (a repeated `stack up`) change nothing. */
static int store_user_upsert_tx(void *arg)
{
    user_args *a = arg;
    db_res *r = db_query(SQL_USER_ID_FOR_UPDATE, "s", a->email_norm);
    if (!r)
        return DB_ERROR;
    int64_t id = db_rows(r) ? db_int(r, 0, 0) : 0;
    user_role old = id ? token_role_parse(db_str(r, 0, 1)) : USER_ANON;
    char old_hash[crypto_pwhash_STRBYTES] = "";
    if (id)
        db_copy(old_hash, sizeof old_hash, r, 0, 2);
    db_free(r);
    bool same_pw = id && crypto_pwhash_str_verify(old_hash, a->password,
                                                  strlen(a->password)) == 0;
    const char *role = token_role_name(a->role);
    if (!id) {
        int64_t rc = db_exec(SQL_USER_INSERT, "sssss", a->email, a->email_norm, a->name,
                             role, a->hash);
        if (rc < 0)
            return rc == DB_CONFLICT ? DB_ERROR : (int)rc;
        a->id = db_last_id();
        return 0;
    }
    a->id = id;
    if (old == a->role && same_pw && !a->name)
        return 0;
    int rc = store_keeps_an_admin(id, old, a->role);
    if (rc != 0)
        return rc;
    if (db_exec(SQL_USER_RESET, "sssi", role, same_pw ? old_hash : a->hash, a->name, id) < 0 ||
        (!same_pw && db_exec(SQL_REFRESH_REVOKE_USER, "i", id) < 0))
        return DB_ERROR;
    /* After the locks, as in a password change (store.h). */
    char changed_at[STORE_CHANGED_AT_LEN], data[256];
    auth_time_ms_rfc3339(revoke_now_ms(), changed_at, sizeof changed_at);
    if (!same_pw) {
        snprintf(data, sizeof data, "{\"user_id\":%lld,\"changed_at\":\"%s\"}",
                 (long long)id, changed_at);
        if (store_outbox("user.password_changed", id, data) != 0)
            return DB_ERROR;
    }
    if (old != a->role) {
        snprintf(data, sizeof data,
                 "{\"user_id\":%lld,\"old_role\":\"%s\",\"new_role\":\"%s\",\"changed_at\":\"%s\"}",
                 (long long)id, token_role_name(old), role, changed_at);
        if (store_outbox("user.role_changed", id, data) != 0)
            return DB_ERROR;
    }
    return 0;
}

int64_t store_user_upsert(const char *email, const char *email_norm, const char *name,
                          user_role role, const char *password, const char *password_hash)
{
    user_args a = {.email = email, .email_norm = email_norm, .name = name,
                   .password = password, .hash = password_hash, .role = role};
    int rc = db_tx(store_user_upsert_tx, &a);
    return rc < 0 ? rc : a.id;
}

static int store_user_by_email_tx(void *arg)
{
    user_args *a = arg;
    return store_user_fetch(SQL_USER_BY_EMAIL, 0, a->email_norm, a->out);
}

int store_user_by_email(const char *email_norm, auth_user *out)
{
    user_args a = {.email_norm = email_norm, .out = out};
    return db_tx(store_user_by_email_tx, &a);
}

static int store_user_by_id_tx(void *arg)
{
    user_args *a = arg;
    return store_user_fetch(SQL_USER_BY_ID, a->id, NULL, a->out);
}

int store_user_by_id(int64_t id, auth_user *out)
{
    user_args a = {.id = id, .out = out};
    return db_tx(store_user_by_id_tx, &a);
}

static int store_user_set_role_tx(void *arg)
{
    user_args *a = arg;
    db_res *r = db_query(SQL_USER_ROLES_FOR_UPDATE, "ii", a->id, a->actor);
    if (!r)
        return DB_ERROR;
    /* The token says the actor is an admin; the row says whether that is
     * still so.  A demoted admin's token lives on for a moment (until every
     * host has the revocation), but must not make an admin in that moment. */
    bool found = false, actor_admin = false;
    for (int k = 0; k < db_rows(r); k++) {
        user_role role = token_role_parse(db_str(r, k, 1));
        if (db_int(r, k, 0) == a->actor && role == USER_ADMIN)
            actor_admin = true;
        if (db_int(r, k, 0) == a->id) {
            found = true;
            a->old_role = role;
        }
    }
    db_free(r);
    if (!actor_admin)
        return STORE_REJECTED;
    if (!found)
        return STORE_NOT_FOUND;
    int rc = store_keeps_an_admin(a->id, a->old_role, a->role);
    if (rc != 0)
        return rc;
    if (a->old_role != a->role) {
        if (db_exec(SQL_USER_SET_ROLE, "si", token_role_name(a->role), a->id) < 0)
            return DB_ERROR;
        /* After the row lock: a refresh or login that read the old role
         * (under its share lock) committed before, so its token is older
         * than this mark and void with the rest. */
        auth_time_ms_rfc3339(revoke_now_ms(), a->changed_at, STORE_CHANGED_AT_LEN);
        char data[256];
        snprintf(data, sizeof data,
                 "{\"user_id\":%lld,\"old_role\":\"%s\",\"new_role\":\"%s\",\"changed_at\":\"%s\"}",
                 (long long)a->id, token_role_name(a->old_role), token_role_name(a->role),
                 a->changed_at);
        if (store_outbox("user.role_changed", a->id, data) != 0)
            return DB_ERROR;
    }
    return store_user_fetch(SQL_USER_BY_ID, a->id, NULL, a->out);
}

int store_user_set_role(int64_t id, int64_t actor, user_role role,
                        char changed_at[STORE_CHANGED_AT_LEN], auth_user *out, user_role *old_role)
{
    changed_at[0] = '\0';
    user_args a = {.id = id, .actor = actor, .role = role, .changed_at = changed_at, .out = out};
    int rc = db_tx(store_user_set_role_tx, &a);
    if (rc == 0 && old_role)
        *old_role = a.old_role;
    return rc;
}

static int store_user_set_password_tx(void *arg)
{
    user_args *a = arg;
    int64_t n = db_exec(SQL_USER_SET_PASSWORD, "sis", a->hash, a->id, a->old_hash);
    if (n < 0)
        return DB_ERROR;
    if (n == 0)
        return STORE_REJECTED;          /* changed (or gone) since it was checked */
    if (db_exec(SQL_REFRESH_REVOKE_USER, "i", a->id) < 0)
        return DB_ERROR;
    /* After the row locks (the user's, then its live refresh tokens'): a
     * login or refresh that committed first is older than this mark, so
     * its access token is void with the rest (its refresh token was just
     * revoked); one that comes after finds the new hash or a revoked
     * token. */
    auth_time_ms_rfc3339(revoke_now_ms(), a->changed_at, STORE_CHANGED_AT_LEN);
    char data[128];
    snprintf(data, sizeof data, "{\"user_id\":%lld,\"changed_at\":\"%s\"}",
             (long long)a->id, a->changed_at);
    return store_outbox("user.password_changed", a->id, data) != 0 ? DB_ERROR : 0;
}

int store_user_set_password(int64_t id, const char *old_hash, const char *new_hash,
                            char changed_at[STORE_CHANGED_AT_LEN])
{
    changed_at[0] = '\0';
    user_args a = {.id = id, .old_hash = old_hash, .hash = new_hash, .changed_at = changed_at};
    return db_tx(store_user_set_password_tx, &a);
}

static int store_user_rehash_tx(void *arg)
{
    user_args *a = arg;
    return db_exec(SQL_USER_REHASH, "sis", a->hash, a->id, a->old_hash) < 0 ? DB_ERROR : 0;
}

int store_user_rehash(int64_t id, const char *old_hash, const char *new_hash)
{
    user_args a = {.id = id, .hash = new_hash, .old_hash = old_hash};
    return db_tx(store_user_rehash_tx, &a);
}

/* ------------------------------------------------------------ refresh tokens */

typedef struct refresh_args {
    const unsigned char *hash;   /* presented token's hash (rotate, revoke) */
    int64_t at_ms;               /* rotate: when the row lock was held */
    int64_t user_id;
    long ttl;
    char *next;                  /* the token issued */
    char *sid;                   /* its family, in hex */
    auth_user *user;
    const char *hashes[2];       /* issue: the password hashes that may stand */
} refresh_args;

_Static_assert(TOKEN_SID_LEN == 2 * STORE_FAMILY_LEN, "a sid is its family in hex");

/* The user's row under a share lock: a role or password change waits for
 * the login or refresh holding it, and one that came first is seen. */
static const char SQL_USER_BY_ID_SHARED[] =
    "SELECT id, email, name, role, created_at, password_hash FROM users WHERE id = ?"
    " LOCK IN SHARE MODE";

static int store_refresh_issue_tx(void *arg)
{
    refresh_args *a = arg;
    int rc = store_user_fetch(SQL_USER_BY_ID_SHARED, a->user_id, NULL, a->user);
    if (rc != 0)
        return rc == STORE_NOT_FOUND ? STORE_REJECTED : rc;
    /* The password verified before (outside, it takes Argon2id's time)
     * must still be the user's: a change that committed meanwhile wins. */
    bool same = false;
    for (int i = 0; i < 2; i++)
        same = same || (a->hashes[i] && strcmp(a->user->password_hash, a->hashes[i]) == 0);
    if (!same)
        return STORE_REJECTED;
    a->at_ms = revoke_now_ms();  /* after the lock: see store.h */
    unsigned char family[STORE_FAMILY_LEN];
    randombytes_buf(family, sizeof family);
    sodium_bin2hex(a->sid, TOKEN_SID_LEN + 1, family, sizeof family);
    return store_token_insert(family, a->user_id, a->ttl, a->next);
}

int store_refresh_issue(int64_t user_id, const char *verified_hash, const char *rehashed,
                        long ttl, char token[STORE_REFRESH_LEN + 1], char sid[TOKEN_SID_LEN + 1],
                        auth_user *user, int64_t *at_ms)
{
    refresh_args a = {.user_id = user_id, .ttl = ttl, .next = token, .sid = sid,
                      .user = user, .hashes = {verified_hash, rehashed}};
    int rc = db_tx(store_refresh_issue_tx, &a);
    *at_ms = a.at_ms;
    return rc;
}

enum { ROTATE_OK = 0, ROTATE_REUSED = 1 };

/* Writes user.tokens_revoked for the family `sid` of user_id: its access
 * tokens issued before at_ms + 1 are void on every host.  (+ 1: the list
 * voids tokens issued strictly before its mark, and a rotation of this
 * family may have stamped its access token in this very millisecond.) */
static int store_family_revoked(int64_t user_id, const char *sid, int64_t at_ms, const char *reason)
{
    char data[256], changed_at[40];
    auth_time_ms_rfc3339(at_ms + 1, changed_at, sizeof changed_at);
    snprintf(data, sizeof data,
             "{\"user_id\":%lld,\"session\":\"%s\",\"changed_at\":\"%s\",\"reason\":\"%s\"}",
             (long long)user_id, sid, changed_at, reason);
    return store_outbox("user.tokens_revoked", user_id, data) != 0 ? DB_ERROR : 0;
}

/* Under the row lock: a spent or revoked token is a replay (possibly of a
 * stolen token), so every active token of its family dies with it, and so do
 * the family's access tokens issued until now (user.tokens_revoked: every
 * host refuses them; the user's other sign-ins are untouched).  That
 * revocation must commit; the caller still answers 401. */
static int store_refresh_rotate_tx(void *arg)
{
    refresh_args *a = arg;
    db_res *r = db_query(SQL_REFRESH_LOCK, "b", a->hash, (size_t)STORE_HASH_LEN);
    if (!r)
        return DB_ERROR;
    if (db_rows(r) == 0 || db_len(r, 0, 1) != STORE_FAMILY_LEN) {
        db_free(r);
        return STORE_REJECTED;
    }
    a->at_ms = revoke_now_ms();  /* after the lock: see store.h */
    int64_t id = db_int(r, 0, 0);
    unsigned char family[STORE_FAMILY_LEN];
    memcpy(family, db_str(r, 0, 1), STORE_FAMILY_LEN);
    sodium_bin2hex(a->sid, TOKEN_SID_LEN + 1, family, sizeof family);
    int64_t user_id = db_int(r, 0, 2);
    bool active = strcmp(db_str(r, 0, 3) ? db_str(r, 0, 3) : "", "active") == 0;
    bool expired = db_int(r, 0, 4) != 0;
    db_free(r);

    if (!active && db_tx_outcome_unknown()) {
        /* The last attempt's COMMIT got no answer: if the token it issued
         * (still in a->next) stands in this family, that attempt spent the
         * presented one, and this is no reuse. */
        unsigned char mine[STORE_HASH_LEN];
        if (store_token_hash(a->next, mine) == 0) {
            db_res *m = db_query(SQL_REFRESH_LOCK, "b", mine, (size_t)STORE_HASH_LEN);
            if (!m)
                return DB_ERROR;
            bool landed = db_rows(m) == 1 && db_len(m, 0, 1) == STORE_FAMILY_LEN &&
                          memcmp(db_str(m, 0, 1), family, STORE_FAMILY_LEN) == 0 &&
                          strcmp(db_str(m, 0, 3) ? db_str(m, 0, 3) : "", "active") == 0;
            db_free(m);
            if (landed) {
                int rc = store_user_fetch(SQL_USER_BY_ID, user_id, NULL, a->user);
                return rc == STORE_NOT_FOUND ? STORE_REJECTED : rc;
            }
        }
    }
    if (!active) {
        log_warn("refresh token reused: revoking its family (user %lld)", (long long)user_id);
        int64_t n = db_exec(SQL_REFRESH_REVOKE_FAMILY, "b", family, (size_t)STORE_FAMILY_LEN);
        if (n < 0)
            return DB_ERROR;
        /* A family already dead (logged out, password changed, a reuse seen
         * before) had no live token to steal: its access tokens were dealt
         * with then, and the user's newer ones are not this token's. */
        if (n == 0)
            return ROTATE_REUSED;
        if (store_family_revoked(user_id, a->sid, a->at_ms, "refresh_token_reused") != 0)
            return DB_ERROR;
        return ROTATE_REUSED;
    }
    if (expired)
        return STORE_REJECTED;
    if (db_exec(SQL_REFRESH_SPEND, "i", id) != 1)
        return DB_ERROR;
    int rc = store_token_insert(family, user_id, a->ttl, a->next);
    if (rc != 0)
        return rc;
    rc = store_user_fetch(SQL_USER_BY_ID_SHARED, user_id, NULL, a->user);
    a->at_ms = revoke_now_ms();  /* after the user's lock too: its current role */
    return rc == STORE_NOT_FOUND ? STORE_REJECTED : rc;
}

int store_refresh_rotate(const char *presented, long ttl, char next[STORE_REFRESH_LEN + 1],
                         char sid[TOKEN_SID_LEN + 1], auth_user *user, int64_t *at_ms)
{
    unsigned char hash[STORE_HASH_LEN];
    if (store_token_hash(presented, hash) != 0)
        return STORE_REJECTED;
    refresh_args a = {.hash = hash, .ttl = ttl, .next = next, .sid = sid, .user = user};
    next[0] = '\0';             /* no token issued yet (read after a lost COMMIT) */
    int rc = db_tx(store_refresh_rotate_tx, &a);
    *at_ms = a.at_ms;
    return rc == ROTATE_REUSED ? STORE_REJECTED : rc;
}

void auth_time_ms_rfc3339(int64_t ms, char *out, size_t n)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char sec[32];
    if (!gmtime_r(&s, &tm) || strftime(sec, sizeof sec, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(out, n, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, n, "%s.%03dZ", sec, (int)(ms % 1000));
}

/* Logout: the family's live refresh tokens and its access tokens die (a
 * family with no live token was dealt with when it died). */
static int store_refresh_revoke_tx(void *arg)
{
    refresh_args *a = arg;
    db_res *r = db_query(SQL_REFRESH_LOCK, "b", a->hash, (size_t)STORE_HASH_LEN);
    if (!r)
        return DB_ERROR;
    if (db_rows(r) == 0 || db_len(r, 0, 1) != STORE_FAMILY_LEN) {
        db_free(r);
        return 0;
    }
    unsigned char family[STORE_FAMILY_LEN];
    memcpy(family, db_str(r, 0, 1), STORE_FAMILY_LEN);
    int64_t user_id = db_int(r, 0, 2);
    db_free(r);
    int64_t n = db_exec(SQL_REFRESH_REVOKE_FAMILY, "b", family, (size_t)STORE_FAMILY_LEN);
    if (n <= 0)
        return n < 0 ? DB_ERROR : 0;
    char sid[TOKEN_SID_LEN + 1];
    sodium_bin2hex(sid, sizeof sid, family, sizeof family);
    return store_family_revoked(user_id, sid, revoke_now_ms(), "logout");
}

int store_refresh_revoke(const char *presented)
{
    unsigned char hash[STORE_HASH_LEN];
    if (store_token_hash(presented, hash) != 0)
        return 0;
    refresh_args a = {.hash = hash};
    return db_tx(store_refresh_revoke_tx, &a);
}

/* ------------------------------------------------------------ retention */

/* Each walks its own index (refresh_tokens_spent, refresh_tokens_expiry)
 * from the oldest end; active tokens have no spent_at. */
int64_t store_purge_spent(int64_t age_s, int batch, int max_batches)
{
    return db_purge("DELETE FROM refresh_tokens WHERE spent_at < UTC_TIMESTAMP(3) - INTERVAL ? SECOND"
                    " ORDER BY spent_at LIMIT ?", age_s, batch, max_batches);
}

int64_t store_purge_expired(int64_t age_s, int batch, int max_batches)
{
    return db_purge("DELETE FROM refresh_tokens WHERE expires_at < UTC_TIMESTAMP(3) - INTERVAL ? SECOND"
                    " ORDER BY expires_at LIMIT ?", age_s, batch, max_batches);
}
