/* store.c: the order service's SQL (shop_order), nothing else.  Each state
 * change is a conditional UPDATE that names the state it expects, so the live
 * request, cancels and the sweeps on every host can run at once and exactly
 * one wins each transition; multi-statement changes go through db_tx, which
 * retries the whole callback on deadlocks and lost connections (so callbacks
 * reset their outputs first).  Times are written with UTC_TIMESTAMP(3) rather
 * than column defaults so they are UTC whatever the session time zone. */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "db.h"

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
static void store_copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

/* ---------------------------------------------------------------- reads */

#define ORDER_COLS "id, user_id, status, stock_state, total_cents, currency, created_at, updated_at"
#define ITEM_COLS "order_id, product_id, sku, name, unit_price_cents, quantity, line_total_cents"

/* Fills o (items left empty) from row `row` of an ORDER_COLS result. */
static void store_read_order(const db_res *r, int row, store_order *o)
{
    o->id = db_int(r, row, 0);
    o->user_id = db_int(r, row, 1);
    store_copy(o->status, sizeof o->status, db_str(r, row, 2));
    store_copy(o->stock_state, sizeof o->stock_state, db_str(r, row, 3));
    o->total_cents = db_int(r, row, 4);
    store_copy(o->currency, sizeof o->currency, db_str(r, row, 5));
    store_copy(o->created_at, sizeof o->created_at, db_str(r, row, 6));
    store_copy(o->updated_at, sizeof o->updated_at, db_str(r, row, 7));
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
    store_copy(it->sku, sizeof it->sku, db_str(r, row, 2));
    store_copy(it->name, sizeof it->name, db_str(r, row, 3));
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

typedef struct begin_args {
    int64_t user_id;
    const char *key;
    const unsigned char *hash;
    int64_t order_id;
} begin_args;

static int store_insert_pending(int64_t user_id, int64_t *order_id)
{
    int64_t n = db_exec("INSERT INTO orders (user_id, status, stock_state, created_at, updated_at)"
                        " VALUES (?, 'pending', 'none', UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
                        "i", user_id);
    if (n < 0)
        return (int)n;
    *order_id = db_last_id();
    return 0;
}

static int store_begin_tx(void *arg)
{
    begin_args *a = arg;
    if (a->order_id) {
        /* A rerun: if the previous attempt's COMMIT went through and only
         * its reply was lost, that order (and key) are ours: keep them
         * rather than collide with our own key row or orphan an order. */
        db_res *r = db_query("SELECT 1 FROM orders WHERE id = ? AND user_id = ? AND status = 'pending'",
                             "ii", a->order_id, a->user_id);
        if (!r)
            return DB_ERROR;
        int found = db_rows(r);
        db_free(r);
        if (found)
            return 0;
    }
    int rc = store_insert_pending(a->user_id, &a->order_id);
    if (rc < 0)
        return rc;
    if (a->key) {
        /* The primary key (user_id, idem_key) is the race arbiter: a second
         * request with the same key waits on the row lock, then gets 1062. */
        int64_t n = db_exec("INSERT INTO idempotency_keys (user_id, idem_key, request_hash, status,"
                    " order_id, created_at, updated_at) VALUES (?, ?, ?, 'running', ?,"
                    " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
                    "isbi", a->user_id, a->key, (const void *)a->hash, (size_t)32, a->order_id);
        if (n < 0)
            return (int)n;
    }
    return 0;
}

/* Runs one of the transactions that make a pending order (begin or
 * takeover); sets *order_id on success. */
static int store_make_pending(db_tx_fn fn, int64_t user_id, const char *idem_key,
                              const unsigned char hash[32], int64_t *order_id)
{
    begin_args a = { user_id, idem_key, hash, 0 };
    int rc = db_tx(fn, &a);
    if (rc < 0)
        return rc;
    *order_id = a.order_id;
    return 0;
}

int store_begin_order(int64_t user_id, const char *idem_key,
                      const unsigned char hash[32], int64_t *order_id)
{
    return store_make_pending(store_begin_tx, user_id, idem_key, hash, order_id);
}

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
    /* A duplicate sent while the first is running waits a moment for it, so
     * it can usually replay the first's answer instead of a 409. */
    db_res *r = db_query("SELECT GET_LOCK(?, 1)", "s", name);
    if (!r)
        return DB_ERROR;
    int held = db_int(r, 0, 0) == 1;
    db_free(r);
    return held;
}

void store_idem_unlock(int64_t user_id, const char *idem_key)
{
    char name[64];
    store_idem_lock_name(user_id, idem_key, name);
    db_free(db_query("SELECT RELEASE_LOCK(?)", "s", name));
}

