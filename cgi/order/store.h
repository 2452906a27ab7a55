/* store.h: every piece of SQL the order service runs (shop_order database).
 * An order is inserted confirmed, in one transaction with everything that
 * goes with it; it may later move confirmed -> cancelled by a conditional
 * UPDATE.  orders.reservation_id is UNIQUE: the order and the sweep's fence
 * for an expired reservation race on it and exactly one wins.  stock_state
 * records what the product service holds for the order as far as we know;
 * the sweep drives it to match status.
 * Functions return DB_* codes from db.h on failure. */
#ifndef ORDER_STORE_H
#define ORDER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

/* Not a DB failure, STORE_FAILED (db.h): out of memory or an inconsistent
 * row (answer 500). */

#define STORE_MAX_LINES 50
#define STORE_SKU_MAX 64
#define STORE_NAME_MAX 800          /* 200 characters of UTF-8 */

typedef struct store_item {
    int64_t product_id;
    char sku[STORE_SKU_MAX + 1];
    char name[STORE_NAME_MAX + 1];
    int64_t unit_price_cents;
    int64_t quantity;
    int64_t line_total_cents;
} store_item;

typedef struct store_order {
    int64_t id, user_id, reservation_id;
    char status[16];              /* confirmed cancelled failed */
    char stock_state[16];         /* none held confirmed released */
    int64_t total_cents;
    char currency[4];
    char created_at[32], updated_at[32];   /* as the DB prints DATETIME(3) */
    size_t n_items;
    store_item *items;            /* malloc'd; store_order_free */
} store_order;

void store_order_free(store_order *o);

/* An Idempotency-Key row as stored. */
typedef struct store_idem {
    unsigned char hash[32];
    bool done;                    /* false only for rows of an earlier shape */
    int response_status;
    char *response_body;          /* malloc'd, NULL when none; store_idem_free */
    int64_t order_id;             /* 0 when none */
} store_idem;

void store_idem_free(store_idem *k);

/* The liveness lock of an Idempotency-Key: a named lock (GET_LOCK) on the
 * writer, held by the request that runs with the key for as long as it runs.
 * The lock lives in that worker's DB session and dies with it, so a retry
 * after a killed worker or a lost connection gets it at once.  Does not
 * wait; returns 1 held, 0 held by another session, or a DB error.  The lock
 * is only a hint: the key's primary key and orders.reservation_id decide, so
 * a lock lost in a failover cannot let two orders stand for one key. */
int store_idem_lock(int64_t user_id, const char *idem_key);
void store_idem_unlock(int64_t user_id, const char *idem_key);

/* Reads the key row.  Returns 1 found, 0 absent, or a DB error. */
int store_get_idem(int64_t user_id, const char *idem_key, store_idem *out);

/* Renders the order as the JSON text of the 201 reply; malloc'd string or
 * NULL.  Called inside the placing transaction, possibly more than once
 * (retries). */
typedef char *(*store_render_fn)(const store_order *o);

/* An order to write: its reservation (already held by product), lines with
 * sku, name, unit_price_cents and quantity filled in, and the key. */
typedef struct store_new_order {
    int64_t user_id, reservation_id;
    const store_item *items;
    size_t n;
    const char *currency;
    const char *idem_key;             /* NULL: none */
    const unsigned char *hash;        /* request hash, with idem_key */
} store_new_order;

/* Results of store_place_order besides 1 and the DB_* codes (db.h):
 * STORE_STANDING, the reservation already has its order (*order_id);
 * STORE_FENCED, the reservation was given up (expired): retry anew. */

/* The one transaction of an order: inserts it confirmed (stock_state held)
 * with its items (line totals computed here), the order.confirmed outbox
 * event and, with a key, the key row holding the 201 reply.  Returns 1
 * (*order_id, *reply = the 201 body; caller frees), STORE_STANDING when an
 * order for this reservation exists (a racing duplicate's, or ours whose
 * COMMIT reply was lost), STORE_FENCED, DB_CONFLICT when the key already
 * holds a reply (another reservation's), STORE_FAILED, or a DB error. */
int store_place_order(const store_new_order *o, store_render_fn render,
                      int64_t *order_id, char **reply);

/* Stores a final refusal (status, body JSON text) as the key's reply, so a
 * repeat replays it.  Returns 0, DB_CONFLICT when the key holds a reply
 * already, or a DB error. */
int store_refuse(int64_t user_id, const char *idem_key, const unsigned char hash[32],
                 int status, const char *body);

/* Gives up an expired reservation that has no order: inserts a failed order
 * row (stock released) with that reservation_id, so the order can never be
 * written after this.  Returns 1 fenced now, 0 when a row exists (its status
 * copied into status, >= 16 bytes: confirmed, cancelled or failed), or a DB
 * error. */
int store_fence(int64_t reservation_id, int64_t user_id, char *status, size_t n);

/* Loads order id with its items.  Returns 1 found, 0 absent, or a DB error. */
int store_get_order(int64_t id, store_order *out);

/* One page of visible (confirmed or cancelled) orders, newest first: those
 * with id < before (0: from the newest), of user_id (0: everyone).  Loads up
 * to `limit` orders into out[] (caller allocates `limit` zeroed entries and
 * frees each with store_order_free) with their items.  Returns the count
 * or a DB error; *more says whether another page follows. */
int store_list_orders(int64_t user_id, int64_t before, int limit,
                      store_order *out, bool *more);

/* confirmed -> cancelled, with its order.cancelled outbox event.  Returns
 * 1 when this call cancelled it, 0 when it was not confirmed, or a DB error. */
int store_cancel_order(int64_t id);

/* stock_state held -> confirmed for each order id (one transaction).
 * Returns DB_OK or a DB error. */
int store_mark_stock_confirmed(const int64_t *ids, int n);

/* stock_state -> released for a cancelled or failed order.  Returns rows
 * changed or a DB error. */
int store_mark_stock_released(int64_t id);


/* Sweep queries: up to `max` orders each, oldest first, as order ids and
 * their reservation ids.  Return the count or a DB error. */
int store_unconfirmed_stock(int64_t *ids, int64_t *rids, int max);  /* confirmed, held;
                                                                        by reservation id */
int store_unreleased_stock(int64_t *ids, int64_t *rids, int max);   /* cancelled, not released */

/* Retention (db_purge(): batches of `batch` rows, each its own transaction,
 * at most max_batches per call).  Return the rows deleted or a DB error.
 * Completed Idempotency-Key records last updated more than age_s ago: a
 * retry with such a key is a new request. */
int64_t store_purge_idempotency(int64_t age_s, int batch, int max_batches);
/* Failed orders (the sweep's fences, never shown to clients and without
 * items) whose stock is released, last updated more than age_s ago. */
int64_t store_purge_failed(int64_t age_s, int batch, int max_batches);
/* Outbox rows the broker confirmed more than age_s ago (pending rows stay
 * whatever their age). */
int64_t store_purge_outbox(int64_t age_s, int batch, int max_batches);

#endif
