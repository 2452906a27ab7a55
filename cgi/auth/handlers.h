/* handlers.h: the auth service's endpoints (one function each, routed by
 * main.c) and the few helpers the --create-user CLI shares with them. */
#ifndef AUTH_HANDLERS_H
#define AUTH_HANDLERS_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>
#include "http.h"
#include "store.h"

int auth_register(http_req *req);
int auth_login(http_req *req);
int auth_refresh(http_req *req);
int auth_logout(http_req *req);
int auth_me(http_req *req);
int auth_user_get(http_req *req);
int auth_user_patch(http_req *req);
int auth_password_change(http_req *req);
int auth_jwks(http_req *req);

/* Worker setup after the common one: signing key, the dummy hash that makes
 * a login for an unknown email cost the same as a real one.  Returns 0. */
int auth_init(void);

/* Trims ASCII whitespace from `in` and checks it looks like an email (one
 * '@', non-empty local part and domain, no spaces or control characters, at
 * most 254 characters).  Writes the trimmed form to email and the
 * case-folded identity to norm (each STORE_EMAIL_MAX * 4 + 1 bytes).
 * Returns 0 or -1. */
int auth_email_normalize(const char *in, char *email, char *norm);

/* True when a trimmed email (auth_email_normalize's `email`) has an address's
 * shape, as registration requires: dot-separated atoms before the '@' (no
 * empty one, none of RFC 5322's specials), a domain of labels of letters,
 * digits and inner hyphens (non-ASCII allowed), and no Unicode space or
 * invisible character anywhere.  Login only normalizes: an account keeps
 * the address it has. */
int auth_email_valid(const char *email);

/* True when the password has 8-128 Unicode characters (valid UTF-8). */
int auth_password_ok(const char *pw);

/* Argon2id hash of pw at the service's cost into out.  Returns 0 or -1. */
int auth_password_hash(const char *pw, char out[crypto_pwhash_STRBYTES]);

#endif
