/* handlers.c: the order service's endpoints, one function each: parse,
 * authorize, call the store and the product service, answer.
 *
 * Placing an order takes two transactions and one call to product:
 *   1. with an Idempotency-Key, take the key's lock and replay its stored
 *      answer if it has one;
 *   2. ask product to reserve the stock under a reservation id derived from
 *      the user and the key (random without one), held for a TTL; a retry
 *      or a racing duplicate lands on the same reservation and takes nothing
 *      twice;
 *   3. write the order, confirmed, with its items, outbox event and the
 *      key's reply, in one transaction; orders.reservation_id is UNIQUE, so
 *      a duplicate's order or the sweep's fence for an expired reservation
 *      makes it stop instead of writing a second order.
 * Confirming the reservation is left to the sweep (sweep.c), in batches; a
 * reservation whose order never got written is released after its TTL.
 * Every step is safe to interrupt. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "client.h"
#include "config.h"
#include "db.h"
#include "json.h"
#include "log.h"
#include "order.h"
#include "metrics.h"
#include "problem.h"
#include "store.h"

/* ---------------------------------------------------------------- request helpers */

void order_parse_lines(json_object *body, items_line *lines, size_t *n, json_object *errs)
{
    static const char *const allowed[] = { "items", NULL };
    json_check_fields(body, allowed, errs);
    items_parse(body, ORDER_MAX_LINES, ORDER_MAX_QUANTITY, lines, n, errs);
}

bool order_idem_key_valid(const char *k)
{
    size_t len = strlen(k);
    if (len < 1 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)k[i] < 0x21 || (unsigned char)k[i] > 0x7e)
            return false;
    return true;
}

static int order_line_cmp(const void *a, const void *b)
{
    const items_line *x = a, *y = b;
    return (x->product_id > y->product_id) - (x->product_id < y->product_id);
}

void order_request_hash(const items_line *lines, size_t n, unsigned char out[32])
{
    items_line sorted[ORDER_MAX_LINES];
    if (n > ORDER_MAX_LINES)
        n = ORDER_MAX_LINES;
    memcpy(sorted, lines, n * sizeof *lines);
    qsort(sorted, n, sizeof *sorted, order_line_cmp);
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    for (size_t i = 0; i < n; i++) {
        char buf[64];
        int len = snprintf(buf, sizeof buf, "%" PRId64 "x%" PRId64 ";",
                           sorted[i].product_id, sorted[i].quantity);
        crypto_hash_sha256_update(&st, (const unsigned char *)buf, (unsigned long long)len);
    }
    crypto_hash_sha256_final(&st, out);
}


/* ---------------------------------------------------------------- rendering */

static json_object *order_to_json(const store_order *o)
{
    json_object *j = json_object_new_object(), *items = json_object_new_array();
    char t[40];
    json_set_int(j, "id", o->id);
    json_set_int(j, "user_id", o->user_id);
    json_set_str(j, "status", o->status);
    for (size_t i = 0; i < o->n_items; i++) {
        const store_item *it = &o->items[i];
        json_object *line = json_object_new_object();
        json_set_int(line, "product_id", it->product_id);
        json_set_str(line, "sku", it->sku);
        json_set_str(line, "name", it->name);
        json_set_int(line, "unit_price_cents", it->unit_price_cents);
        json_set_int(line, "quantity", it->quantity);
        json_set_int(line, "line_total_cents", it->line_total_cents);
        json_object_array_add(items, line);
    }
    json_object_object_add(j, "items", items);
    json_set_int(j, "total_cents", o->total_cents);
    json_set_str(j, "currency", o->currency);
    db_time_rfc3339(o->created_at, t, sizeof t);
    json_set_str(j, "created_at", t);
    db_time_rfc3339(o->updated_at, t, sizeof t);
    json_set_str(j, "updated_at", t);
    return j;
}

