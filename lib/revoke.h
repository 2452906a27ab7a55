/* revoke.h: the per-host token revocation list.  A small file mapped
 * MAP_SHARED (REVOKE_FILE, like metrics.h's METRICS_FILE) holding
 * user_id -> not_before (epoch milliseconds): an access token of that user
 * issued (its iat_ms) before not_before is void.  A login (its refresh-token
 * family, the token's `sid` claim) has entries of its own, in a key space
 * apart from user ids: a reused refresh token voids that login's access
 * tokens only.  Every worker of every
 * service on the host maps it read-only and checks it after verifying a
 * token (lib/route.c); one writer per host (`shop-consume revoke`, fed by the
 * user.role_changed, user.password_changed and user.tokens_revoked events)
 * adds entries.
 *
 * The file is an open-addressing hash table that never empties a slot: a
 * slot whose not_before is older than the access-token lifetime is expired
 * and may be taken over by another user.  Each slot carries a sequence
 * number (odd while its writer is in it), so a reader never acts on half an
 * update; writers take flock(LOCK_EX) on the file.  When no slot is free
 * within REVOKE_PROBES of a user's home slot, the writer raises the file's
 * "every token before" mark instead (safe: more is refused, never less).
 * A freshly created file starts with that mark at its creation time: the
 * events before it never reached this host.  Without the file (not created
 * yet, unset REVOKE_FILE) nothing is refused; readers retry opening it at
 * most once a second. */
#ifndef SHOP_REVOKE_H
#define SHOP_REVOKE_H

#include <stdbool.h>
#include <stdint.h>

#define REVOKE_SLOTS 65536        /* power of two; 24 bytes each */
#define REVOKE_PROBES 64

/* Current wall-clock time in epoch milliseconds. */
int64_t revoke_now_ms(void);

/* Readers: the path of the list (NULL or "": none).  The file is mapped at
 * the first check that finds it; nothing is opened here. */
void revoke_reader_init(const char *path);

/* True when a token of user_id, of login `sid` (NULL or "": none), issued
 * at iat_ms is void on this host. */
bool revoke_is_revoked(int64_t user_id, const char *sid, int64_t iat_ms);

/* Writer: creates (0644) or opens the list and maps it read-write.  A file
 * without a valid header gets one, with "every token before" = now_ms.
 * Returns 0 or -1 (logged). */
int revoke_writer_open(const char *path, int64_t now_ms);

/* Writer: user_id's tokens issued before not_before_ms are void (an earlier
 * mark of the same user is raised, never lowered).  Entries whose
 * not_before is older than now_ms - keep_ms may be reused.  Returns 0 (an
 * entry), 1 (table full around the user's slot: the whole-host mark was
 * raised instead), or -1. */
int revoke_add(int64_t user_id, int64_t not_before_ms, int64_t now_ms, int64_t keep_ms);

/* Writer: the same for the tokens of one login, `sid` as in its tokens
 * (token.h).  -1 also for an empty sid. */
int revoke_add_session(const char *sid, int64_t not_before_ms, int64_t now_ms, int64_t keep_ms);

/* Unmaps the list (reader or writer). */
void revoke_close(void);

#endif
