/* sweep.c: the repair pass that makes "no confirmed order without its stock,
 * no stock taken without a confirmed order" true once things settle, whatever
 * crashed or timed out in between.  One runs on every host (--sweep), so every
 * step is a conditional UPDATE or an idempotent product call: concurrent
 * sweeps and live requests may overlap, and the worst outcome is a repeated
 * call.  Steps, each over at most SWEEP_BATCH orders per pass:
 *   a. pending for longer than PENDING_TIMEOUT: fail it (only if still
 *      pending), then release (a release without a reservation leaves a
 *      tombstone, so a reserve still in flight takes nothing);
 *   b. confirmed with stock_state held: confirm the reservation;
 *   c. cancelled or failed with stock not known released: release;
 *   d. Idempotency-Key rows still running long after their order failed:
 *      delete, so the client's retry can run. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "order.h"
#include "store.h"

#define SWEEP_BATCH 500

static volatile sig_atomic_t sweep_stop;

static void sweep_on_signal(int sig)
{
    (void)sig;
    sweep_stop = 1;
}

static int sweep_pending_timeout(void)
{
    long long t = config_int("PENDING_TIMEOUT", ORDER_PENDING_TIMEOUT_DEFAULT);
    return t < 0 ? 0 : (int)t;
}

int order_sweep_once(void)
{
    static int64_t ids[SWEEP_BATCH];
    int timeout = sweep_pending_timeout();
    int failed = 0, released = 0, confirmed = 0, purged = 0, errors = 0;

    int n = store_stale_pending(timeout, ids, SWEEP_BATCH);
    if (n < 0)
        errors++;
    for (int i = 0; i < n; i++) {
        int rc = store_fail_order(ids[i], 0, false, NULL, 0, NULL);
        if (rc == 1) {
            failed++;
            released += reservation_release(ids[i]);
        }
    }

    n = store_unconfirmed_stock(ids, SWEEP_BATCH);
    if (n < 0)
        errors++;
    for (int i = 0; i < n; i++)
        confirmed += reservation_confirm(ids[i]);

    n = store_unreleased_stock(ids, SWEEP_BATCH);
    if (n < 0)
        errors++;
    for (int i = 0; i < n; i++)
        released += reservation_release(ids[i]);

    n = store_purge_stuck_keys(timeout);
    if (n < 0)
        errors++;
    else
        purged = n;

    metrics_inc(METRIC_SWEEP_REPAIRS, (unsigned long long)(failed + released + confirmed));
    if (failed || released || confirmed || purged)
        log_info("sweep: failed %d stale pending orders, released %d reservations,"
                 " confirmed %d, purged %d idempotency keys", failed, released, confirmed, purged);
    if (errors) {
        log_warn("sweep: %d steps could not read the database", errors);
        return -1;
    }
    return failed + released + confirmed + purged;
}

int order_sweep_main(bool once)
{
    if (config_load() < 0) {
        fprintf(stderr, "order: cannot load config ($SHOP_CONFIG)\n");
        return 1;
    }
    log_init("order", log_level_parse(config_get("LOG_LEVEL", "info")));
    if (sodium_init() < 0) {
        log_error("sodium_init failed");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);   /* a dropped product connection is an error, not death */
    if (db_init() != 0)
        return 1;
    metrics_init("order", NULL, 0);   /* repairs count in the host's order pool metrics */
    int rc = 0;
    if (once) {
        rc = order_sweep_once() < 0 ? 1 : 0;
    } else {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = sweep_on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        long long interval = config_int("SWEEP_INTERVAL", 5);
        if (interval < 1)
            interval = 1;
        log_info("sweep: every %llds, pending timeout %ds", interval, sweep_pending_timeout());
        while (!sweep_stop) {
            order_sweep_once();
            for (long long s = 0; s < interval && !sweep_stop; s++)
                sleep(1);
        }
    }
    db_close();
    config_free();
    return rc;
}