/* store_render_fn: the 201 body as text, stored with the order. */
static char *order_render(const store_order *o)
{
    json_object *j = order_to_json(o);
    const char *text = j ? json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN) : NULL;
    char *s = text ? strdup(text) : NULL;      /* NULL: the caller answers 500 */
    json_object_put(j);
    return s;
}

/* Pending and failed orders are internal; others' orders are invisible
 * unless the caller is an admin. */
static bool order_visible(const store_order *o, const http_auth *who)
{
    if (strcmp(o->status, "confirmed") != 0 && strcmp(o->status, "cancelled") != 0)
        return false;
    return who->role == USER_ADMIN || o->user_id == who->user_id;
}

/* ---------------------------------------------------------------- placing */

int64_t order_reservation_id(int64_t user_id, const char *key, const unsigned char body[32])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    if (key && body) {
        char uid[32];
        crypto_hash_sha256_state st;
        snprintf(uid, sizeof uid, "rid:%" PRId64 ":", user_id);
        crypto_hash_sha256_init(&st);
        crypto_hash_sha256_update(&st, (const unsigned char *)uid, strlen(uid));
        crypto_hash_sha256_update(&st, body, 32);
        crypto_hash_sha256_update(&st, (const unsigned char *)key, strlen(key));
        crypto_hash_sha256_final(&st, h);
    } else {
        randombytes_buf(h, 8);
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | h[i];
    return (int64_t)(v % 999999999999999999ULL) + 1;
}

typedef struct placing {
    http_req *req;
    int64_t user_id;
    const char *key;              /* Idempotency-Key or NULL */
    const unsigned char *hash;    /* request hash */
    const items_line *lines;
    size_t n;
    int64_t rid;                  /* reservation id */
} placing;

/* 409 for a key whose first request is still running: retry shortly. */
static int order_in_progress(http_req *req)
{
    http_add_header(req, "Retry-After", "1");
    return problem_send(req, 409, "idempotency_in_progress",
                        "A request with this Idempotency-Key is still running; retry once it has finished.");
}

/* Test-only fault switches, named by the X-Fault-Inject header and honoured
 * only when the stack was started with ALLOW_FAULT_INJECTION=1 (off by
 * default, and must stay off in production):
 *   after-reserve: the worker dies right after product took the stock,
 *     before the order is written: the crash the sweep must repair
 *     (FAULT_AFTER_RESERVE=1 does it to every order);
 *   delay-after-reserve: the request sleeps 3 s after reserving, so a
 *     duplicate sent meanwhile meets it still running. */
static bool order_fault(const http_req *req, const char *name)
{
    if (strcmp(name, "after-reserve") == 0 && config_int("FAULT_AFTER_RESERVE", 0) == 1)
        return true;
    if (config_int("ALLOW_FAULT_INJECTION", 0) != 1)
        return false;
    const char *h = http_header(req, "X-Fault-Inject");
    return h && strcmp(h, name) == 0;
}

static int order_replay(http_req *req, int64_t user_id, const char *key,
                        const unsigned char hash[32]);

/* Answers a final refusal and, with a key, stores it as the key's reply so
 * a repeat gets the same answer.  extra (owned) holds the members beyond
 * status/code/detail. */
static int order_refuse(placing *p, int status, const char *code, const char *detail,
                        json_object *extra)
{
    if (p->key) {
        json_object *stored = json_object_new_object();
        json_object_object_foreach(extra, k, v)
            json_object_object_add(stored, k, json_object_get(v));
        json_set_str(stored, "code", code);
        json_set_str(stored, "detail", detail);
        int rc = store_refuse(p->user_id, p->key, p->hash, status,
                              json_object_to_json_string_ext(stored, JSON_C_TO_STRING_PLAIN));
        json_object_put(stored);
        if (rc == DB_CONFLICT) {        /* a racing duplicate answered first */
            json_object_put(extra);
            return order_replay(p->req, p->user_id, p->key, p->hash);
        }
        if (rc < 0)
            log_warn("refusal not stored with the Idempotency-Key (%d)", rc);
    }
    return problem_send_extra(p->req, status, code, detail, extra);
}

