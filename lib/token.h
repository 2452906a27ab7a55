/* token.h: ES256 access tokens (JWT).  Verification (every service) needs only
 * the public key set; signing (auth only) needs the private key.  libjwt 1.10
 * checks the signature only, so everything else (alg, kid, iss, aud, exp, nbf,
 * claims present) is checked here. */
#ifndef SHOP_TOKEN_H
#define SHOP_TOKEN_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <json-c/json.h>

#define TOKEN_ISSUER "shop-auth"
#define TOKEN_AUDIENCE "shop"

/* Who is asking: the role a token carries (http.h's request holds one). */
typedef enum {
    USER_ANON = 0,
    USER_CUSTOMER,
    USER_SELLER,
    USER_ADMIN,
} user_role;

/* A login's id (its refresh-token family) in the `sid` claim: lowercase hex. */
#define TOKEN_SID_LEN 32

typedef struct token_claims {
    int64_t user_id;
    user_role role;
    time_t iat, exp;
    int64_t iat_ms;          /* the iat_ms claim (milliseconds), else iat * 1000 */
    char jti[64];
    char sid[TOKEN_SID_LEN + 1];   /* the login it descends from; "" when none */
} token_claims;

/* True when sid is TOKEN_SID_LEN lowercase hex digits. */
bool token_sid_valid(const char *sid);

/* Loads every "<kid>.pem" public key in directory `dir` (the verification key
 * set).  Returns the number of keys loaded, or -1. */
int token_load_public_dir(const char *dir);

/* Loads the signing key (PEM EC P-256 private key) and its kid.  Auth only. */
int token_load_private(const char *pem_path, const char *kid);

/* Verifies `jwt` at time `now`.  Returns 0 and fills *out, or -1. */
int token_verify(const char *jwt, time_t now, token_claims *out);

/* Signs an access token for user/role valid `ttl` seconds from now.
 * Returns a malloc'd string or NULL. */
char *token_sign(int64_t user_id, user_role role, time_t now, long ttl);
/* The same with the issue time in epoch milliseconds: the token carries it
 * in an iat_ms claim as well as iat (its second), so the revocation list
 * (revoke.h) can tell a token issued just before a change from one issued
 * just after it in the same second.  `sid` (NULL: none) names the login the
 * token descends from, so that login's tokens can be revoked alone; a
 * malformed one gives NULL. */
char *token_sign_ms(int64_t user_id, user_role role, int64_t now_ms, long ttl, const char *sid);

/* The JWKS document ({"keys":[...]}) of the loaded public keys; caller frees. */
json_object *token_jwks(void);

const char *token_role_name(user_role r);
user_role token_role_parse(const char *s);   /* USER_ANON when unknown */

void token_free_all(void);

#endif
