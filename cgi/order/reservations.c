/* reservations.c: the two follow-up calls to product's reservations that both
 * the live request and the sweep make: confirm (the order stands) and release
 * (it does not).  Both are idempotent on the product side, so any number of
 * callers may repeat them; the stock_state we record afterwards only moves
 * forward through conditional UPDATEs (store.c). */
#include <inttypes.h>
#include <stdio.h>

#include "client.h"
#include "config.h"
#include "log.h"
#include "order.h"
#include "store.h"

/* POSTs /internal/reservations/{id}/{action}.  Returns the HTTP status, 0 on
 * transport failure. */
static int reservation_post(int64_t order_id, const char *action)
{
    char path[96];
    snprintf(path, sizeof path, "/internal/reservations/%" PRId64 "/%s", order_id, action);
    client_resp r;
    if (client_call("POST", config_get("PRODUCT_URL", ""), path, NULL, &r) < 0)
        return 0;
    int status = r.status;
    client_free(&r);
    return status;
}

bool reservation_release(int64_t order_id)
{
    int status = reservation_post(order_id, "release");
    if (status != 200) {
        log_warn("release of order %" PRId64 " reservation: status %d", order_id, status);
        return false;
    }
    if (store_mark_stock_released(order_id) < 0)
        log_warn("order %" PRId64 ": released but stock_state not recorded", order_id);
    return true;
}

bool reservation_confirm(int64_t order_id)
{
    int status = reservation_post(order_id, "confirm");
    if (status != 200) {
        /* 409 invalid_state: released meanwhile, which only a cancel may do
         * to a confirmed order; 404 would mean stock confirmed without a
         * reservation, a bug worth a loud line. */
        if (status == 404)
            log_error("order %" PRId64 " is confirmed but product has no reservation",
                      order_id);
        else
            log_warn("confirm of order %" PRId64 " reservation: status %d", order_id, status);
        return false;
    }
    if (store_mark_stock_confirmed(order_id) < 0)
        log_warn("order %" PRId64 ": confirmed but stock_state not recorded", order_id);
    return true;
}
