/* settle.c: `shop-consume settle`, product's consumer of the order events:
 * order.confirmed confirms the order's stock reservation (held ->
 * confirmed), order.cancelled releases it (the stock goes back), each in one
 * transaction with the event's row in shop_product.processed_events, so an
 * event delivered twice settles once.  The reservation's own status
 * transitions are the second guard: the order sweep (cgi/order/sweep.c),
 * which repairs whatever this consumer has not done yet, makes the same
 * idempotent calls through product's internal API, and neither can apply a
 * transition twice. */
#include "settle.h"

#include <inttypes.h>
#include <stdio.h>
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
} settle_args;

static int settle_tx(void *arg)
{
    settle_args *a = arg;
    a->fresh = 0;
    a->status[0] = '\0';
    int rc = consume_dedupe(a->ev->id);
    if (rc <= 0)
        return rc;
    rc = a->confirm ? store_confirm_in_tx(a->rid, a->status) : store_release_in_tx(a->rid);
    if (rc != DB_OK)
        return rc;
    a->fresh = 1;
    return 1;
}

int settle_handle(const event *ev, void *ctx)
{
    (void)ctx;
    settle_args a = {.ev = ev};
    if (strcmp(ev->type, "order.confirmed") == 0)
        a.confirm = 1;
    else if (strcmp(ev->type, "order.cancelled") == 0)
        a.confirm = 0;
    else {
        log_warn("settle: event %s of type %s ignored", ev->id, ev->type);
        return CONSUME_OK;
    }
    json_object *v;
    if (!ev->data || !json_object_is_type(ev->data, json_type_object) ||
        !json_object_object_get_ex(ev->data, "reservation_id", &v) ||
        !json_object_is_type(v, json_type_int) || (a.rid = json_object_get_int64(v)) <= 0) {
        log_error("settle: event %s (%s) has no data.reservation_id", ev->id, ev->type);
        return CONSUME_DEAD;
    }
    int rc = db_tx(settle_tx, &a);
    if (rc < 0) {
        log_warn("settle: event %s: reservation %" PRId64 " not settled (database, %d)", ev->id,
                 a.rid, rc);
        return CONSUME_RETRY;
    }
    if (!a.fresh) {
        log_info("settle: event %s already processed", ev->id);
        metrics_inc(METRIC_EVENTS_DUPLICATE, 1);
        return CONSUME_OK;
    }
    if (a.confirm && strcmp(a.status, "confirmed") != 0)
        log_error("settle: event %s: reservation %" PRId64 " of a confirmed order is %s", ev->id,
                  a.rid, a.status);
    else
        log_info("settle: event %s: reservation %" PRId64 " %s", ev->id, a.rid,
                 a.confirm ? "confirmed" : "released");
    return CONSUME_OK;
}
