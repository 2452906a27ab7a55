/* settle.c: `shop-consume settle`, product's consumer of the order events:
 * order.confirmed confirms the order's stock reservation (held ->
 * confirmed), order.cancelled releases it (the stock goes back), each in one
 * transaction with the event's row in shop_product.processed_events, so an
 * event delivered twice settles once.  The reservation's own status
 * transitions are the second guard: the order sweep (cgi/order/sweep.c),
 * which repairs whatever this consumer has not done yet, makes the same
 * idempotent calls through product's internal API, and neither can apply a
 * transition twice.
 *
 * It runs in batch mode (consume_run_batch): the events that arrived
 * together, up to SETTLE_BATCH, settle in ONE transaction (a Galera commit
 * is the dominant cost; one per event would be one more per order) of a
 * few statements: the batch's dedupe rows in one INSERT, the confirmations
 * in two statements per 16 reservations, then each release.  A batch
 * holding an event processed before, or failing for any other reason, is
 * redone one transaction per event (the same code, a batch of one), so one
 * poison event cannot hold back the rest. */
#include "settle.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consume.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "store.h"

typedef struct settle_args {
    const event *ev;
    int64_t rid;
    int confirm;            /* 1 confirm, 0 release */
    char status[10];
    int fresh;              /* 1 when this transaction applied it */
    int at;                 /* its index in a batch */
} settle_args;

/* Reads what ev asks for into *a: -1 when there is something to settle,
 * else the verdict (CONSUME_OK for a type settle ignores, CONSUME_DEAD
 * without a reservation id). */
static int settle_prepare(const event *ev, settle_args *a)
{
    memset(a, 0, sizeof *a);
    a->ev = ev;
    consume_log_event(ev);
    if (strcmp(ev->type, "order.confirmed") == 0)
        a->confirm = 1;
    else if (strcmp(ev->type, "order.cancelled") == 0)
        a->confirm = 0;
    else {
        log_warn("settle: event %s of type %s ignored", ev->id, ev->type);
        return CONSUME_OK;
    }
    json_object *v;
    if (!ev->data || !json_object_is_type(ev->data, json_type_object) ||
        !json_object_object_get_ex(ev->data, "reservation_id", &v) ||
        !json_object_is_type(v, json_type_int) || (a->rid = json_object_get_int64(v)) <= 0) {
        log_error("settle: event %s (%s) has no data.reservation_id", ev->id, ev->type);
        return CONSUME_DEAD;
    }
    return -1;
}

/* After the commit: the log line and the duplicate count. */
static void settle_report(const settle_args *a)
{
    const event *ev = a->ev;
    consume_log_event(ev);
    if (!a->fresh) {
        log_info("settle: event %s already processed", ev->id);
        metrics_inc(METRIC_EVENTS_DUPLICATE, 1);
    } else if (a->confirm && strcmp(a->status, "confirmed") != 0) {
        /* Usually the order was cancelled (its stock given back) before its
         * confirmation got here: the release stands, as it should. */
        log_warn("settle: event %s: reservation %" PRId64 " of a confirmed order is already %s"
                 " (cancelled before this confirmation arrived?)", ev->id, a->rid, a->status);
    } else {
        log_info("settle: event %s: reservation %" PRId64 " %s", ev->id, a->rid,
                 a->confirm ? "confirmed" : "released");
    }
}

typedef struct settle_batch {
    settle_args *a;         /* in reservation id order */
    int m;
} settle_batch;

/* The whole batch inside the caller's transaction (a db_tx_fn): the dedupe
 * rows of its distinct event ids (an id twice in the batch counts once, the
 * second is a duplicate), the held reservations of its confirmations
 * confirmed together (ascending ids: batches on the hosts lock rows in one
 * order), then its releases, each in turn.  A confirm and a release of one
 * reservation end released whichever came first, as one at a time.
 * DB_CONFLICT when an event was processed before (consume_dedupe), and
 * only then. */