/* Finds the line for product_id in the "items" of a product reply. */
static json_object *order_reply_line(json_object *reply_items, int64_t product_id)
{
    size_t n = json_object_array_length(reply_items);
    for (size_t i = 0; i < n; i++) {
        json_object *el = json_object_array_get_idx(reply_items, i), *v;
        if (json_object_object_get_ex(el, "product_id", &v) &&
            json_object_is_type(v, json_type_int) && json_object_get_int64(v) == product_id)
            return el;
    }
    return NULL;
}

/* Reads one reservation line into it.  Returns false when it is malformed
 * or is not the line requested. */
static bool order_copy_line(json_object *line, int64_t quantity, store_item *it, char currency[4])
{
    json_object *sku, *name, *price, *cur, *qty;
    if (!line || !json_object_object_get_ex(line, "sku", &sku) ||
        !json_object_object_get_ex(line, "name", &name) ||
        !json_object_object_get_ex(line, "unit_price_cents", &price) ||
        !json_object_object_get_ex(line, "currency", &cur) ||
        !json_object_object_get_ex(line, "quantity", &qty) ||
        !json_object_is_type(sku, json_type_string) || !json_object_is_type(name, json_type_string) ||
        !json_object_is_type(price, json_type_int) || !json_object_is_type(cur, json_type_string) ||
        !json_object_is_type(qty, json_type_int) || json_object_get_int64(qty) != quantity ||
        json_object_get_string_len(cur) != 3 || json_object_get_string_len(sku) > STORE_SKU_MAX ||
        json_object_get_string_len(name) > STORE_NAME_MAX)
        return false;
    snprintf(it->sku, sizeof it->sku, "%s", json_object_get_string(sku));
    snprintf(it->name, sizeof it->name, "%s", json_object_get_string(name));
    it->unit_price_cents = json_object_get_int64(price);
    it->quantity = quantity;
    it->line_total_cents = it->unit_price_cents * quantity;
    memcpy(currency, json_object_get_string(cur), 4);
    return it->unit_price_cents >= 0;
}

/* Answers with the order standing on our reservation (ours, or a racing
 * duplicate's with the same key).  Returns 0 when the key has no record:
 * the order is that of an earlier use of the key whose record the sweep
 * removed after IDEMPOTENCY_RETENTION, so this request is a new one (the
 * caller places it under a fresh reservation id). */
static int order_reply_standing(placing *p, int64_t order_id)
{
    if (p->key) {
        int status = order_replay(p->req, p->user_id, p->key, p->hash);
        if (status == 0)
            log_info("order %" PRId64 " of Idempotency-Key reservation %" PRId64
                     " predates the key's retention: placing a new order", order_id, p->rid);
        return status;
    }
    store_order o;
    int rc = store_get_order(order_id, &o);
    if (rc <= 0)
        return rc < 0 ? problem_db(p->req, rc) : problem_internal(p->req, "order vanished");
    json_object *body = order_to_json(&o);
    store_order_free(&o);
    http_add_header(p->req, "Location", "/orders/%" PRId64, order_id);
    return http_reply_json(p->req, 201, body);
}

/* The 422 for an order across currencies. */
static int order_refuse_mixed(placing *p)
{
    json_object *extra = json_object_new_object(), *errs = json_object_new_array();
    items_mixed_currency(errs);
    json_object_object_add(extra, "errors", errs);
    return order_refuse(p, 422, "validation_failed",
                        "the products are priced in different currencies", extra);
}

/* Product holds the stock: write the order.  Returns the status sent, or 0
 * when the reservation was given up meanwhile (the caller starts anew). */
