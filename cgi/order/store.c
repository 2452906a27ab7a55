/* store.c: the order service's SQL (shop_order), nothing else.  An order is
 * written once, whole; later state changes are conditional UPDATEs that name
 * the state they expect, so the live request, cancels and the sweeps on every
 * host can run at once and exactly one wins each transition.  Multi-statement
 * changes go through db_tx, which retries the whole callback on deadlocks and
 * lost connections (so callbacks reset their outputs first).  Times are UTC:
 * UTC_TIMESTAMP(3), or the worker's UTC clock where the reply needs the
 * value without reading it back. */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include <json-c/json.h>

#include "db.h"
#include "log.h"

void store_idem_free(store_idem *k)
{
    free(k->response_body);
    k->response_body = NULL;
}

void store_order_free(store_order *o)
{
    free(o->items);
    o->items = NULL;
    o->n_items = 0;
}

/* Copies src (may be NULL) into dst of size n, truncating. */
/* ---------------------------------------------------------------- reads */

#define ORDER_COLS "id, user_id, status, stock_state, total_cents, currency, created_at, updated_at," \
                   " COALESCE(reservation_id, id)"
#define ITEM_COLS "order_id, product_id, sku, name, unit_price_cents, quantity, line_total_cents"

/* Fills o (items left empty) from row `row` of an ORDER_COLS result. */
static void store_read_order(const db_res *r, int row, store_order *o)
{
    o->id = db_int(r, row, 0);
    o->user_id = db_int(r, row, 1);
    db_copy(o->status, sizeof o->status, r, row, 2);
    db_copy(o->stock_state, sizeof o->stock_state, r, row, 3);
    o->total_cents = db_int(r, row, 4);
    db_copy(o->currency, sizeof o->currency, r, row, 5);
    db_copy(o->created_at, sizeof o->created_at, r, row, 6);
    db_copy(o->updated_at, sizeof o->updated_at, r, row, 7);
    o->reservation_id = db_int(r, row, 8);
    o->n_items = 0;
    o->items = NULL;
}

/* Appends row `row` of an ITEM_COLS result to o's items.  Returns 0 or -1
 * (out of memory, or more lines than an order can have). */
static int store_append_item(store_order *o, const db_res *r, int row)
{
    if (o->n_items >= STORE_MAX_LINES)
        return -1;
    if (!o->items) {
        o->items = calloc(STORE_MAX_LINES, sizeof *o->items);
        if (!o->items)
            return -1;
    }
    store_item *it = &o->items[o->n_items++];
    it->product_id = db_int(r, row, 1);
    db_copy(it->sku, sizeof it->sku, r, row, 2);
    db_copy(it->name, sizeof it->name, r, row, 3);
    it->unit_price_cents = db_int(r, row, 4);
    it->quantity = db_int(r, row, 5);
    it->line_total_cents = db_int(r, row, 6);
    return 0;
}

int store_get_order(int64_t id, store_order *out)
{
    memset(out, 0, sizeof *out);
    db_res *r = db_query("SELECT " ORDER_COLS " FROM orders WHERE id = ?", "i", id);
    if (!r)
        return DB_ERROR;
    if (db_rows(r) == 0) {
        db_free(r);
        return 0;
    }
    store_read_order(r, 0, out);
    db_free(r);
    r = db_query("SELECT " ITEM_COLS " FROM order_items WHERE order_id = ? ORDER BY line_no",
                 "i", id);
    if (!r)
        return DB_ERROR;
    int rc = 1;
    for (int i = 0; i < db_rows(r) && rc == 1; i++)
        if (store_append_item(out, r, i) < 0)
            rc = DB_ERROR;
    db_free(r);
    if (rc != 1)
        store_order_free(out);
    return rc;
}

/* Attaches the items of one page (orders sorted by id descending) with one
 * query over the page's id range: the page is every visible order of that
 * range (keyset), so the range holds no other visible order's items, except
 * one that became visible between the two queries, which is skipped. */
