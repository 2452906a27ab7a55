/* order.h: what the order service's files share: the endpoint handlers
 * (handlers.c) for the route table in main.c, the calls to the product
 * service's reservations (reservations.c), the settling sweep (sweep.c), and the
 * pure request helpers that unit tests exercise directly. */
#ifndef ORDER_ORDER_H
#define ORDER_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "http.h"
#include "items.h"

#define ORDER_MAX_LINES 50
#define ORDER_MAX_QUANTITY 1000
#define ORDER_SWEEP_BATCH 500      /* orders or reservations per sweep step */
#define ORDER_RETENTION_BATCHES 20 /* retention batches per table per sweep pass */

/* ---------------------------------------------------------------- handlers */
int order_create(http_req *req);    /* POST /orders */
int order_list(http_req *req);      /* GET /orders */
int order_get(http_req *req);       /* GET /orders/{id} */
int order_cancel(http_req *req);    /* POST /orders/{id}/cancel */

/* ---------------------------------------------------------------- request helpers */
/* Validates a POST /orders body: only "items", 1-50 objects of exactly
 * {product_id >= 1, quantity 1-1000}, product ids distinct.  Appends one error
 * per bad field to errs, named like "items[2].quantity" (0-based).  Fills
 * lines[] (ORDER_MAX_LINES entries) and *n when the body is valid (items.h). */
void order_parse_lines(json_object *body, items_line *lines, size_t *n, json_object *errs);

/* True when k is 1-255 visible ASCII characters (0x21-0x7E). */
bool order_idem_key_valid(const char *k);

/* SHA-256 of the canonical form of the lines (sorted by product id), so the
 * same order written with lines or members in another order is the same
 * request for Idempotency-Key purposes. */
void order_request_hash(const items_line *lines, size_t n, unsigned char out[32]);

/* The id of the stock reservation for a request: with an Idempotency-Key a
 * hash of the user, the request's lines (body: order_request_hash) and the
 * key, so a retry or a racing duplicate of the same request lands on the same
 * reservation, and the key used with other lines (a corrected request after
 * a 503, or a use after the key's record was purged) on another; without a
 * key (key or body NULL), random.  In 1..10^18-1. */
int64_t order_reservation_id(int64_t user_id, const char *key, const unsigned char body[32]);

/* Prefix of order list cursors (http_cursor_*): "orders with id below this". */
#define ORDER_CURSOR "o2"

/* ---------------------------------------------------------------- reservations */
/* Releases reservation_id at product; on success records stock_state
 * released on order_id (when > 0).  False on failure (logged). */
bool reservation_release(int64_t order_id, int64_t reservation_id);
/* Confirms rids[0..n) at product in one call (n <= ORDER_SWEEP_BATCH) and
 * records stock_state confirmed on the matching order_ids.  Returns how many
 * were confirmed, or -1 when product could not be asked. */
int reservation_confirm_many(const int64_t *order_ids, const int64_t *rids, int n);
/* Held reservations past their TTL (up to max): ids and users.  Returns the
 * count, or -1 when product could not be asked. */
int reservation_expired(int64_t *rids, int64_t *user_ids, int max);

/* ---------------------------------------------------------------- sweep */
/* One repair pass (see sweep.c).  Returns the number of repairs, or -1 when
 * a step could not run. */
int order_sweep_once(void);
/* `build/order.fcgi --sweep[-once]`: sets up config, log and DB itself. */
int order_sweep_main(bool once);

#endif