static int order_write(placing *p, json_object *reply)
{
    json_object *reply_items;
    store_item items[ORDER_MAX_LINES];
    char currency[4] = "", cur[4];
    bool mixed = false;
    if (!json_object_object_get_ex(reply, "items", &reply_items) ||
        !json_object_is_type(reply_items, json_type_array) ||
        json_object_array_length(reply_items) != p->n)
        reply_items = NULL;
    for (size_t i = 0; reply_items && i < p->n; i++) {
        items[i].product_id = p->lines[i].product_id;
        if (!order_copy_line(order_reply_line(reply_items, p->lines[i].product_id),
                             p->lines[i].quantity, &items[i], cur))
            reply_items = NULL;
        else if (i == 0)
            memcpy(currency, cur, 4);
        else if (strcmp(cur, currency) != 0)
            mixed = true;
    }
    if (!reply_items) {
        /* Another request's lines under our reservation id, which hashes
         * the user, the key and these lines: not expected.  With a key,
         * treat it as a duplicate that is still running. */
        if (p->key)
            return order_in_progress(p->req);
        reservation_release(0, p->rid);
        return problem_internal(p->req, "reservation reply does not match the order");
    }
    if (mixed) {
        reservation_release(0, p->rid);   /* if this fails, its TTL does it */
        return order_refuse_mixed(p);
    }

    store_new_order o = { p->user_id, p->rid, items, p->n, currency, p->key, p->hash };
    int64_t order_id = 0;
    char *text = NULL;
    int rc = store_place_order(&o, order_render, &order_id, &text);
    /* A COMMIT that got no answer may have placed the order.  Writing it
     * again tells (the reservation id is unique: the order stands, or it is
     * written now), so keep at it while the database comes back rather
     * than answer 503 for an order that exists. */
    long waited = 0, wait_ms = (long)config_int("ORDER_UNKNOWN_COMMIT_WAIT_MS", 10000);
    while (rc < 0 && rc != DB_CONFLICT && db_tx_outcome_unknown() && waited < wait_ms) {
        log_warn("reservation %" PRId64 ": the order's commit got no answer; asking again",
                 p->rid);
        usleep(500 * 1000);
        waited += 500;
        rc = store_place_order(&o, order_render, &order_id, &text);
    }
    if (rc == STORE_STANDING)
        return order_reply_standing(p, order_id);
    if (rc == STORE_FENCED)
        return 0;
    if (rc == DB_CONFLICT) {
        /* The key got its answer through another reservation (a duplicate
         * racing us after a failover): that one stands, ours goes back. */
        reservation_release(0, p->rid);
        return order_replay(p->req, p->user_id, p->key, p->hash);
    }
    if (rc == STORE_FAILED)
        return problem_internal(p->req, "could not render the order");
    if (rc < 0)     /* maybe committed (a lost reply): the sweep settles the stock */
        return problem_db(p->req, rc);
    metrics_inc(METRIC_ORDERS_PLACED, 1);
    /* The reply is the text stored with the key and the outbox event: send
     * it as it is rather than parse and print it again. */
    http_add_header(p->req, "Location", "/orders/%" PRId64, order_id);
    int status = http_reply_raw(p->req, 201, "application/json", text, strlen(text));
    free(text);
    return status;
}

/* Adds errors naming the lines product refused ("items[i].product_id"),
 * from the product reply's items. */
static json_object *order_unavailable_errors(const placing *p, json_object *reply_items)
{
    json_object *errs = json_object_new_array();
    for (size_t i = 0; i < p->n; i++) {
        if (reply_items && !order_reply_line(reply_items, p->lines[i].product_id))
            continue;
        char field[48];
        snprintf(field, sizeof field, "items[%zu].product_id", i);
        json_add_error(errs, field, "no such product, or it is not for sale");
    }
    return errs;
}