static int store_attach_items(int64_t user_id, store_order *page, int n)
{
    if (n == 0)
        return 0;
    int64_t lo = page[n - 1].id, hi = page[0].id;
    db_res *r = user_id
        ? db_query("SELECT i.order_id, i.product_id, i.sku, i.name, i.unit_price_cents,"
                   " i.quantity, i.line_total_cents FROM order_items i"
                   " JOIN orders o ON o.id = i.order_id"
                   " WHERE i.order_id BETWEEN ? AND ? AND o.user_id = ?"
                   " AND o.status IN ('confirmed','cancelled')"
                   " ORDER BY i.order_id DESC, i.line_no", "iii", lo, hi, user_id)
        : db_query("SELECT i.order_id, i.product_id, i.sku, i.name, i.unit_price_cents,"
                   " i.quantity, i.line_total_cents FROM order_items i"
                   " JOIN orders o ON o.id = i.order_id"
                   " WHERE i.order_id BETWEEN ? AND ?"
                   " AND o.status IN ('confirmed','cancelled')"
                   " ORDER BY i.order_id DESC, i.line_no", "ii", lo, hi);
    if (!r)
        return DB_ERROR;
    int j = 0, rc = 0;
    for (int i = 0; i < db_rows(r) && rc == 0; i++) {
        int64_t oid = db_int(r, i, 0);
        while (j < n && page[j].id > oid)   /* both walk ids downwards */
            j++;
        if (j < n && page[j].id == oid && store_append_item(&page[j], r, i) < 0)
            rc = DB_ERROR;
    }
    db_free(r);
    return rc;
}

int store_list_orders(int64_t user_id, int64_t before, int limit,
                      store_order *out, bool *more)
{
    *more = false;
    if (before <= 0)
        before = INT64_MAX;
    int64_t want = (int64_t)limit + 1;
    db_res *r = user_id
        ? db_query("SELECT " ORDER_COLS " FROM orders WHERE user_id = ? AND id < ?"
                   " AND status IN ('confirmed','cancelled') ORDER BY id DESC LIMIT ?",
                   "iii", user_id, before, want)
        : db_query("SELECT " ORDER_COLS " FROM orders WHERE id < ?"
                   " AND status IN ('confirmed','cancelled') ORDER BY id DESC LIMIT ?",
                   "ii", before, want);
    if (!r)
        return DB_ERROR;
    int n = db_rows(r);
    if (n > limit) {
        *more = true;
        n = limit;
    }
    for (int i = 0; i < n; i++)
        store_read_order(r, i, &out[i]);
    db_free(r);
    int rc = store_attach_items(user_id, out, n);
    if (rc < 0) {
        for (int i = 0; i < n; i++)
            store_order_free(&out[i]);
        return rc;
    }
    return n;
}

int store_get_idem(int64_t user_id, const char *idem_key, store_idem *out)
{
    memset(out, 0, sizeof *out);
    db_res *r = db_query("SELECT request_hash, status, response_status, response_body, order_id"
                         " FROM idempotency_keys WHERE user_id = ? AND idem_key = ?",
                         "is", user_id, idem_key);
    if (!r)
        return DB_ERROR;
    if (db_rows(r) == 0) {
        db_free(r);
        return 0;
    }
    if (db_len(r, 0, 0) == sizeof out->hash)
        memcpy(out->hash, db_str(r, 0, 0), sizeof out->hash);
    const char *st = db_str(r, 0, 1);
    out->done = st && strcmp(st, "done") == 0;
    out->response_status = (int)db_int(r, 0, 2);
    if (!db_null(r, 0, 3)) {
        out->response_body = strdup(db_str(r, 0, 3));
        if (!out->response_body) {
            db_free(r);
            return DB_ERROR;
        }
    }
    out->order_id = db_int(r, 0, 4);
    db_free(r);
    return 1;
}

/* ---------------------------------------------------------------- placing */

/* "shop_idem_" + 40 hex digits of SHA-256(user_id ":" key): within the
 * 64-character limit of lock names, whatever the key. */
static void store_idem_lock_name(int64_t user_id, const char *idem_key, char name[64])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_state st;
    char uid[24];
    snprintf(uid, sizeof uid, "%" PRId64 ":", user_id);
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)uid, strlen(uid));
    crypto_hash_sha256_update(&st, (const unsigned char *)idem_key, strlen(idem_key));
    crypto_hash_sha256_final(&st, h);
    memcpy(name, "shop_idem_", 10);
    sodium_bin2hex(name + 10, 64 - 10, h, 20);
}

int store_idem_lock(int64_t user_id, const char *idem_key)
{
    char name[64];
    store_idem_lock_name(user_id, idem_key, name);
    /* No wait: a duplicate sent while the first runs is told so at once
     * (409 idempotency_in_progress, Retry-After: 1), as the contract says. */
    return db_try_lock(name, 0);
}

void store_idem_unlock(int64_t user_id, const char *idem_key)
{
    char name[64];
    store_idem_lock_name(user_id, idem_key, name);
    db_unlock(name);
}

