/* revocation.h: `shop-consume revoke [queue]`, one per host: applies
 * user.role_changed, user.password_changed and user.tokens_revoked to the
 * host's revocation list (lib/revoke.h, REVOKE_FILE of its config): the
 * user's access tokens issued before data.changed_at are void on this host
 * from then on; those of one login only when the event names it
 * (user.tokens_revoked's data.session, the tokens' sid claim).
 *
 * Each host consumes its own durable quorum queue (revoke.<host>, the
 * queue argument), so every host sees every event, and events published
 * while the host (or its consumer) was down wait in its queue until it
 * comes back: nothing is lost.  Applying an event twice changes nothing
 * (marks only rise), so no dedupe table is needed.  A list file created
 * afresh (a new host, a lost file) voids every token issued before its
 * creation on that host: events before it may never have reached it. */
#ifndef SHOP_REVOCATION_H
#define SHOP_REVOCATION_H

#include <stdint.h>
#include "consume.h"

/* Opens the list (REVOKE_FILE) for writing.  0 or -1 (logged). */
int revocation_init(void);

/* user.role_changed / _password_changed / _tokens_revoked: CONSUME_OK (applied, or an
 * event type this consumer does not handle), CONSUME_RETRY (the list could
 * not be written), CONSUME_DEAD (no usable data.user_id / data.changed_at,
 * or a malformed data.session). */
int revocation_handle(const event *ev, void *ctx);

/* "2026-11-28T14:50:01.123Z" (RFC 3339 UTC, 0-9 fraction digits) as epoch
 * milliseconds (the fraction cut to ms), or -1 when not of that form. */
int64_t revocation_time_ms(const char *s);

#endif
