/* store.h: the product service's whole database interface.  Every SQL
 * statement of the service lives behind these functions (store.c); callers see
 * plain structs and result codes, never SQL, and the store never sees HTTP.
 *
 * Writes that depend on the current row (edits, stock moves, reservations) run
 * in one db_tx() under SELECT ... FOR UPDATE.  Authorization and preconditions
 * are the caller's policy: the store hands the locked row to a guard callback
 * and aborts the transaction when the guard says no. */
#ifndef SHOP_PRODUCT_STORE_H
#define SHOP_PRODUCT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

#define PRODUCT_SKU_MAX 64
#define PRODUCT_NAME_MAX 200        /* characters */
#define PRODUCT_DESC_MAX 5000       /* characters */
#define PRODUCT_NAME_BYTES (PRODUCT_NAME_MAX * 4 + 1)

/* Results besides DB_OK, DB_ERROR, DB_UNAVAILABLE, DB_CONFLICT: db.h's
 * STORE_NOT_FOUND, STORE_INSUFFICIENT, STORE_UNAVAILABLE, STORE_INVALID_STATE.
 * Guards return their own codes, which must be <= STORE_GUARD_MIN so they
 * never collide with these. */

typedef struct product {
    int64_t id, price_cents, stock, seller_id, version;
    char sku[PRODUCT_SKU_MAX + 1];
    char name[PRODUCT_NAME_BYTES];
    char *description;              /* malloc'd; product_clear() frees it */
    char currency[4];
    char status[9];                 /* active | draft | archived */
    char created_at[32], updated_at[32];   /* RFC 3339 UTC, "...T...Z" */
} product;

void product_clear(product *p);

/* ------------------------------------------------------------ reads */

/* Reads come from the host's own Galera node (db_read()), which may be a
 * moment behind the writer, unless the caller asks for `latest`: then from the
 * writer, so whoever just wrote sees the write.  The handlers ask for it on
 * every request with a token and not for anonymous ones (whose answers the
 * edge caches for 5 s anyway).  Writes never use these reads. */

/* Loads product `id` into *out.  Returns 1 found, 0 absent, or a db.h code.
 * "Absent" is always the writer's answer (a product just created is found). */
int store_product_get(int64_t id, bool latest, product *out);

/* Which rows a list may show.  The caller decides it from the viewer's role. */
typedef enum {
    VIS_ACTIVE,   /* status = active only (anonymous, customers, others' lists) */
    VIS_OWN,      /* active, plus every status of viewer_id's own products */
    VIS_ALL,      /* everything (admins, or a seller's own rows) */
} product_vis;

typedef struct product_query {
    int64_t after_id;      /* keyset cursor: only ids greater than this */
    int limit;             /* page size 1..100 */
    product_vis vis;
    int64_t viewer_id;     /* for VIS_OWN */
    const char *status;    /* NULL: any status the visibility allows */
    int64_t seller_id;     /* 0: any seller */
    const char *q;         /* NULL: any name; else words (store_search_query) */
    bool latest;           /* read from the writer (see store_product_get) */
} product_query;

typedef struct product_page {
    product *items;
    int n;
    bool more;             /* a row exists after the last item */
} product_page;

/* One page of products in ascending id order.  Returns DB_OK or a db.h code. */
int store_product_list(const product_query *q, product_page *out);
void product_page_free(product_page *p);

/* The list statements for these query flags: the general one, and the union
 * a seller's unfiltered list without q (VIS_OWN) uses. */
const char *store_list_sql(product_vis vis, bool status, bool seller, bool q);
const char *store_list_own_sql(void);

/* Name search (the rule the API documents for `q`).  q is cut into words:
 * runs of ASCII letters, digits, '_' and any non-ASCII bytes; every other
 * character separates words and has no other meaning.  Words shorter than
 * STORE_SEARCH_MIN_WORD characters are dropped (the index does not hold them);
 * each other word must begin a word of the name, case- and accent-insensitively.
 * Writes the InnoDB boolean-mode query "+word* +word* ..." into out (n bytes;
 * 2 * strlen(q) + 2 always suffice; out may be NULL to only count).  Returns
 * the number of words kept, 0 when there is none (q cannot be searched), or
 * -1 when a word is longer than STORE_SEARCH_MAX_WORD (no name can match). */
#define STORE_SEARCH_MIN_WORD 3     /* innodb_ft_min_token_size */
#define STORE_SEARCH_MAX_WORD 84    /* innodb_ft_max_token_size */
int store_search_query(const char *q, char *out, size_t n);

/* ------------------------------------------------------------ writes */

typedef struct product_fields {
    const char *sku, *name, *description, *currency, *status;
    int64_t price_cents, stock, seller_id;
} product_fields;