static int store_takeover_tx(void *arg)
{
    begin_args *a = arg;
    db_res *r = db_query("SELECT request_hash, status, order_id FROM idempotency_keys"
                         " WHERE user_id = ? AND idem_key = ? FOR UPDATE",
                         "is", a->user_id, a->key);
    if (!r)
        return DB_ERROR;
    bool ours = db_rows(r) == 1 && db_len(r, 0, 0) == 32 &&
                sodium_memcmp(db_str(r, 0, 0), a->hash, 32) == 0 &&
                strcmp(db_str(r, 0, 1), "running") == 0;
    int64_t old = db_int(r, 0, 2);
    db_free(r);
    if (!ours)
        return DB_CONFLICT;
    if (db_exec("UPDATE orders SET status = 'failed', updated_at = UTC_TIMESTAMP(3)"
                " WHERE id = ? AND status = 'pending'", "i", old) < 0)
        return DB_ERROR;
    int rc = store_insert_pending(a->user_id, &a->order_id);
    if (rc < 0)
        return rc;
    if (db_exec("UPDATE idempotency_keys SET order_id = ?, updated_at = UTC_TIMESTAMP(3)"
                " WHERE user_id = ? AND idem_key = ?", "iis", a->order_id, a->user_id, a->key) < 0)
        return DB_ERROR;
    return 0;
}

int store_takeover_order(int64_t user_id, const char *idem_key,
                         const unsigned char hash[32], int64_t *order_id)
{
    return store_make_pending(store_takeover_tx, user_id, idem_key, hash, order_id);
}

typedef struct confirm_args {
    int64_t order_id, user_id;
    const store_item *items;
    size_t n;
    const char *currency;
    const char *key;
    store_render_fn render;
    char *reply;
} confirm_args;

/* The order was not pending.  Either the sweep failed it (returns 0), or
 * this very confirmation already committed and db_tx is rerunning it because
 * the COMMIT's reply was lost: nobody else confirms an order, so "confirmed"
 * (or cancelled since) means ours stands, and the caller must not release
 * its stock (returns 1 with the reply rendered from what was stored). */
static int store_confirm_standing(confirm_args *a)
{
    store_order o;
    int rc = store_get_order(a->order_id, &o);
    if (rc <= 0)
        return rc < 0 ? rc : STORE_FAILED;
    if (strcmp(o.status, "confirmed") != 0 && strcmp(o.status, "cancelled") != 0) {
        store_order_free(&o);
        return 0;
    }
    a->reply = a->render(&o);
    store_order_free(&o);
    return a->reply ? 1 : STORE_FAILED;
}

static int store_confirm_tx(void *arg)
{
    confirm_args *a = arg;
    free(a->reply);             /* a retried run starts clean */
    a->reply = NULL;
    int64_t total = 0;
    for (size_t i = 0; i < a->n; i++)
        total += a->items[i].unit_price_cents * a->items[i].quantity;
    int64_t n = db_exec("UPDATE orders SET status = 'confirmed', stock_state = 'held',"
                        " total_cents = ?, currency = ?, updated_at = UTC_TIMESTAMP(3)"
                        " WHERE id = ? AND status = 'pending'",
                        "isi", total, a->currency, a->order_id);
    if (n < 0)
        return (int)n;
    if (n == 0)
        return store_confirm_standing(a);
    for (size_t i = 0; i < a->n; i++) {
        const store_item *it = &a->items[i];
        n = db_exec("INSERT INTO order_items (order_id, line_no, product_id, sku, name,"
                    " unit_price_cents, quantity, line_total_cents)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    "iiissiii", a->order_id, (int64_t)(i + 1), it->product_id, it->sku,
                    it->name, it->unit_price_cents, it->quantity,
                    it->unit_price_cents * it->quantity);
        if (n < 0)
            return (int)n;
    }
    store_order o;
    int rc = store_get_order(a->order_id, &o);
    if (rc <= 0)
        return rc < 0 ? rc : STORE_FAILED;
    a->reply = a->render(&o);
    store_order_free(&o);
    if (!a->reply)
        return STORE_FAILED;
    n = db_exec("INSERT INTO outbox (event_type, order_id, payload, created_at)"
                " VALUES ('order.confirmed', ?, ?, UTC_TIMESTAMP(3))",
                "is", a->order_id, a->reply);
    if (n < 0)
        return (int)n;
    if (a->key) {
        n = db_exec("UPDATE idempotency_keys SET status = 'done', response_status = 201,"
                    " response_body = ?, updated_at = UTC_TIMESTAMP(3)"
                    " WHERE user_id = ? AND idem_key = ? AND order_id = ?",
                    "sisi", a->reply, a->user_id, a->key, a->order_id);
        if (n < 0)
            return (int)n;
    }
    return 1;
}

int store_confirm_order(int64_t order_id, int64_t user_id, const store_item *items,
                        size_t n, const char *currency, const char *idem_key,
                        store_render_fn render, char **reply)
{
    confirm_args a = { order_id, user_id, items, n, currency, idem_key, render, NULL };
    int rc = db_tx(store_confirm_tx, &a);
    if (rc == 1) {
        *reply = a.reply;
        return 1;
    }
    free(a.reply);
    *reply = NULL;
    return rc;
}

typedef struct fail_args {
    int64_t order_id, user_id;
    bool nothing_held;
    const char *key;
    int reply_status;
    const char *reply_body;
} fail_args;