/* The worker's clock as DATETIME(3) text, UTC: "2026-11-24 19:30:00.123". */
static void store_now(char *out, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t len = strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out + len, n - len, ".%03d", (int)(ts.tv_nsec / 1000000) % 1000);
}

/* Reads the order row holding reservation_id: its id, user and status.
 * Returns 1, 0 absent, or DB_ERROR. */
static int store_order_of_reservation(int64_t rid, int64_t *id, int64_t *user_id,
                                      char *status, size_t n)
{
    db_res *r = db_query("SELECT id, user_id, status FROM orders WHERE reservation_id = ?",
                         "i", rid);
    if (!r)
        return DB_ERROR;
    int found = db_rows(r) > 0;
    if (found) {
        *id = db_int(r, 0, 0);
        *user_id = db_int(r, 0, 1);
        db_copy(status, n, r, 0, 2);
    }
    db_free(r);
    return found;
}

/* An outbox row (lib/outbox.h): type, the order id as subject, data. */
static int store_outbox(const char *type, int64_t order_id, const char *data)
{
    char subject[24];
    snprintf(subject, sizeof subject, "%" PRId64, order_id);
    int64_t n = db_exec("INSERT INTO outbox (event_type, subject, order_id, payload, request_id,"
                        " created_at) VALUES (?, ?, ?, ?, NULLIF(?, ''), UTC_TIMESTAMP(3))",
                        "ssiss", type, subject, order_id, data, log_current_request_id());
    return n < 0 ? (int)n : DB_OK;
}

/* The data of an order event (docs/EVENTS.md): `order`, the order as the
 * API shows it (JSON text), plus order_id and reservation_id.  malloc'd;
 * NULL when out of memory or `order` is no object. */
static char *store_event_data(const char *order, int64_t order_id, int64_t reservation_id)
{
    json_object *o = json_tokener_parse(order);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return NULL;
    }
    json_object_object_add(o, "order_id", json_object_new_int64(order_id));
    json_object_object_add(o, "reservation_id", json_object_new_int64(reservation_id));
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    char *out = text ? strdup(text) : NULL;
    json_object_put(o);
    return out;
}

typedef struct place_args {
    const store_new_order *o;
    store_render_fn render;
    int64_t order_id;
    char *reply;
} place_args;

static int store_place_tx(void *arg)
{
    place_args *a = arg;
    const store_new_order *o = a->o;
    free(a->reply);             /* a retried run starts clean */
    a->reply = NULL;

    store_item items[STORE_MAX_LINES];
    store_order ord = { .user_id = o->user_id, .reservation_id = o->reservation_id,
                        .status = "confirmed", .stock_state = "held",
                        .n_items = o->n, .items = items };
    for (size_t i = 0; i < o->n && i < STORE_MAX_LINES; i++) {
        items[i] = o->items[i];
        items[i].line_total_cents = items[i].unit_price_cents * items[i].quantity;
        ord.total_cents += items[i].line_total_cents;
    }
    snprintf(ord.currency, sizeof ord.currency, "%s", o->currency);
    store_now(ord.created_at, sizeof ord.created_at);
    memcpy(ord.updated_at, ord.created_at, sizeof ord.updated_at);

    int64_t n = db_exec("INSERT INTO orders (user_id, reservation_id, status, stock_state,"
                        " total_cents, currency, created_at, updated_at)"
                        " VALUES (?, ?, 'confirmed', 'held', ?, ?, ?, ?)",
                        "iiisss", o->user_id, o->reservation_id, ord.total_cents,
                        ord.currency, ord.created_at, ord.updated_at);
    if (n == DB_CONFLICT) {
        /* The reservation has its row: a racing duplicate's order, ours
         * from a run whose COMMIT reply was lost, or the sweep's fence. */
        int64_t uid = 0;
        char st[16] = "";
        int rc = store_order_of_reservation(o->reservation_id, &a->order_id, &uid, st, sizeof st);
        if (rc < 0)
            return rc;
        if (rc == 0 || strcmp(st, "failed") == 0 || uid != o->user_id)
            return STORE_FENCED;
        return STORE_STANDING;
    }
    if (n < 0)
        return (int)n;
    ord.id = a->order_id = db_last_id();
    for (size_t i = 0; i < ord.n_items; i++) {
        const store_item *it = &items[i];
        n = db_exec("INSERT INTO order_items (order_id, line_no, product_id, sku, name,"
                    " unit_price_cents, quantity, line_total_cents)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    "iiissiii", ord.id, (int64_t)(i + 1), it->product_id, it->sku,
                    it->name, it->unit_price_cents, it->quantity, it->line_total_cents);
        if (n < 0)
            return (int)n;
    }
    a->reply = a->render(&ord);
    if (!a->reply)
        return STORE_FAILED;
    char *data = store_event_data(a->reply, ord.id, o->reservation_id);
    if (!data)
        return STORE_FAILED;
    int orc = store_outbox("order.confirmed", ord.id, data);
    free(data);
    if (orc != DB_OK)
        return orc;
    if (o->idem_key) {
        n = db_exec("INSERT INTO idempotency_keys (user_id, idem_key, request_hash, status,"
                    " response_status, response_body, order_id, created_at, updated_at)"
                    " VALUES (?, ?, ?, 'done', 201, ?, ?, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
                    "isbsi", o->user_id, o->idem_key, (const void *)o->hash, (size_t)32,
                    a->reply, ord.id);
        if (n < 0)
            return (int)n;      /* DB_CONFLICT: the key has its answer already */
    }
    return 1;
}

