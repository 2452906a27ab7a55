/* store.h: the auth service's data (shop_auth): users and refresh tokens.
 * All SQL lives behind this interface; callers never see HTTP here, and the
 * store never sees a request.  Results are the db.h codes (DB_UNAVAILABLE,
 * DB_ERROR, DB_CONFLICT) or the STORE_* outcomes below.
 *
 * Refresh tokens are 256-bit random values handed to the client as
 * base64url; only their SHA-256 is stored.  Every token descends from one
 * login (its family); a refresh spends the presented token and issues its
 * successor in the same family. */
#ifndef AUTH_STORE_H
#define AUTH_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include "db.h"
#include "token.h"   /* user_role */

#define STORE_EMAIL_MAX 254          /* characters */
#define STORE_NAME_MAX 200           /* characters */
#define STORE_CHANGED_AT_LEN 40      /* an RFC 3339 time with ms, and its NUL */
#define STORE_REFRESH_LEN 43         /* base64url of 32 bytes, no padding */

/* STORE_NOT_FOUND (no such user / unknown refresh token) and STORE_REJECTED
 * (refresh token expired, spent or revoked) are in db.h. */

typedef struct auth_user {
    int64_t id;
    char email[STORE_EMAIL_MAX * 4 + 1];
    char name[STORE_NAME_MAX * 4 + 1];
    bool has_name;                   /* false: name is JSON null */
    user_role role;
    char created_at[32];             /* RFC 3339 UTC, "2026-11-24T19:30:00.123Z" */
    char password_hash[256];         /* Argon2id string; never leaves the service */
} auth_user;

/* Inserts a customer.  email_norm is the case-folded identity (unique); name
 * may be NULL.  Returns 0 and fills *out, DB_CONFLICT when the email is
 * taken, or a DB error. */
int store_user_create(const char *email, const char *email_norm, const char *name,
                      const char *password_hash, auth_user *out);

/* Creates the user with `role`, or when email_norm exists sets its role and
 * password (and name when not NULL) as an admin's role change and a password
 * change would: the user.role_changed / user.password_changed events (the
 * tokens issued before die on every host), a new password revokes the
 * refresh tokens, the last admin stays one.  The same role and password
 * (`password` is compared with the stored hash) change nothing.  For the
 * --create-user CLI.  Returns the user id (> 0), STORE_INVALID_STATE (it
 * would leave no admin) or a DB error. */
int64_t store_user_upsert(const char *email, const char *email_norm, const char *name,
                          user_role role, const char *password, const char *password_hash);

/* Looks a user up.  Returns 0 and fills *out, STORE_NOT_FOUND, or a DB error. */
int store_user_by_email(const char *email_norm, auth_user *out);
int store_user_by_id(int64_t id, auth_user *out);

/* Sets a user's role on behalf of user `actor`, who must be an admin in the
 * database at that moment (not only in their token).  When it changes,
 * writes user.role_changed (with changed_at, RFC 3339 with milliseconds) to
 * the outbox in the same transaction.  Returns 0 and fills *out (and
 * *old_role when not NULL), STORE_REJECTED (the actor is no admin),
 * STORE_NOT_FOUND, STORE_INVALID_STATE (it would leave no admin: the shop
 * keeps at least one), or a DB error. */
int store_user_set_role(int64_t id, int64_t actor, user_role role,
                        char changed_at[STORE_CHANGED_AT_LEN], auth_user *out, user_role *old_role);

/* Replaces the password hash if it is still old_hash, revokes every refresh
 * token of the user and writes user.password_changed (changed_at) to the
 * outbox, all in one transaction.  Returns 0, STORE_REJECTED (the hash
 * changed meanwhile), or a DB error.  changed_at (both here and in
 * store_user_set_role, "" when nothing changed) is taken inside the
 * transaction once the rows are locked, after any login or refresh that
 * read the user first (they hold its row in share mode): their access
 * tokens are older than it. */
int store_user_set_password(int64_t id, const char *old_hash, const char *new_hash,
                            char changed_at[STORE_CHANGED_AT_LEN]);

/* Replaces the password hash if it is still `old_hash` (login rehash: a
 * concurrent password change wins).  Returns 0 or a DB error. */
int store_user_rehash(int64_t id, const char *old_hash, const char *new_hash);

/* Login: starts a new family for user_id and issues its first refresh
 * token, valid ttl seconds, into token (STORE_REFRESH_LEN + 1 bytes); the
 * family's id, in hex, goes into sid (the access tokens' `sid` claim,
 * token.h).  Under a share lock on the user's row it reads the user into
 * *user (the role for the access token) and checks that its password hash
 * is still verified_hash (or rehashed, the login's own rehash, may be NULL):
 * a password change that committed since the password was checked wins.
 * *at_ms is the moment after that lock: the access token's issue time.
 * Returns 0, STORE_REJECTED (the password changed, the user is gone), or a
 * DB error. */
int store_refresh_issue(int64_t user_id, const char *verified_hash, const char *rehashed,
                        long ttl, char token[STORE_REFRESH_LEN + 1], char sid[TOKEN_SID_LEN + 1],
                        auth_user *user, int64_t *at_ms);

/* Spends `presented` and issues its successor (same family, ttl seconds)
 * into next, the family's id into sid, in one transaction under a row lock,
 * and reads the owner into *user (its current role goes into the new access
 * token).  A spent or revoked token revokes its whole family and writes
 * user.tokens_revoked (session: the family; changed_at: its access tokens
 * issued before it are void) to the outbox in the same transaction.
 * *at_ms is the moment its locks were held (the token's row, then the
 * user's in share mode, so a role change that committed first is seen and
 * one that waited for it comes later): the new access token's issue time.
 * A reuse takes its changed_at after the token's lock, so when the reuse
 * waited on the lock of the rotation that spent the token, that rotation's
 * access token is older than the revocation and void with the rest.
 * Returns 0, STORE_REJECTED (unknown, malformed, expired, spent, revoked:
 * all look the same to the client), or a DB error. */
int store_refresh_rotate(const char *presented, long ttl, char next[STORE_REFRESH_LEN + 1],
                         char sid[TOKEN_SID_LEN + 1], auth_user *user, int64_t *at_ms);

/* Epoch milliseconds as RFC 3339 UTC with milliseconds into out (n >= 25):
 * the events' changed_at, the revocation list's mark. */
void auth_time_ms_rfc3339(int64_t ms, char *out, size_t n);

/* Revokes the family of `presented` (logout) and, when it still had a live
 * token, writes user.tokens_revoked (session, reason "logout") so the
 * family's access tokens die on every host too.  Unknown or malformed tokens
 * are a no-op.  Returns 0 or a DB error. */
int store_refresh_revoke(const char *presented);

/* Delete refresh tokens used or revoked more than age_s ago, and tokens
 * expired more than age_s ago, in batches (db_purge()).  Return the rows
 * deleted or a DB error. */
int64_t store_purge_spent(int64_t age_s, int batch, int max_batches);
int64_t store_purge_expired(int64_t age_s, int batch, int max_batches);

#endif