static int store_fail_tx(void *arg)
{
    fail_args *a = arg;
    int64_t n = a->nothing_held
        ? db_exec("UPDATE orders SET status = 'failed', stock_state = 'released',"
                  " updated_at = UTC_TIMESTAMP(3) WHERE id = ? AND status = 'pending'",
                  "i", a->order_id)
        : db_exec("UPDATE orders SET status = 'failed', updated_at = UTC_TIMESTAMP(3)"
                  " WHERE id = ? AND status = 'pending'", "i", a->order_id);
    if (n < 0)
        return (int)n;
    if (a->key) {
        int64_t k = a->reply_status > 0
            ? db_exec("UPDATE idempotency_keys SET status = 'done', response_status = ?,"
                      " response_body = ?, updated_at = UTC_TIMESTAMP(3)"
                      " WHERE user_id = ? AND idem_key = ? AND order_id = ?"
                      " AND status = 'running'",
                      "isisi", (int64_t)a->reply_status, a->reply_body, a->user_id, a->key,
                      a->order_id)
            : db_exec("DELETE FROM idempotency_keys WHERE user_id = ? AND idem_key = ?"
                      " AND order_id = ? AND status = 'running'",
                      "isi", a->user_id, a->key, a->order_id);
        if (k < 0)
            return (int)k;
    }
    return (int)n;
}

int store_fail_order(int64_t order_id, int64_t user_id, bool nothing_held,
                     const char *idem_key, int reply_status, const char *reply_body)
{
    fail_args a = { order_id, user_id, nothing_held, idem_key, reply_status, reply_body };
    return db_tx(store_fail_tx, &a);
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
    char payload[64];
    snprintf(payload, sizeof payload, "{\"order_id\":%" PRId64 "}", id);
    if (db_exec("INSERT INTO outbox (event_type, order_id, payload, created_at)"
                " VALUES ('order.cancelled', ?, ?, UTC_TIMESTAMP(3))", "is", id, payload) < 0)
        return DB_ERROR;
    return 1;
}

int store_cancel_order(int64_t id)
{
    return db_tx(store_cancel_tx, &id);
}

int store_mark_stock_confirmed(int64_t id)
{
    return (int)db_exec("UPDATE orders SET stock_state = 'confirmed'"
                        " WHERE id = ? AND status = 'confirmed' AND stock_state = 'held'",
                        "i", id);
}

int store_mark_stock_released(int64_t id)
{
    return (int)db_exec("UPDATE orders SET stock_state = 'released' WHERE id = ?"
                        " AND status IN ('cancelled','failed') AND stock_state <> 'released'",
                        "i", id);
}

/* ---------------------------------------------------------------- sweep */

/* Runs an id query and copies up to max ids.  Returns the count or DB_ERROR. */
static int store_collect_ids(db_res *r, int64_t *ids, int max)
{
    if (!r)
        return DB_ERROR;
    int n = db_rows(r) < max ? db_rows(r) : max;
    for (int i = 0; i < n; i++)
        ids[i] = db_int(r, i, 0);
    db_free(r);
    return n;
}

int store_stale_pending(int pending_timeout_s, int64_t *ids, int max)
{
    return store_collect_ids(
        db_query("SELECT id FROM orders WHERE status = 'pending'"
                 " AND updated_at < UTC_TIMESTAMP(3) - INTERVAL ? SECOND"
                 " ORDER BY updated_at LIMIT ?",
                 "ii", (int64_t)pending_timeout_s, (int64_t)max), ids, max);
}

/* The live request confirms its own reservation right after committing; the
 * grace keeps the sweep from duplicating that call in the common case. */
int store_unconfirmed_stock(int64_t *ids, int max)
{
    return store_collect_ids(
        db_query("SELECT id FROM orders WHERE stock_state = 'held' AND status = 'confirmed'"
                 " AND updated_at < UTC_TIMESTAMP(3) - INTERVAL 2 SECOND"
                 " ORDER BY id LIMIT ?", "i", (int64_t)max), ids, max);
}

/* 'none' is included: a failed order may still have a reservation its
 * request never heard about (timeout), and a release without one leaves a
 * tombstone so a late reserve takes nothing. */
int store_unreleased_stock(int64_t *ids, int max)
{
    return store_collect_ids(
        db_query("SELECT id FROM orders WHERE stock_state IN ('none','held','confirmed')"
                 " AND status IN ('cancelled','failed')"
                 " AND updated_at < UTC_TIMESTAMP(3) - INTERVAL 2 SECOND"
                 " ORDER BY id LIMIT ?", "i", (int64_t)max), ids, max);
}

int store_purge_stuck_keys(int timeout_s)
{
    return (int)db_exec("DELETE k FROM idempotency_keys k JOIN orders o ON o.id = k.order_id"
                        " WHERE k.status = 'running'"
                        " AND k.updated_at < UTC_TIMESTAMP(3) - INTERVAL ? SECOND"
                        " AND o.status = 'failed'", "i", (int64_t)timeout_s);
}