/* True when a problem body's errors name `field`. */
static bool order_reply_error_on(json_object *body, const char *field)
{
    json_object *errs, *f;
    if (!body || !json_object_object_get_ex(body, "errors", &errs) ||
        !json_object_is_type(errs, json_type_array))
        return false;
    for (size_t i = 0; i < json_object_array_length(errs); i++)
        if (json_object_object_get_ex(json_object_array_get_idx(errs, i), "field", &f) &&
            strcmp(json_object_get_string(f), field) == 0)
            return true;
    return false;
}

/* Reserves the stock under p->rid, then writes the order.  Returns the
 * status sent, or 0 when the reservation id is spent (released or fenced:
 * the caller retries under a fresh one). */
static int order_place(placing *p)
{
    json_object *body = json_object_new_object(), *items = json_object_new_array();
    json_set_int(body, "id", p->rid);
    json_set_int(body, "user_id", p->user_id);
    for (size_t i = 0; i < p->n; i++) {
        json_object *l = json_object_new_object();
        json_set_int(l, "product_id", p->lines[i].product_id);
        json_set_int(l, "quantity", p->lines[i].quantity);
        json_object_array_add(items, l);
    }
    json_object_object_add(body, "items", items);
    client_resp r;
    int rc = client_call("POST", config_get("PRODUCT_URL", ""), "/internal/reservations",
                         body, &r);
    json_object_put(body);
    if (rc < 0 || r.status >= 500) {
        /* Maybe reserved, maybe not: if it was, its TTL gives it back (or
         * a retry with the same key picks it up). */
        client_free(&r);
        return problem_unavailable(p->req, "The product service is unavailable; nothing was placed. Please retry.");
    }

    json_object *v, *reply_items = NULL;
    const char *code = "";
    if (r.body && json_object_object_get_ex(r.body, "code", &v))
        code = json_object_get_string(v);
    if (r.body && json_object_object_get_ex(r.body, "items", &v) &&
        json_object_is_type(v, json_type_array))
        reply_items = v;

    int status;
    if (r.status == 200 && r.body) {
        if (order_fault(p->req, "after-reserve")) {
            log_warn("fault injection: exiting after reservation %" PRId64, p->rid);
            _exit(1);
        }
        if (order_fault(p->req, "delay-after-reserve"))
            sleep(3);
        status = order_write(p, r.body);
    } else if (r.status == 409 && strcmp(code, "insufficient_stock") == 0) {
        json_object *extra = json_object_new_object();
        json_object_object_add(extra, "items",
                               reply_items ? json_object_get(reply_items) : json_object_new_array());
        status = order_refuse(p, 409, "insufficient_stock",
                              "Not enough stock for some lines; nothing was reserved.", extra);
        metrics_inc(METRIC_ORDERS_REJECTED_STOCK, 1);
    } else if (r.status == 422 && strcmp(code, "product_unavailable") == 0) {
        json_object *extra = json_object_new_object();
        json_object_object_add(extra, "items",
                               reply_items ? json_object_get(reply_items) : json_object_new_array());
        json_object_object_add(extra, "errors", order_unavailable_errors(p, reply_items));
        status = order_refuse(p, 422, "product_unavailable",
                              "some products do not exist or are not for sale", extra);
    } else if (r.status == 422 && strcmp(code, "validation_failed") == 0 &&
               order_reply_error_on(r.body, "items")) {
        /* Product holds a reservation to one currency (nothing was taken);
         * the lines themselves were checked here before. */
        status = order_refuse_mixed(p);
    } else if (r.status == 409 && strcmp(code, "invalid_state") == 0) {
        status = 0;     /* this reservation id was released: start anew */
    } else {
        log_error("reserve %" PRId64 ": unexpected status %d code %s", p->rid, r.status, code);
        status = problem_internal(p->req, "unexpected reply from the product service");
    }
    client_free(&r);
    return status;
}

/* Answers a repeat of an Idempotency-Key.  Returns the status sent, or 0
 * when the key has no reply yet. */
