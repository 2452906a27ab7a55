/* sweep.c: the auth service's retention sweep.  Every login adds a refresh
 * token row and every refresh spends one and adds another, so without it the
 * table grows by each client's traffic forever.  A pass deletes
 *   - tokens used or revoked more than REFRESH_RETENTION seconds ago (default
 *     30 days: for that long, presenting a spent token is still recognised as
 *     reuse and revokes its family; afterwards it is just an unknown token),
 *   - tokens expired more than REFRESH_RETENTION seconds ago (never used:
 *     the client went away),
 * RETENTION_BATCH rows (default 500) per transaction, so a pass never holds
 * many row locks for long while logins and refreshes go on.  One runs on
 * every host (`auth.fcgi --sweep`, every RETENTION_INTERVAL seconds, default
 * 60); a named lock lets one of them work at a time. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "server.h"
#include "store.h"
#include "sweep.h"

#define AUTH_SWEEP_BATCH 500
#define AUTH_SWEEP_MAX_BATCHES 20   /* per kind of row per pass */

int auth_sweep_once(void)
{
    int locked = db_try_lock("shop_auth_sweep", 0);
    if (locked == 0)
        return 0;       /* another host's sweep is on it */
    if (locked < 0) {
        log_warn("sweep: the database does not answer");
        return -1;
    }
    int batch = (int)config_int("RETENTION_BATCH", AUTH_SWEEP_BATCH);
    if (batch < 1 || batch > 100000)
        batch = AUTH_SWEEP_BATCH;
    long long age = config_int("REFRESH_RETENTION", 30LL * 86400);
    int64_t spent = store_purge_spent(age, batch, AUTH_SWEEP_MAX_BATCHES);
    int64_t expired = store_purge_expired(age, batch, AUTH_SWEEP_MAX_BATCHES);
    db_unlock("shop_auth_sweep");
    if (spent < 0 || expired < 0) {
        log_warn("sweep: deleting old refresh tokens failed (error %u)", db_errno());
        return -1;
    }
    if (spent || expired)
        log_info("sweep: deleted %lld spent and %lld expired refresh tokens",
                 (long long)spent, (long long)expired);
    return (int)(spent + expired);
}

int auth_sweep_main(bool once)
{
    if (server_setup("auth") != 0)
        return 1;
    return server_sweep("auth", auth_sweep_once, "RETENTION_INTERVAL", 60, once);
}