static int settle_apply_batch(void *arg)
{
    settle_batch *b = arg;
    static const char *ids[CONSUME_BATCH_MAX];
    static int64_t rids[CONSUME_BATCH_MAX];
    static char status[CONSUME_BATCH_MAX][10];
    int n_ids = 0, n_confirm = 0;
    for (int j = 0; j < b->m; j++) {
        settle_args *x = &b->a[j];
        x->fresh = 0;
        x->status[0] = '\0';
        bool repeat = false;
        for (int k = 0; k < n_ids && !repeat; k++)
            repeat = strcmp(ids[k], x->ev->id) == 0;
        if (repeat)
            continue;
        ids[n_ids++] = x->ev->id;
        x->fresh = 1;
        if (x->confirm)
            rids[n_confirm++] = x->rid;
    }
    int rc = consume_dedupe(ids, n_ids);
    if (rc != DB_OK)
        return rc;
    if (n_confirm > 0 && (rc = store_confirm_many_in_tx(rids, n_confirm, status)) != DB_OK)
        return rc == DB_CONFLICT ? DB_ERROR : rc;
    for (int j = 0, c = 0; j < b->m; j++)
        if (b->a[j].fresh && b->a[j].confirm)
            memcpy(b->a[j].status, status[c++], sizeof b->a[j].status);
    for (int j = 0; j < b->m; j++)
        if (b->a[j].fresh && !b->a[j].confirm && (rc = store_release_in_tx(b->a[j].rid)) != DB_OK)
            return rc == DB_CONFLICT ? DB_ERROR : rc;
    return DB_OK;
}

/* One event in a transaction of its own (a batch of one): a verdict.  A
 * conflict there says this very event was processed before. */
static int settle_one(settle_args *a)
{
    settle_batch one = {a, 1};
    consume_log_event(a->ev);
    int rc = db_tx(settle_apply_batch, &one);
    if (rc == DB_CONFLICT) {
        a->fresh = 0;
        rc = DB_OK;
    }
    if (rc < 0) {
        log_warn("settle: event %s: reservation %" PRId64 " not settled (database, %d)",
                 a->ev->id, a->rid, rc);
        return CONSUME_RETRY;
    }
    settle_report(a);
    return CONSUME_OK;
}

/* Reservation id order (then delivery order, so a confirm and a cancel of
 * one reservation keep theirs): batches on the hosts lock rows in one order. */
static int by_reservation(const void *x, const void *y)
{
    const settle_args *a = x, *b = y;
    if (a->rid != b->rid)
        return (a->rid > b->rid) - (a->rid < b->rid);
    return (a->at > b->at) - (a->at < b->at);
}

void settle_handle_batch(const event *evs, int n, int *verdicts, void *ctx)
{
    (void)ctx;
    static settle_args a[CONSUME_BATCH_MAX];
    int m = 0;              /* a[0..m): to apply, then in reservation id order */
    for (int i = 0; i < n && i < CONSUME_BATCH_MAX; i++) {
        int v = settle_prepare(&evs[i], &a[m]);
        if (v >= 0) {
            verdicts[i] = v;
            continue;
        }
        a[m++].at = i;
    }
    consume_log_event(NULL);        /* what follows is the batch's */
    if (m == 0)
        return;
    qsort(a, (size_t)m, sizeof *a, by_reservation);
    metrics_inc(METRIC_SETTLE_BATCHES, 1);
    settle_batch b = {a, m};
    int rc = db_tx(settle_apply_batch, &b);
    if (rc >= 0) {
        for (int j = 0; j < m; j++) {
            settle_report(&a[j]);
            verdicts[a[j].at] = CONSUME_OK;
        }
        return;
    }
    /* The database is away: all of them later.  An event processed before
     * (a redelivery): one at a time, which tells which.  Any other failure
     * may be one event's (a poison message): each in its own transaction,
     * so the others go through and that one alone is given back (then
     * dead-lettered at the delivery limit). */
    if (rc != DB_CONFLICT && (rc == DB_UNAVAILABLE || m == 1)) {
        log_warn("settle: a batch of %d events not settled (database, %d)", m, rc);
        for (int j = 0; j < m; j++)
            verdicts[a[j].at] = CONSUME_RETRY;
        return;
    }
    if (rc == DB_CONFLICT)
        log_info("settle: a batch of %d events holds one processed before: one transaction each",
                 m);
    else
        log_warn("settle: a batch of %d events failed (database, %d): one transaction each", m,
                 rc);
    metrics_inc(METRIC_SETTLE_FALLBACKS, 1);
    for (int j = 0; j < m; j++)
        verdicts[a[j].at] = settle_one(&a[j]);
}
