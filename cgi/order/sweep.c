/* sweep.c: the pass that settles stock after the request, and makes "no
 * confirmed order without its stock, no stock taken without a confirmed
 * order" true once things settle, whatever crashed or timed out in between.
 * One runs on every host (--sweep), so every step is a conditional UPDATE, a
 * unique-key insert or an idempotent product call: concurrent sweeps and live
 * requests may overlap, and the worst outcome is a repeated call.  Steps,
 * each over at most ORDER_SWEEP_BATCH per pass:
 *   a. confirmed orders whose stock is still held: confirm their
 *      reservations at product, in one call;
 *   b. cancelled (or failed) orders whose stock is not known released:
 *      release;
 *   c. reservations past their TTL (product lists them): fence each with a
 *      failed order row on its reservation_id, then release it; if the
 *      order was written after all, the fence loses to it and step a
 *      confirms the reservation instead;
 *   d. retention (every RETENTION_INTERVAL seconds): completed
 *      Idempotency-Key records older than IDEMPOTENCY_RETENTION (default
 *      24 h) and failed orders (fences, their stock released) older than
 *      FAILED_ORDER_RETENTION (default 7 days) and outbox rows published
 *      OUTBOX_RETENTION (default 7 days) ago are deleted, RETENTION_BATCH
 *      rows per transaction (store.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "order.h"
#include "server.h"
#include "store.h"

/* Step c: settles one expired reservation.  Returns 1 when released, else
 * 0: its order stands (step a confirms it) or was cancelled (step b releases
 * it), or something failed (the next pass retries). */
static int sweep_expired_one(int64_t rid, int64_t user_id)
{
    char status[16] = "";
    int rc = store_fence(rid, user_id, status, sizeof status);
    if (rc < 0)
        return 0;
    if (rc == 1 || strcmp(status, "failed") == 0)
        return reservation_release(0, rid) ? 1 : 0;
    return 0;
}

/* Step d, at most once per RETENTION_INTERVAL seconds (default 60; the
 * first pass of a process always): the windows are hours and days, and the
 * repairs above run far more often.  Returns the rows deleted, or -1 when a
 * purge failed. */
static int64_t order_sweep_retention(void)
{
    static struct timespec next;
    if (!config_due("RETENTION_INTERVAL", 60, &next))
        return 0;
    int batch = (int)config_int("RETENTION_BATCH", ORDER_SWEEP_BATCH);
    if (batch < 1 || batch > 100000)
        batch = ORDER_SWEEP_BATCH;
    int64_t keys = store_purge_idempotency(config_int("IDEMPOTENCY_RETENTION", 86400), batch,
                                           ORDER_RETENTION_BATCHES);
    int64_t failed = store_purge_failed(config_int("FAILED_ORDER_RETENTION", 604800), batch,
                                        ORDER_RETENTION_BATCHES);
    int64_t sent = store_purge_outbox(config_int("OUTBOX_RETENTION", 604800), batch,
                                      ORDER_RETENTION_BATCHES);
    if (keys > 0 || failed > 0 || sent > 0)
        log_info("sweep: deleted %lld expired Idempotency-Key records, %lld failed orders,"
                 " %lld published outbox rows",
                 (long long)(keys > 0 ? keys : 0), (long long)(failed > 0 ? failed : 0),
                 (long long)(sent > 0 ? sent : 0));
    return keys < 0 || failed < 0 || sent < 0 ? -1 : keys + failed + sent;
}

int order_sweep_once(void)
{
    static int64_t ids[ORDER_SWEEP_BATCH], rids[ORDER_SWEEP_BATCH];
    static int64_t users[ORDER_SWEEP_BATCH];
    int released = 0, confirmed = 0, errors = 0;
    int locked = db_try_lock("shop_order_sweep", 0);
    if (locked == 0)
        return 0;       /* another host's sweep is on it */
    if (locked < 0) {
        log_warn("sweep: the database does not answer");
        return -1;
    }

    /* Under load more than a batch piles up between passes: keep going
     * while batches come back full (bounded, so the other steps run). */
    int n = ORDER_SWEEP_BATCH;
    for (int round = 0; n == ORDER_SWEEP_BATCH && round < 20; round++) {
        n = store_unconfirmed_stock(ids, rids, ORDER_SWEEP_BATCH);
        int c = n < 0 ? -1 : reservation_confirm_many(ids, rids, n);
        if (c < 0) {
            errors++;
            break;
        }
        confirmed += c;
    }

    n = store_unreleased_stock(ids, rids, ORDER_SWEEP_BATCH);
    if (n < 0)
        errors++;
    for (int i = 0; i < n; i++)
        released += reservation_release(ids[i], rids[i]);

    n = reservation_expired(rids, users, ORDER_SWEEP_BATCH);
    if (n < 0)
        errors++;
    for (int i = 0; i < n; i++)
        released += sweep_expired_one(rids[i], users[i]);

    if (order_sweep_retention() < 0)
        errors++;

    db_unlock("shop_order_sweep");
    metrics_inc(METRIC_SWEEP_REPAIRS, (unsigned long long)released);
    if (released || confirmed)
        log_info("sweep: confirmed %d reservations, released %d", confirmed, released);
    if (errors) {
        log_warn("sweep: %d steps could not run", errors);
        return -1;
    }
    return released + confirmed;
}

int order_sweep_main(bool once)
{
    if (server_setup("order") != 0)
        return 1;
    metrics_init("order", 0);   /* repairs count in the host's order pool metrics */
    return server_sweep("order", order_sweep_once, "SWEEP_INTERVAL", 5, once);
}