static int order_replay(http_req *req, int64_t user_id, const char *key,
                        const unsigned char hash[32])
{
    store_idem k;
    int rc = store_get_idem(user_id, key, &k);
    if (rc < 0)
        return problem_db(req, rc);
    if (rc == 0)
        return 0;
    if (sodium_memcmp(k.hash, hash, sizeof k.hash) != 0) {
        store_idem_free(&k);
        json_object *extra = json_object_new_object(), *errs = json_object_new_array();
        json_add_error(errs, "Idempotency-Key", "already used with a different request body");
        json_object_object_add(extra, "errors", errs);
        return problem_send_extra(req, 422, "idempotency_key_reused",
                                  "This Idempotency-Key was used with another request.", extra);
    }
    if (!k.done) {
        store_idem_free(&k);
        return order_in_progress(req);
    }
    json_object *body = k.response_body ? json_tokener_parse(k.response_body) : NULL;
    int status = k.response_status;
    int64_t order_id = k.order_id;
    store_idem_free(&k);
    if (!body || !json_object_is_type(body, json_type_object)) {
        json_object_put(body);
        return problem_internal(req, "stored idempotent reply does not parse");
    }
    if (status == 201) {
        http_add_header(req, "Location", "/orders/%" PRId64, order_id);
        return http_reply_json(req, 201, body);
    }
    /* A stored refusal: {"code","detail", extra members...}. */
    json_object *v;
    char code[64] = "internal", detail[256] = "";
    if (json_object_object_get_ex(body, "code", &v))
        snprintf(code, sizeof code, "%s", json_object_get_string(v));
    if (json_object_object_get_ex(body, "detail", &v))
        snprintf(detail, sizeof detail, "%s", json_object_get_string(v));
    json_object_object_del(body, "code");
    json_object_object_del(body, "detail");
    return problem_send_extra(req, status, code, detail[0] ? detail : NULL, body);
}

/* Places the order: reserve, then write.  A spent reservation id (a keyed
 * one whose earlier attempt outlived its TTL and was given up, or whose
 * order belongs to a use of the key from before its retention window) is
 * replaced by a random one, once. */
static int order_reserve_and_write(placing *p)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int status = order_place(p);
        if (status != 0)
            return status;
        log_warn("reservation %" PRId64 " is spent; placing under a new one", p->rid);
        p->rid = order_reservation_id(p->user_id, NULL, NULL);
    }
    return problem_unavailable(p->req, "The order took too long; nothing was placed. Please retry.");
}

int order_create(http_req *req)
{
    items_line lines[ORDER_MAX_LINES];
    size_t n = 0;
    const char *key = http_header(req, "Idempotency-Key");
    if (key && !order_idem_key_valid(key))
        return problem_send(req, 400, "bad_request",
                            "Idempotency-Key must be 1 to 255 visible ASCII characters.");
    json_object *errs = json_object_new_array();
    order_parse_lines(req->json, lines, &n, errs);
    if (json_object_array_length(errs) > 0)
        return problem_invalid(req, errs);
    json_object_put(errs);

    unsigned char hash[32];
    order_request_hash(lines, n, hash);

    int64_t user_id = req->auth.user_id;
    placing p = { req, user_id, key, hash, lines, n, order_reservation_id(user_id, key, hash) };
    if (!key)
        return order_reserve_and_write(&p);
    /* Holding the key's lock for the whole request tells a duplicate that
     * this one is still running (store.h).  Busy: only a stored answer or
     * a 409 can be given.  A DB error: carry on without it; the key row
     * and the reservation id still arbitrate. */
    int locked = store_idem_lock(user_id, key);
    int status = order_replay(req, user_id, key, hash);
    if (status == 0 && locked == 0)
        status = order_in_progress(req);
    if (status == 0)
        status = order_reserve_and_write(&p);
    if (locked == 1)
        store_idem_unlock(user_id, key);
    return status;
}

/* ---------------------------------------------------------------- reading */