int store_place_order(const store_new_order *o, store_render_fn render,
                      int64_t *order_id, char **reply)
{
    place_args a = { o, render, 0, NULL };
    *reply = NULL;
    int rc = db_tx(store_place_tx, &a);
    *order_id = a.order_id;
    if (rc == 1)
        *reply = a.reply;
    else
        free(a.reply);
    return rc;
}

int store_refuse(int64_t user_id, const char *idem_key, const unsigned char hash[32],
                 int status, const char *body)
{
    int64_t n = db_exec("INSERT INTO idempotency_keys (user_id, idem_key, request_hash, status,"
                        " response_status, response_body, created_at, updated_at)"
                        " VALUES (?, ?, ?, 'done', ?, ?, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
                        "isbis", user_id, idem_key, (const void *)hash, (size_t)32,
                        (int64_t)status, body);
    return n < 0 ? (int)n : 0;
}

int store_fence(int64_t reservation_id, int64_t user_id, char *status, size_t n)
{
    int64_t ins = db_exec("INSERT INTO orders (user_id, reservation_id, status, stock_state,"
                          " created_at, updated_at) VALUES (?, ?, 'failed', 'released',"
                          " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))", "ii", user_id, reservation_id);
    if (ins >= 0)
        return 1;
    if (ins != DB_CONFLICT)
        return (int)ins;
    int64_t id = 0, uid = 0;
    int rc = store_order_of_reservation(reservation_id, &id, &uid, status, n);
    return rc == 1 ? 0 : (rc == 0 ? DB_ERROR : rc);
}

/* ---------------------------------------------------------------- transitions */

/* The state change and its outbox event commit together or not at all. */
static int store_cancel_tx(void *arg)
{
    int64_t id = *(const int64_t *)arg;
    int64_t n = db_exec("UPDATE orders SET status = 'cancelled', updated_at = UTC_TIMESTAMP(3)"
                        " WHERE id = ? AND status = 'confirmed'", "i", id);
    if (n <= 0)
        return (int)n;
    /* The data: what the customer is told (the order's lines and total)
     * and what product settles (its reservation). */
    db_res *r = db_query("SELECT user_id, COALESCE(reservation_id, id), total_cents, currency,"
                         " updated_at FROM orders WHERE id = ?", "i", id);
    if (!r)
        return DB_ERROR;
    if (db_rows(r) == 0) {
        db_free(r);
        return DB_ERROR;
    }
    json_object *o = json_object_new_object(), *items = json_object_new_array();
    if (!o || !items) {
        json_object_put(o);
        json_object_put(items);
        db_free(r);
        return STORE_FAILED;
    }
    char t[40];
    json_object_object_add(o, "order_id", json_object_new_int64(id));
    json_object_object_add(o, "user_id", json_object_new_int64(db_int(r, 0, 0)));
    json_object_object_add(o, "reservation_id", json_object_new_int64(db_int(r, 0, 1)));
    json_object_object_add(o, "status", json_object_new_string("cancelled"));
    json_object_object_add(o, "total_cents", json_object_new_int64(db_int(r, 0, 2)));
    json_object_object_add(o, "currency", json_object_new_string(db_str(r, 0, 3) ? db_str(r, 0, 3) : ""));
    db_time_rfc3339(db_str(r, 0, 4), t, sizeof t);
    json_object_object_add(o, "cancelled_at", json_object_new_string(t));
    db_free(r);
    r = db_query("SELECT product_id, sku, name, unit_price_cents, quantity, line_total_cents"
                 " FROM order_items WHERE order_id = ? ORDER BY line_no", "i", id);
    if (!r) {
        json_object_put(o);
        json_object_put(items);
        return DB_ERROR;
    }
    for (int i = 0; i < db_rows(r); i++) {
        json_object *l = json_object_new_object();
        if (!l)
            break;
        json_object_object_add(l, "product_id", json_object_new_int64(db_int(r, i, 0)));
        json_object_object_add(l, "sku", json_object_new_string(db_str(r, i, 1) ? db_str(r, i, 1) : ""));
        json_object_object_add(l, "name", json_object_new_string(db_str(r, i, 2) ? db_str(r, i, 2) : ""));
        json_object_object_add(l, "unit_price_cents", json_object_new_int64(db_int(r, i, 3)));
        json_object_object_add(l, "quantity", json_object_new_int64(db_int(r, i, 4)));
        json_object_object_add(l, "line_total_cents", json_object_new_int64(db_int(r, i, 5)));
        json_object_array_add(items, l);
    }
    db_free(r);
    json_object_object_add(o, "items", items);
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    int rc = text ? store_outbox("order.cancelled", id, text) : STORE_FAILED;
    json_object_put(o);
    return rc == DB_OK ? 1 : rc;
}

