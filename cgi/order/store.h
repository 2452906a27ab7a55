/* store.h: every piece of SQL the order service runs (shop_order database).
 * Orders move pending -> confirmed -> cancelled, or pending -> failed; every
 * transition is a conditional UPDATE ("... WHERE status = <expected>"), so the
 * live request, a cancel and the sweeps on every host can race and exactly one
 * of them wins each step.  stock_state records what the product service holds
 * for the order as far as we know; the sweep drives it to match status.
 * Functions return DB_* codes from db.h on failure. */
#ifndef ORDER_STORE_H
#define ORDER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Not a DB failure: out of memory or an inconsistent row (answer 500). */
#define STORE_FAILED (-10)

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
    int64_t id, user_id;
    char status[16];              /* pending confirmed cancelled failed */
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
    bool done;
    int response_status;
    char *response_body;          /* malloc'd, NULL when none; store_idem_free */
    int64_t order_id;             /* 0 when none */
} store_idem;

void store_idem_free(store_idem *k);

/* The liveness lock of an Idempotency-Key: a named lock (GET_LOCK) on the
 * writer, held by the request that claimed the key for as long as it runs.
 * The lock lives in that worker's DB session and dies with it, so a key row
 * still 'running' whose lock is free belongs to a request that is gone (a
 * killed worker, a lost connection).  Only a holder may claim or take over
 * a key.  Waits up to 1 s; returns 1 held, 0 held by another session, or a
 * DB error.  The lock is only a hint: every state change is
 * still a conditional UPDATE, so a lock lost in a failover cannot let two
 * orders stand for one key. */
int store_idem_lock(int64_t user_id, const char *idem_key);
void store_idem_unlock(int64_t user_id, const char *idem_key);

/* Takes over a key whose row is 'running' with this request hash but whose
 * request is gone: fails that request's order if still pending, creates a
 * new pending order and points the key at it, in one transaction.  Returns 0
 * and sets *order_id; DB_CONFLICT when the row is absent, done or for another
 * body (the caller replays what is there); or a DB error. */
int store_takeover_order(int64_t user_id, const char *idem_key,
                         const unsigned char hash[32], int64_t *order_id);

/* Creates a pending order for user_id and, when idem_key is non-NULL, claims
 * that key for it (row status running, request hash) in the same transaction.
 * Returns 0 and sets *order_id, DB_CONFLICT when the key is already claimed
 * (nothing created), or a DB error. */
int store_begin_order(int64_t user_id, const char *idem_key,
                      const unsigned char hash[32], int64_t *order_id);

/* Reads the key row.  Returns 1 found, 0 absent, or a DB error. */
int store_get_idem(int64_t user_id, const char *idem_key, store_idem *out);

/* Renders the confirmed order as the JSON text of the 201 reply; malloc'd
 * string or NULL.  Called inside the confirm transaction, possibly more than
 * once (retries). */
typedef char *(*store_render_fn)(const store_order *o);

/* The confirm step: pending -> confirmed with stock_state held, copies the
 * lines (sku, name, price from the reservation), total and currency, writes
 * the outbox event and, when idem_key is set, stores the 201 reply on the key
 * row, all in one transaction.  Items must have product_id, sku, name,
 * unit_price_cents, quantity filled in; line totals are computed here.
 * Returns 1 confirmed (*reply = rendered 201 body, caller frees), 0 when the
 * order was no longer pending (the sweep failed it), or a DB error. */
int store_confirm_order(int64_t order_id, int64_t user_id, const store_item *items,
                        size_t n, const char *currency, const char *idem_key,
                        store_render_fn render, char **reply);

/* The give-up step: pending -> failed.  When nothing_held (product refused,
 * so it took nothing) stock_state becomes released at once.  The key row, if
 * idem_key is set and the row still belongs to this order and is running, is
 * finished in the same transaction: reply_status > 0 stores that final reply
 * (reply_body JSON text); reply_status == 0 deletes the row so a retry can
 * run.  Returns 1 when this call failed the order, 0 when it was no longer
 * pending, or a DB error. */
int store_fail_order(int64_t order_id, int64_t user_id, bool nothing_held,
                     const char *idem_key, int reply_status, const char *reply_body);

/* Loads order id with its items.  Returns 1 found, 0 absent, or a DB error. */
int store_get_order(int64_t id, store_order *out);

/* One page of visible (confirmed or cancelled) orders, newest first: those
 * with id < before (0: from the newest), of user_id (0: everyone).  Loads up
 * to `limit` orders into out[] (caller allocates `limit` zeroed entries and
 * frees each with store_order_free) with their items.  Returns the count
 * or a DB error; *more says whether another page follows. */
int store_list_orders(int64_t user_id, int64_t before, int limit,
                      store_order *out, bool *more);

/* confirmed -> cancelled.  Returns 1 when this call cancelled it, 0 when it
 * was not confirmed, or a DB error. */
int store_cancel_order(int64_t id);

/* stock_state held -> confirmed for a confirmed order.  Returns rows changed
 * (0 or 1) or a DB error. */
int store_mark_stock_confirmed(int64_t id);

/* stock_state -> released for a cancelled or failed order.  Returns rows
 * changed or a DB error. */
int store_mark_stock_released(int64_t id);

/* Sweep queries: up to `max` order ids each, oldest first.  Return the count
 * or a DB error. */
int store_stale_pending(int pending_timeout_s, int64_t *ids, int max);
int store_unconfirmed_stock(int64_t *ids, int max);   /* confirmed, stock held */
int store_unreleased_stock(int64_t *ids, int max);    /* cancelled/failed, not released */

/* Deletes key rows stuck running for longer than timeout whose order failed.
 * Returns rows deleted or a DB error. */
int store_purge_stuck_keys(int timeout_s);

#endif