int order_list(http_req *req)
{
    char buf[160];
    int64_t limit = 20, before = 0, user_filter = 0;
    bool admin = req->auth.role == USER_ADMIN;

    if (http_query(req, "user_id", buf, sizeof buf) != 0 && !admin)
        return problem_send(req, 403, "forbidden", "Only admins may list other users' orders.");
    json_object *errs = json_object_new_array();
    http_query_int(req, "user_id", 1, INT64_MAX, &user_filter, errs);
    http_query_int(req, "limit", 1, 100, &limit, errs);
    char filters[32], prefix[HTTP_CURSOR_PREFIX];
    snprintf(filters, sizeof filters, "user=%" PRId64, user_filter);
    http_cursor_prefix(ORDER_CURSOR, filters, prefix);
    int has_cursor = http_query_once(req, "cursor", buf, sizeof buf, errs);
    if (has_cursor == -1 || (has_cursor == 1 && !http_cursor_decode(prefix, buf, &before))) {
        json_object_put(errs);
        return problem_send(req, 400, "invalid_cursor", "The cursor is not one this API gave out.");
    }
    if (json_object_array_length(errs) > 0)
        return problem_invalid(req, errs);
    json_object_put(errs);
    if (!admin)
        user_filter = req->auth.user_id;

    store_order *page = calloc((size_t)limit, sizeof *page);
    if (!page)
        return problem_internal(req, "out of memory");
    bool more = false;
    int n = store_list_orders(user_filter, before, (int)limit, page, &more);
    if (n < 0) {
        free(page);
        return problem_db(req, n);
    }
    json_object *items = json_object_new_array();
    for (int i = 0; i < n; i++) {
        json_object_array_add(items, order_to_json(&page[i]));
        store_order_free(&page[i]);
    }
    int64_t last = n > 0 ? page[n - 1].id : 0;
    free(page);
    return http_reply_page(req, items, more, prefix, last);
}

/* Loads the order of the {id} path parameter if the caller may see it.
 * Returns 1 (found, *o filled), or the status of the reply already sent. */
static int order_load_visible(http_req *req, store_order *o)
{
    int rc = store_get_order(req->id, o);
    if (rc < 0)
        return problem_db(req, rc);
    if (rc == 0 || !order_visible(o, &req->auth)) {
        store_order_free(o);
        return problem_send(req, 404, "not_found", "No such order.");
    }
    return 1;
}

int order_get(http_req *req)
{
    store_order o;
    int rc = order_load_visible(req, &o);
    if (rc != 1)
        return rc;
    json_object *body = order_to_json(&o);
    store_order_free(&o);
    return http_reply_json(req, 200, body);
}

/* Cancelling records the decision first (confirmed -> cancelled), then gives
 * the stock back; if product is unreachable the sweep releases it later, so
 * the client still gets its 200.  A repeat releases again if that has not
 * been recorded yet (release is idempotent), then answers the same. */
int order_cancel(http_req *req)
{
    store_order o;
    int rc = order_load_visible(req, &o);
    if (rc != 1)
        return rc;
    if (strcmp(o.status, "confirmed") == 0) {
        rc = store_cancel_order(o.id);
        store_order_free(&o);
        if (rc < 0)
            return problem_db(req, rc);
        if (rc == 1)                          /* not when a concurrent cancel won */
            metrics_inc(METRIC_ORDERS_CANCELLED, 1);
        rc = store_get_order(req->id, &o);   /* ours or a concurrent cancel's */
        if (rc <= 0)
            return rc < 0 ? problem_db(req, rc) : problem_internal(req, "order vanished");
    }
    if (strcmp(o.stock_state, "released") != 0 && reservation_release(o.id, o.reservation_id))
        snprintf(o.stock_state, sizeof o.stock_state, "released");
    json_object *body = order_to_json(&o);
    store_order_free(&o);
    return http_reply_json(req, 200, body);
}