int store_cancel_order(int64_t id)
{
    return db_tx(store_cancel_tx, &id);
}

typedef struct mark_args {
    const int64_t *ids;
    int n;
} mark_args;

static int store_mark_confirmed_tx(void *arg)
{
    mark_args *a = arg;
    return db_exec_ids("UPDATE orders SET stock_state = 'confirmed' WHERE id IN " DB_IDS
                       " AND status = 'confirmed' AND stock_state = 'held'", a->ids, a->n) < 0
               ? DB_ERROR : DB_OK;
}

int store_mark_stock_confirmed(const int64_t *ids, int n)
{
    mark_args a = { ids, n };
    return n > 0 ? db_tx(store_mark_confirmed_tx, &a) : DB_OK;
}

int store_mark_stock_released(int64_t id)
{
    return (int)db_exec("UPDATE orders SET stock_state = 'released' WHERE id = ?"
                        " AND status IN ('cancelled','failed') AND stock_state <> 'released'",
                        "i", id);
}

/* ---------------------------------------------------------------- sweep */

/* In reservation id order, so product locks a batch's rows in one order. */
int store_unconfirmed_stock(int64_t *ids, int64_t *rids, int max)
{
    return db_int_pairs(
        db_query("SELECT id, COALESCE(reservation_id, id) AS rid FROM orders"
                 " WHERE stock_state = 'held' AND status = 'confirmed'"
                 " ORDER BY rid LIMIT ?", "i", (int64_t)max), ids, rids, max);
}

/* Both walk the (status, updated_at) index from its oldest end. */
int64_t store_purge_idempotency(int64_t age_s, int batch, int max_batches)
{
    return db_purge("DELETE FROM idempotency_keys WHERE status = 'done'"
                    " AND updated_at < UTC_TIMESTAMP(3) - INTERVAL ? SECOND"
                    " ORDER BY status, updated_at LIMIT ?", age_s, batch, max_batches);
}

int64_t store_purge_failed(int64_t age_s, int batch, int max_batches)
{
    return db_purge("DELETE FROM orders WHERE status = 'failed' AND stock_state = 'released'"
                    " AND updated_at < UTC_TIMESTAMP(3) - INTERVAL ? SECOND"
                    " ORDER BY status, updated_at LIMIT ?", age_s, batch, max_batches);
}

int64_t store_purge_outbox(int64_t age_s, int batch, int max_batches)
{
    return db_purge("DELETE FROM outbox WHERE published_at < UTC_TIMESTAMP(3) - INTERVAL ? SECOND"
                    " ORDER BY published_at, id LIMIT ?", age_s, batch, max_batches);
}

int store_unreleased_stock(int64_t *ids, int64_t *rids, int max)
{
    return db_int_pairs(
        db_query("SELECT id, COALESCE(reservation_id, id) FROM orders"
                 " WHERE stock_state IN ('none','held','confirmed')"
                 " AND status IN ('cancelled','failed')"
                 " ORDER BY id LIMIT ?", "i", (int64_t)max), ids, rids, max);
}
