/* order.h: what the order service's files share: the endpoint handlers
 * (handlers.c) for the route table in main.c, the calls to the product
 * service's reservations (reservations.c), the repair sweep (sweep.c), and the
 * pure request helpers that unit tests exercise directly. */
#ifndef ORDER_ORDER_H
#define ORDER_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "http.h"

#define ORDER_MAX_LINES 50
#define ORDER_MAX_QUANTITY 1000
#define ORDER_PENDING_TIMEOUT_DEFAULT 30   /* seconds a pending order may live */

/* ---------------------------------------------------------------- handlers */
int order_create(http_req *req);    /* POST /orders */
int order_list(http_req *req);      /* GET /orders */
int order_get(http_req *req);       /* GET /orders/{id} */
int order_cancel(http_req *req);    /* POST /orders/{id}/cancel */
int order_health(http_req *req);    /* GET /orders/health */

/* ---------------------------------------------------------------- request helpers */
typedef struct order_line {
    int64_t product_id;
    int64_t quantity;
} order_line;

/* Validates a POST /orders body: only "items", 1-50 objects of exactly
 * {product_id >= 1, quantity 1-1000}, product ids distinct.  Appends one error
 * per bad field to errs, named like "items[2].quantity" (0-based).  Fills
 * lines[] (ORDER_MAX_LINES entries) and *n when the body is valid. */
void order_parse_lines(json_object *body, order_line *lines, size_t *n, json_object *errs);

/* True when k is 1-255 visible ASCII characters (0x21-0x7E). */
bool order_idem_key_valid(const char *k);

/* SHA-256 of the canonical form of the lines (sorted by product id), so the
 * same order written with lines or members in another order is the same
 * request for Idempotency-Key purposes. */
void order_request_hash(const order_line *lines, size_t n, unsigned char out[32]);

/* Prefix of order list cursors (http_cursor_*): "orders with id below this". */
#define ORDER_CURSOR "o1:"

/* ---------------------------------------------------------------- reservations */
/* Each returns true when product answered 200, and then records the new
 * stock_state with a conditional UPDATE.  Failures are logged. */
bool reservation_release(int64_t order_id);
bool reservation_confirm(int64_t order_id);

/* ---------------------------------------------------------------- sweep */
/* One repair pass (see sweep.c).  Returns the number of repairs, or -1 when
 * the database could not be read. */
int order_sweep_once(void);
/* `build/order.fcgi --sweep[-once]`: sets up config, log and DB itself. */
int order_sweep_main(bool once);

#endif
