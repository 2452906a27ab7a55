/* reservations.c: the order service's calls to product's reservations that
 * settle them after the request: release (the order does not stand, or was
 * cancelled), confirm in batches (it stands), and the list of expired ones.
 * Product's side is idempotent, so any number of callers may repeat them;
 * the stock_state we record afterwards only moves forward through
 * conditional UPDATEs (store.c). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "config.h"
#include "log.h"
#include "order.h"
#include "store.h"

bool reservation_release(int64_t order_id, int64_t reservation_id)
{
    char path[96];
    snprintf(path, sizeof path, "/internal/reservations/%" PRId64 "/release", reservation_id);
    client_resp r;
    int status = client_call("POST", config_get("PRODUCT_URL", ""), path, NULL, &r) < 0
                 ? 0 : r.status;
    client_free(&r);
    if (status != 200) {
        log_warn("release of reservation %" PRId64 ": status %d", reservation_id, status);
        return false;
    }
    if (order_id > 0 && store_mark_stock_released(order_id) < 0)
        log_warn("order %" PRId64 ": released but stock_state not recorded", order_id);
    return true;
}

int reservation_confirm_many(const int64_t *order_ids, const int64_t *rids, int n)
{
    if (n <= 0)
        return 0;
    json_object *body = json_object_new_object(), *ids = json_object_new_array();
    for (int i = 0; i < n; i++)
        json_object_array_add(ids, json_object_new_int64(rids[i]));
    json_object_object_add(body, "ids", ids);
    client_resp r;
    int rc = client_call("POST", config_get("PRODUCT_URL", ""), "/internal/reservations/confirm",
                         body, &r);
    json_object_put(body);
    json_object *items = NULL;
    if (rc < 0 || r.status != 200 || !r.body ||
        !json_object_object_get_ex(r.body, "items", &items) ||
        !json_object_is_type(items, json_type_array) ||
        json_object_array_length(items) != (size_t)n) {
        log_warn("confirm of %d reservations: status %d", n, rc < 0 ? 0 : r.status);
        client_free(&r);
        return -1;
    }
    static int64_t done[ORDER_SWEEP_BATCH];
    int m = 0;
    for (int i = 0; i < n && m < ORDER_SWEEP_BATCH; i++) {
        json_object *it = json_object_array_get_idx(items, i), *st;
        const char *s = json_object_object_get_ex(it, "status", &st) ? json_object_get_string(st) : "";
        if (strcmp(s, "confirmed") == 0) {
            done[m++] = order_ids[i];
            continue;
        }
        /* Cancelled since it was read (its release came first): fine.
         * Otherwise it cannot happen while fences work: a standing order
         * without its stock. */
        store_order o;
        int got = store_get_order(order_ids[i], &o);
        bool cancelled = got == 1 && strcmp(o.status, "confirmed") != 0;
        if (got == 1)
            store_order_free(&o);
        if (cancelled)
            log_info("order %" PRId64 " was cancelled meanwhile; reservation %" PRId64 " is %s",
                     order_ids[i], rids[i], s);
        else
            log_error("order %" PRId64 " stands but reservation %" PRId64 " is %s",
                      order_ids[i], rids[i], s);
    }
    client_free(&r);
    if (store_mark_stock_confirmed(done, m) < 0)
        log_warn("%d reservations confirmed but stock_state not recorded", m);
    return m;
}

int reservation_expired(int64_t *rids, int64_t *user_ids, int max)
{
    char path[64];
    snprintf(path, sizeof path, "/internal/reservations/expired?limit=%d", max);
    client_resp r;
    json_object *items = NULL;
    if (client_call("GET", config_get("PRODUCT_URL", ""), path, NULL, &r) < 0 ||
        r.status != 200 || !r.body || !json_object_object_get_ex(r.body, "items", &items) ||
        !json_object_is_type(items, json_type_array)) {
        log_warn("expired reservations: status %d", r.status);
        client_free(&r);
        return -1;
    }
    int n = 0;
    for (size_t i = 0; i < json_object_array_length(items) && n < max; i++) {
        json_object *it = json_object_array_get_idx(items, i), *id, *uid;
        if (!json_object_object_get_ex(it, "id", &id) ||
            !json_object_object_get_ex(it, "user_id", &uid))
            continue;
        rids[n] = json_object_get_int64(id);
        user_ids[n] = json_object_get_int64(uid);
        n++;
    }
    client_free(&r);
    return n;
}
