/* handlers.h: the product service's endpoints (one function each, wired to
 * paths in main.c) and the pure helpers they rest on, exposed for the unit
 * tests (tests/test_product_helpers.c). */
#ifndef SHOP_PRODUCT_HANDLERS_H
#define SHOP_PRODUCT_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "store.h"

/* Endpoints, named <service>_<action> as in every service (auth_login,
 * order_create); health is lib's server_health. */
int product_list(http_req *req);
int product_get(http_req *req);
int product_create(http_req *req);
int product_put(http_req *req);
int product_patch(http_req *req);
int product_delete(http_req *req);
int product_stock(http_req *req);

int product_reserve(http_req *req);
int product_reservation_get(http_req *req);
int product_reservations_confirm(http_req *req);
int product_reservation_release(http_req *req);
int product_reservations_expired(http_req *req);

/* The name of product list cursors (http_cursor_prefix, with the filters
 * "seller=<id or 0>;status=<status or empty>;q=<q or empty>"; bench/run.py
 * builds a deep-page cursor the same way). */
#define PRODUCT_CURSOR "p"

/* True when an If-Match / If-None-Match value names ETag "version": `*`
 * matches anything, lists are searched; `weak` (If-None-Match) lets W/"v"
 * match too, while If-Match's strong comparison never matches a weak tag. */
bool product_etag_matches(const char *header, int64_t version, bool weak);

/* Narrows a list query to what `role`/`me` may see (VIS_* and filters).
 * Returns false when nothing can match, so no query is needed. */
bool product_plan_list(user_role role, int64_t me, product_query *q);

/* sku: 1-64 characters of [A-Za-z0-9._-]; currency: three capital letters. */
bool product_sku_valid(const char *s);
bool product_currency_valid(const char *s);

#endif