/* Inserts a product (version 1) and loads it into *out.  Returns DB_OK,
 * DB_CONFLICT when the sku is taken, or a db.h code. */
int store_product_create(const product_fields *f, product *out);

/* Called inside the transaction with the locked current row.  Returns 0 to go
 * on, or a code <= STORE_GUARD_MIN to roll back and make the store function
 * return that code. */
typedef int (*store_guard)(const product *cur, void *ctx);

/* An edit: NULL fields keep their current value (PATCH); PUT sets them all. */
typedef struct product_edit {
    const char *name, *description, *currency, *status;
    bool has_price;
    int64_t price_cents;
} product_edit;

/* Locks product `id`, runs guard, applies the edit, bumps version and
 * updated_at, and loads the new row into *out.  Returns DB_OK,
 * STORE_NOT_FOUND, a guard code, or a db.h code. */
int store_product_update(int64_t id, const product_edit *e, store_guard guard,
                         void *ctx, product *out);

/* Archives product `id` (a no-op when it already is).  Same contract. */
int store_product_archive(int64_t id, store_guard guard, void *ctx, product *out);

/* The most stock a product holds (the API's 10^9). */
#define STORE_STOCK_MAX 1000000000LL

/* Adds delta to the stock under the row lock and bumps version.  Returns DB_OK,
 * STORE_INSUFFICIENT or STORE_TOO_MUCH (below zero or above STORE_STOCK_MAX;
 * with *out the unchanged row), STORE_NOT_FOUND, a guard code, STORE_UNKNOWN
 * (the COMMIT got no answer: the delta may have been applied), or a db.h code. */
int store_product_add_stock(int64_t id, int64_t delta, store_guard guard,
                            void *ctx, product *out);

/* ------------------------------------------------------------ reservations */

/* A reservation is stock taken for an order that the order service is about
 * to write.  Its id is chosen by the order service (so a retry lands on the
 * same one); it is held until expires_at, then confirmed (the order stands)
 * or released (it does not, or it was cancelled).  Product never decides on
 * its own whether an order stands: the order service tells it. */
typedef struct resv_line {
    int64_t product_id, quantity;
    /* filled by the store: */
    char sku[PRODUCT_SKU_MAX + 1];
    char name[PRODUCT_NAME_BYTES];
    int64_t unit_price_cents;
    char currency[4];
    int64_t available;   /* stock seen when short */
    bool bad;            /* unavailable or short, per the result code */
} resv_line;

typedef struct reservation {
    int64_t id, user_id;
    char status[10];     /* held | confirmed | released */
    resv_line *lines;    /* malloc'd, in request order */
    int n;
} reservation;

void reservation_free(reservation *r);

/* Reserves every line under reservation `id` for `user_id`, all or nothing,
 * held for ttl_s seconds: one transaction that locks the product rows in
 * ascending id order (SELECT ... FOR UPDATE), checks and takes the stock and
 * records the lines with their sale data (sku, name, price, currency).
 * `req` lines carry product_id and quantity (distinct product ids).  On DB_OK
 * *out holds the reservation (the stored one when `id` was reserved before:
 * a repeat takes nothing).  STORE_UNAVAILABLE / STORE_INSUFFICIENT mark the
 * failing lines of `req` (bad, available).  STORE_INVALID_STATE when `id`
 * was released. */
int store_reserve(int64_t id, int64_t user_id, int ttl_s, resv_line *req, int n,
                  reservation *out);

/* held -> confirmed for each of ids[0..n) (idempotent), in one transaction.
 * status[i] receives "confirmed", "released" or "missing".  Returns DB_OK or
 * a db.h code. */
int store_confirm_many(const int64_t *ids, int n, char (*status)[10]);

/* Returns the stock of a held/confirmed reservation and marks it released;
 * records a released tombstone when none exists, so a late reserve of that
 * id takes nothing.  Idempotent. */
int store_release(int64_t id);

/* The bodies of the above, for a caller that runs them inside its own
 * transaction (the settle consumer, events/settle.c, with its dedupe rows).
 * store_confirm_many_in_tx fills status as store_confirm_many does. */
int store_confirm_many_in_tx(const int64_t *ids, int n, char (*status)[10]);
int store_release_in_tx(int64_t id);

/* Up to max held reservations past their expiry, oldest first: ids[] and
 * user_ids[].  Returns the count or a db.h code. */
int store_expired(int64_t *ids, int64_t *user_ids, int max);

/* Copies the status into status (>= 10 bytes).  Returns 1, 0 absent, or a db.h code. */
int store_reservation_status(int64_t id, char *status, size_t n);

#endif
