/* handlers.c: the product service's endpoints.  Each handler parses and
 * validates its input, decides who may do what, calls the store and answers;
 * the policy lives here, the SQL in store.c.
 *
 * Who sees what: active products are public; drafts and archived ones are
 * visible only to their seller (role seller) and to admins; someone else's
 * invisible product is 404 exactly like a missing one, someone else's visible
 * one is 403 for writes.  For writes the store runs the policy (write_guard)
 * on the row it has locked, so ownership and If-Match are judged against the
 * same version the write then replaces. */
#include "handlers.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "config.h"
#include "db.h"
#include "items.h"
#include "json.h"
#include "log.h"
#include "problem.h"

#define PRICE_MAX 100000000000LL      /* 10^11 minor units */
#define STOCK_MAX STORE_STOCK_MAX     /* 10^9 */
#define RESERVE_LINES_MAX 100
#define RESERVE_QTY_MAX 1000000
#define RESERVE_BATCH_MAX 500           /* ids per confirm / expired call */
#define RESERVE_ID_MAX 999999999999999999LL   /* what a {id} path segment holds */
#define RESERVATION_TTL_DEFAULT 60      /* seconds a reservation is held */

/* Guard results: what a write's policy check found on the locked row. */
enum {
    GUARD_NOT_FOUND = STORE_GUARD_MIN - 1,
    GUARD_FORBIDDEN = STORE_GUARD_MIN - 2,
    GUARD_PRECONDITION_REQUIRED = STORE_GUARD_MIN - 3,
    GUARD_PRECONDITION_FAILED = STORE_GUARD_MIN - 4,
};

/* ------------------------------------------------------------ pure helpers */


/* Where the list goes on after an entity-tag or `*` that ended just before
 * p: past optional whitespace, at a comma or the end; NULL when something
 * else follows (a malformed header). */
static const char *etag_list_next(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == ',' || *p == '\0' ? p : NULL;
}

bool product_etag_matches(const char *h, int64_t version, bool weak)
{
    char want[24];
    int wl = snprintf(want, sizeof want, "%" PRId64, version);
    if (!h)
        return false;
    for (;;) {
        while (*h == ' ' || *h == '\t' || *h == ',')
            h++;
        if (*h == '\0')
            return false;
        if (*h == '*')
            return etag_list_next(h + 1) != NULL;
        bool is_weak = strncmp(h, "W/", 2) == 0;
        if (is_weak)
            h += 2;
        if (*h != '"')
            return false;                       /* malformed: matches nothing */
        const char *close = strchr(h + 1, '"');
        if (!close)
            return false;
        size_t len = (size_t)(close - h - 1);
        const char *next = etag_list_next(close + 1);
        if (!next)
            return false;                       /* "3"x: malformed, matches nothing */
        if ((weak || !is_weak) && len == (size_t)wl && memcmp(h + 1, want, len) == 0)
            return true;
        h = next;
    }
}

bool product_plan_list(user_role role, int64_t me, product_query *q)
{
    bool want_active = q->status && strcmp(q->status, "active") == 0;
    q->viewer_id = 0;
    if (role == USER_ADMIN) {
        q->vis = VIS_ALL;
        return true;
    }
    if (role != USER_SELLER || want_active || (q->seller_id && q->seller_id != me)) {
        /* Only active rows can show: someone else's, or an explicit filter. */
        q->vis = VIS_ACTIVE;
        if (q->status && !want_active)
            return false;
        q->status = NULL;
        return true;
    }
    if (q->status || q->seller_id == me) {
        q->vis = VIS_ALL;      /* the seller's own rows, any status */
        q->seller_id = me;
        return true;
    }
    q->vis = VIS_OWN;
    q->viewer_id = me;
    return true;
}

bool product_sku_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > PRODUCT_SKU_MAX)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
              (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-'))
            return false;
    return true;
}

/* ISO 4217's alphabetic codes in use (list one, 2025: currencies, funds,
 * metals, and X codes such as XXX), sorted for bsearch. */
static const char iso4217[][4] = {
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP",
    "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP",
    "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS",
    "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW",
    "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD",
    "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN",
    "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR",
    "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL",
    "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY",
    "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES",
    "VND", "VUV", "WST", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR",
    "XOF", "XPD", "XPF", "XPT", "XSU", "XTS", "XUA", "XXX", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
};

static int iso4217_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

bool product_currency_valid(const char *s)
{
    return strlen(s) == 3 && bsearch(s, iso4217, sizeof iso4217 / sizeof iso4217[0],
                                     sizeof iso4217[0], iso4217_cmp) != NULL;
}

/* ------------------------------------------------------------ policy */

static bool is_owner(const http_req *req, const product *p)
{
    return req->auth.role == USER_SELLER && p->seller_id == req->auth.user_id;
}

static bool can_see(const http_req *req, const product *p)
{
    return strcmp(p->status, "active") == 0 || req->auth.role == USER_ADMIN || is_owner(req, p);
}

static bool can_edit(const http_req *req, const product *p)
{
    return req->auth.role == USER_ADMIN || is_owner(req, p);
}

struct write_ctx {
    const http_req *req;
    bool if_match_required;
};

/* store_guard for every product write: visibility (404), ownership (403),
 * then the If-Match precondition (428/412) against the locked version. */
static int write_guard(const product *cur, void *arg)
{
    const struct write_ctx *w = arg;
    if (!can_see(w->req, cur))
        return GUARD_NOT_FOUND;
    if (!can_edit(w->req, cur))
        return GUARD_FORBIDDEN;
    const char *if_match = http_header(w->req, "If-Match");
    if (!if_match && w->if_match_required)
        return GUARD_PRECONDITION_REQUIRED;
    if (if_match && !product_etag_matches(if_match, cur->version, false))
        return GUARD_PRECONDITION_FAILED;
    /* Then If-None-Match (RFC 9110 13.2.2): a write that names the current
     * version, or "*" (any), there is not to be done. */
    if (product_etag_matches(http_header(w->req, "If-None-Match"), cur->version, true))
        return GUARD_PRECONDITION_FAILED;
    return 0;
}

/* Answers a store/guard failure code. */
static int reply_write_error(http_req *req, int rc)
{
    switch (rc) {
    case STORE_NOT_FOUND:
    case GUARD_NOT_FOUND:
        return problem_send(req, 404, "not_found", "No such product.");
    case GUARD_FORBIDDEN:
        return problem_send(req, 403, "forbidden", "Only the product's seller or an admin may change it.");
    case GUARD_PRECONDITION_REQUIRED:
        return problem_send(req, 428, "precondition_required",
                            "Send If-Match with the product's current ETag.");
    case GUARD_PRECONDITION_FAILED:
        return problem_send(req, 412, "precondition_failed",
                            "The product has changed; fetch it again for its current ETag.");
    case STORE_UNKNOWN:
        log_warn("stock change: the commit got no answer; not applied again");
        return problem_unavailable(req, "The database connection was lost while the change was "
                                        "saved: it may have been made. Read the product (its stock "
                                        "and version) before you send it again.");
    default:
        return problem_db(req, rc);
    }
}

/* ------------------------------------------------------------ responses */

static json_object *product_json(const product *p)
{
    json_object *o = json_object_new_object();
    json_set_int(o, "id", p->id);
    json_set_str(o, "sku", p->sku);
    json_set_str(o, "name", p->name);
    json_set_str(o, "description", p->description ? p->description : "");
    json_set_int(o, "price_cents", p->price_cents);
    json_set_str(o, "currency", p->currency);
    json_set_int(o, "stock", p->stock);
    json_set_str(o, "status", p->status);
    json_set_int(o, "seller_id", p->seller_id);
    json_set_int(o, "version", p->version);
    json_set_str(o, "created_at", p->created_at);
    json_set_str(o, "updated_at", p->updated_at);
    return o;
}

static void add_etag(http_req *req, const product *p)
{
    http_add_header(req, "ETag", "\"%" PRId64 "\"", p->version);
}

/* Sends p with its ETag and frees it. */
static int reply_product(http_req *req, int status, product *p)
{
    add_etag(req, p);
    http_add_header(req, "Cache-Control", "no-store");
    int rc = http_reply_json(req, status, product_json(p));
    product_clear(p);
    return rc;
}

/* ------------------------------------------------------------ reads */

/* Only anonymous reads of public rows may be shared: the edge caches answers
 * to requests without Authorization for 5 s, so anonymous readers may see
 * data that old; anything read with a token is per-caller. */
static void add_cache_control(http_req *req, bool shared)
{
    http_add_header(req, "Cache-Control", "%s", shared ? "public, max-age=5" : "private, no-store");
}

/* Whether a read must see the latest commit, so comes from the writer: a
 * signed-in caller's (their own edits), and an anonymous one the edge sends
 * with X-Shop-Latest because a write it passed may have changed it (the
 * edge strips the header from clients).  Other anonymous reads may be a
 * moment behind, from the host's own node. */
static bool read_latest(http_req *req)
{
    return req->auth.role != USER_ANON || http_header(req, "X-Shop-Latest") != NULL;
}

int product_list(http_req *req)
{
    json_object *errs = json_object_new_array();
    product_query q = {.limit = 20};
    int64_t v = 0;
    if (http_query_int(req, "limit", 1, 100, &v, errs) == JSON_OK)
        q.limit = (int)v;
    if (http_query_int(req, "seller_id", 1, INT64_MAX, &v, errs) == JSON_OK)
        q.seller_id = v;

    static const char *const statuses[] = {"active", "draft", "archived"};
    char status[16];
    int rc = http_query_once(req, "status", status, sizeof status, errs);
    for (size_t i = 0; rc > 0 && i < 3; i++)
        if (strcmp(status, statuses[i]) == 0)
            q.status = statuses[i];
    if (rc == -1 || (rc > 0 && !q.status))
        json_add_error(errs, "status", "must be active, draft or archived");

    char text[4 * PRODUCT_NAME_MAX + 1];
    rc = http_query_once(req, "q", text, sizeof text, errs);
    long q_chars = rc > 0 ? json_utf8_len(text, strlen(text)) : 0;
    if (rc == -1 || q_chars < 0 || q_chars > PRODUCT_NAME_MAX)
        json_add_error(errs, "q", "must be valid UTF-8 of at most 200 characters");
    else if (rc > 0 && text[0] && store_search_query(text, NULL, 0) == 0)
        json_add_error(errs, "q", "must contain a word of at least 3 letters or digits");
    else if (rc > 0 && text[0])
        q.q = text;
    char cursor[64];
    int has_cursor = http_query_once(req, "cursor", cursor, sizeof cursor, errs);

    if (json_object_array_length(errs) > 0)
        return problem_invalid(req, errs);
    json_object_put(errs);

    char filters[sizeof text + 64], prefix[HTTP_CURSOR_PREFIX];
    snprintf(filters, sizeof filters, "seller=%" PRId64 ";status=%s;q=%s", q.seller_id,
             q.status ? q.status : "", q.q ? q.q : "");
    http_cursor_prefix(PRODUCT_CURSOR, filters, prefix);
    if (has_cursor < 0 || (has_cursor > 0 && !http_cursor_decode(prefix, cursor, &q.after_id)))
        return problem_send(req, 400, "invalid_cursor", "The cursor is not one this service issued.");

    product_page page = {0};
    q.latest = read_latest(req);
    if (product_plan_list(req->auth.role, req->auth.user_id, &q) &&
        (rc = store_product_list(&q, &page)) != DB_OK)
        return problem_db(req, rc);

    json_object *items = json_object_new_array();
    for (int i = 0; i < page.n; i++)
        json_object_array_add(items, product_json(&page.items[i]));
    int64_t last = page.n > 0 ? page.items[page.n - 1].id : 0;
    bool more = page.more;
    product_page_free(&page);
    add_cache_control(req, req->auth.role == USER_ANON);
    return http_reply_page(req, items, more, prefix, last);
}

int product_get(http_req *req)
{
    product p = {0};
    int rc = store_product_get(req->id, read_latest(req), &p);
    if (rc < 0)
        return problem_db(req, rc);
    http_add_header(req, "Vary", "Authorization");
    if (rc == 0 || !can_see(req, &p)) {
        product_clear(&p);
        http_add_header(req, "Cache-Control", "no-store");
        return problem_send(req, 404, "not_found", "No such product.");
    }
    const char *if_match = http_header(req, "If-Match");
    if (if_match && !product_etag_matches(if_match, p.version, false)) {
        product_clear(&p);
        http_add_header(req, "Cache-Control", "no-store");
        return reply_write_error(req, GUARD_PRECONDITION_FAILED);
    }
    add_cache_control(req, req->auth.role == USER_ANON && strcmp(p.status, "active") == 0);
    add_etag(req, &p);
    if (product_etag_matches(http_header(req, "If-None-Match"), p.version, true)) {
        product_clear(&p);
        return http_reply_empty(req, 304);
    }
    rc = http_reply_json(req, 200, product_json(&p));
    product_clear(&p);
    return rc;
}

/* ------------------------------------------------------------ writes */

static bool has_errors(json_object *errs)
{
    return json_object_array_length(errs) > 0;
}

/* Reads a string member that must also pass `valid`. */
static void get_checked_str(json_object *body, const char *key, size_t min, size_t max,
                            bool required, const char **out, bool (*valid)(const char *),
                            const char *message, json_object *errs)
{
    const char *s = NULL;
    if (json_get_str(body, key, min, max, required, &s, errs) != JSON_OK)
        return;
    if (valid && !valid(s))
        json_add_error(errs, key, message);
    else
        *out = s;
}

/* A name shows something: not only spaces or invisible characters. */
static bool name_valid(const char *s)
{
    return !json_str_blank(s);
}

static bool status_new_valid(const char *s)
{
    return strcmp(s, "active") == 0 || strcmp(s, "draft") == 0;
}

static bool status_edit_valid(const char *s)
{
    return status_new_valid(s) || strcmp(s, "archived") == 0;
}

int product_create(http_req *req)
{
    static const char *const allowed[] = {"sku", "name", "description", "price_cents",
                                          "currency", "stock", "status", NULL};
    json_object *body = req->json, *errs = json_object_new_array();
    product_fields f = {.description = "", .status = "draft", .seller_id = req->auth.user_id};
    json_check_fields(body, allowed, errs);
    get_checked_str(body, "sku", 1, PRODUCT_SKU_MAX, true, &f.sku, product_sku_valid,
                    "must be 1 to 64 characters of A-Z a-z 0-9 . _ -", errs);
    get_checked_str(body, "name", 1, PRODUCT_NAME_MAX, true, &f.name, name_valid,
                    "must not be blank", errs);
    json_get_str(body, "description", 0, PRODUCT_DESC_MAX, false, &f.description, errs);
    json_get_int(body, "price_cents", 0, PRICE_MAX, true, &f.price_cents, errs);
    get_checked_str(body, "currency", 3, 3, true, &f.currency, product_currency_valid,
                    "must be an ISO 4217 currency code (three capital letters, e.g. EUR)", errs);
    json_get_int(body, "stock", 0, STOCK_MAX, false, &f.stock, errs);
    get_checked_str(body, "status", 1, 16, false, &f.status, status_new_valid,
                    "must be active or draft", errs);
    if (has_errors(errs))
        return problem_invalid(req, errs);
    json_object_put(errs);

    product p = {0};
    int rc = store_product_create(&f, &p);
    if (rc == DB_CONFLICT)
        return problem_send(req, 409, "sku_taken", "A product with sku %s exists.", f.sku);
    if (rc != DB_OK) {
        product_clear(&p);
        return problem_db(req, rc);
    }
    http_add_header(req, "Location", "/products/%" PRId64, p.id);
    return reply_product(req, 201, &p);
}

/* Validates a PUT (replace) or PATCH (merge patch) body into *e.  Null is
 * no value of any field (422), except a PATCH's description: removal. */
static void parse_edit(json_object *body, bool put, product_edit *e, json_object *errs)
{
    static const char *const allowed[] = {"name", "description", "price_cents", "currency",
                                          "status", NULL};
    json_check_fields(body, allowed, errs);
    get_checked_str(body, "name", 1, PRODUCT_NAME_MAX, put, &e->name, name_valid,
                    "must not be blank", errs);
    if (!put && json_null_member(body, "description"))
        e->description = "";
    else if (json_get_str(body, "description", 0, PRODUCT_DESC_MAX, false, &e->description,
                          errs) == JSON_ABSENT && put)
        e->description = "";
    e->has_price = json_get_int(body, "price_cents", 0, PRICE_MAX, put, &e->price_cents,
                                errs) == JSON_OK;
    get_checked_str(body, "currency", 3, 3, put, &e->currency, product_currency_valid,
                    "must be an ISO 4217 currency code (three capital letters, e.g. EUR)", errs);
    get_checked_str(body, "status", 1, 16, put, &e->status, status_edit_valid,
                    "must be active, draft or archived", errs);
}

static int product_edit_reply(http_req *req, bool put)
{
    json_object *errs = json_object_new_array();
    product_edit e = {0};
    parse_edit(req->json, put, &e, errs);
    if (has_errors(errs))
        return problem_invalid(req, errs);
    json_object_put(errs);

    struct write_ctx w = {req, true};
    product p = {0};
    int rc = store_product_update(req->id, &e, write_guard, &w, &p);
    if (rc != DB_OK) {
        product_clear(&p);
        return reply_write_error(req, rc);
    }
    return reply_product(req, 200, &p);
}

int product_put(http_req *req)
{
    return product_edit_reply(req, true);
}

int product_patch(http_req *req)
{
    return product_edit_reply(req, false);
}

int product_delete(http_req *req)
{
    struct write_ctx w = {req, false};
    product p = {0};
    int rc = store_product_archive(req->id, write_guard, &w, &p);
    product_clear(&p);
    if (rc != DB_OK)
        return reply_write_error(req, rc);
    return http_reply_empty(req, 204);
}

int product_stock(http_req *req)
{
    static const char *const allowed[] = {"delta", NULL};
    json_object *errs = json_object_new_array();
    int64_t delta = 0;
    json_check_fields(req->json, allowed, errs);
    if (json_get_int(req->json, "delta", -STOCK_MAX, STOCK_MAX, true, &delta, errs) == JSON_OK &&
        delta == 0)
        json_add_error(errs, "delta", "must not be 0");
    if (has_errors(errs))
        return problem_invalid(req, errs);
    json_object_put(errs);

    struct write_ctx w = {req, false};
    product p = {0};
    int rc = store_product_add_stock(req->id, delta, write_guard, &w, &p);
    if (rc == STORE_INSUFFICIENT) {
        char detail[160];
        snprintf(detail, sizeof detail, "Stock is %" PRId64 "; a delta of %" PRId64
                 " would make it negative.", p.stock, delta);
        /* items, as an order's 409 has them; and the two numbers on top. */
        json_object *extra = json_object_new_object();
        json_object *items = json_object_new_array();
        json_object *it = json_object_new_object();
        json_set_int(it, "product_id", p.id);
        json_set_int(it, "requested", -delta);
        json_set_int(it, "available", p.stock);
        json_object_array_add(items, it);
        json_object_object_add(extra, "items", items);
        json_set_int(extra, "available", p.stock);
        json_set_int(extra, "requested", -delta);
        product_clear(&p);
        return problem_send_extra(req, 409, "insufficient_stock", detail, extra);
    }
    if (rc == STORE_TOO_MUCH) {
        char msg[128];
        snprintf(msg, sizeof msg, "would make the stock (%" PRId64 ") more than %lld", p.stock,
                 STOCK_MAX);
        product_clear(&p);
        errs = json_object_new_array();
        json_add_error(errs, "delta", msg);
        return problem_invalid(req, errs);
    }
    if (rc != DB_OK) {
        product_clear(&p);
        return reply_write_error(req, rc);
    }
    json_object *o = json_object_new_object();
    json_set_int(o, "id", p.id);
    json_set_int(o, "stock", p.stock);
    json_set_int(o, "version", p.version);
    add_etag(req, &p);
    product_clear(&p);
    return http_reply_json(req, 200, o);
}

/* ------------------------------------------------------------ internal: reservations */

/* Validates items[] of a reserve body (items.h) into lines (calloc'd, *n
 * entries); NULL with errors added, or NULL and no error when out of memory. */
static resv_line *parse_lines(json_object *body, int *n, json_object *errs)
{
    items_line in[RESERVE_LINES_MAX];
    size_t len = 0;
    *n = 0;
    items_parse(body, RESERVE_LINES_MAX, RESERVE_QTY_MAX, in, &len, errs);
    if (len == 0)
        return NULL;
    resv_line *lines = calloc(len, sizeof *lines);
    if (!lines)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        lines[i].product_id = in[i].product_id;
        lines[i].quantity = in[i].quantity;
    }
    *n = (int)len;
    return lines;
}

static json_object *reservation_json(const reservation *r, bool with_items)
{
    json_object *o = json_object_new_object();
    json_set_int(o, "id", r->id);
    json_set_str(o, "status", r->status);
    if (!with_items)
        return o;
    json_object *items = json_object_new_array();
    for (int i = 0; i < r->n; i++) {
        const resv_line *l = &r->lines[i];
        json_object *it = json_object_new_object();
        json_set_int(it, "product_id", l->product_id);
        json_set_str(it, "sku", l->sku);
        json_set_str(it, "name", l->name);
        json_set_int(it, "unit_price_cents", l->unit_price_cents);
        json_set_str(it, "currency", l->currency);
        json_set_int(it, "quantity", l->quantity);
        json_object_array_add(items, it);
    }
    json_object_object_add(o, "items", items);
    return o;
}

/* The 422 product_unavailable / 409 insufficient_stock answer naming the bad lines. */
static int reply_bad_lines(http_req *req, int rc, const resv_line *lines, int n)
{
    bool unavailable = rc == STORE_UNAVAILABLE;
    json_object *items = json_object_new_array(), *errs = json_object_new_array();
    for (int i = 0; i < n; i++) {
        if (!lines[i].bad)
            continue;
        json_object *it = json_object_new_object();
        json_set_int(it, "product_id", lines[i].product_id);
        if (!unavailable) {
            json_set_int(it, "requested", lines[i].quantity);
            json_set_int(it, "available", lines[i].available);
        } else {
            char field[48];
            snprintf(field, sizeof field, "items[%d].product_id", i);
            json_add_error(errs, field, "product does not exist or is not active");
        }
        json_object_array_add(items, it);
    }
    json_object *extra = json_object_new_object();
    json_object_object_add(extra, "items", items);
    if (unavailable) {
        json_object_object_add(extra, "errors", errs);
        return problem_send_extra(req, 422, "product_unavailable",
                                  "A product does not exist or is not active.", extra);
    }
    json_object_put(errs);
    return problem_send_extra(req, 409, "insufficient_stock",
                              "Not enough stock for every line; nothing was reserved.", extra);
}

/* POST /internal/reservations {id, user_id, items}: takes the stock for
 * reservation `id` (chosen by the order service) and holds it for
 * RESERVATION_TTL seconds; a repeat answers the stored reservation. */
int product_reserve(http_req *req)
{
    static const char *const allowed[] = {"id", "user_id", "items", NULL};
    json_object *errs = json_object_new_array();
    int64_t id = 0, user_id = 0;
    int n = 0;
    json_check_fields(req->json, allowed, errs);
    json_get_int(req->json, "id", 1, RESERVE_ID_MAX, true, &id, errs);
    json_get_int(req->json, "user_id", 1, INT64_MAX, true, &user_id, errs);
    resv_line *lines = parse_lines(req->json, &n, errs);
    if (has_errors(errs) || !lines) {
        free(lines);
        if (!has_errors(errs)) {
            json_object_put(errs);
            return problem_internal(req, "out of memory");
        }
        return problem_invalid(req, errs);
    }
    json_object_put(errs);

    long long ttl = config_int("RESERVATION_TTL", RESERVATION_TTL_DEFAULT);
    reservation r = {0};
    int rc = store_reserve(id, user_id, ttl < 1 ? 1 : (int)ttl, lines, n, &r);
    if (rc == STORE_UNAVAILABLE || rc == STORE_INSUFFICIENT) {
        rc = reply_bad_lines(req, rc, lines, n);
    } else if (rc == STORE_MIXED) {
        json_object *errs = json_object_new_array();
        items_mixed_currency(errs);
        rc = problem_invalid(req, errs);
    } else if (rc == STORE_INVALID_STATE) {
        rc = problem_send(req, 409, "invalid_state", "Reservation %" PRId64 " was released.", id);
    } else if (rc != DB_OK) {
        rc = problem_db(req, rc);
    } else {
        log_info("reservation %" PRId64 " %s, %d lines", id, r.status, r.n);
        rc = http_reply_json(req, 200, reservation_json(&r, true));
    }
    reservation_free(&r);
    free(lines);
    return rc;
}

static int reply_reservation_status(http_req *req, const char *status)
{
    reservation r = {.id = req->id};
    snprintf(r.status, sizeof r.status, "%s", status);
    return http_reply_json(req, 200, reservation_json(&r, false));
}

int product_reservation_get(http_req *req)
{
    char status[10];
    int rc = store_reservation_status(req->id, status, sizeof status);
    if (rc < 0)
        return problem_db(req, rc);
    if (rc == 0)
        return problem_send(req, 404, "not_found", "No such reservation.");
    return reply_reservation_status(req, status);
}

/* POST /internal/reservations/confirm {ids: [...]}: the orders of these
 * reservations stand.  Answers each one's status: confirmed, or released /
 * missing (which the caller logs: a standing order whose stock is not held). */
int product_reservations_confirm(http_req *req)
{
    static const char *const allowed[] = {"ids", NULL};
    json_object *errs = json_object_new_array(), *arr = NULL;
    json_check_fields(req->json, allowed, errs);
    size_t len = 0;
    if (!json_object_object_get_ex(req->json, "ids", &arr) ||
        !json_object_is_type(arr, json_type_array) ||
        (len = json_object_array_length(arr)) < 1 || len > RESERVE_BATCH_MAX)
        json_add_error(errs, "ids", "must be an array of 1 to 500 reservation ids");
    int64_t ids[RESERVE_BATCH_MAX];
    for (size_t i = 0; i < len && !has_errors(errs); i++) {
        json_object *v = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1)
            json_add_error(errs, "ids", "must hold positive integers");
        else
            ids[i] = json_object_get_int64(v);
    }
    if (has_errors(errs))
        return problem_invalid(req, errs);
    json_object_put(errs);

    static char status[RESERVE_BATCH_MAX][10];
    int rc = store_confirm_many(ids, (int)len, status);
    if (rc != DB_OK)
        return problem_db(req, rc);
    json_object *items = json_object_new_array();
    for (size_t i = 0; i < len; i++) {
        json_object *it = json_object_new_object();
        json_set_int(it, "id", ids[i]);
        json_set_str(it, "status", status[i]);
        json_object_array_add(items, it);
    }
    json_object *body = json_object_new_object();
    json_object_object_add(body, "items", items);
    log_info("confirmed a batch of %zu reservations", len);
    return http_reply_json(req, 200, body);
}

int product_reservation_release(http_req *req)
{
    int rc = store_release(req->id);
    if (rc != DB_OK)
        return problem_db(req, rc);
    log_info("reservation %" PRId64 " released", req->id);
    return reply_reservation_status(req, "released");
}

/* GET /internal/reservations/expired?limit=N: held reservations past their
 * TTL, for the order service to settle (it alone knows whether their order
 * was written). */
int product_reservations_expired(http_req *req)
{
    int64_t limit = 100;
    json_object *errs = json_object_new_array();
    if (http_query_int(req, "limit", 1, RESERVE_BATCH_MAX, &limit, errs) == JSON_BAD)
        return problem_invalid(req, errs);
    json_object_put(errs);
    static int64_t ids[RESERVE_BATCH_MAX], users[RESERVE_BATCH_MAX];
    int n = store_expired(ids, users, (int)limit);
    if (n < 0)
        return problem_db(req, n);
    json_object *items = json_object_new_array();
    for (int i = 0; i < n; i++) {
        json_object *it = json_object_new_object();
        json_set_int(it, "id", ids[i]);
        json_set_int(it, "user_id", users[i]);
        json_object_array_add(items, it);
    }
    json_object *body = json_object_new_object();
    json_object_object_add(body, "items", items);
    return http_reply_json(req, 200, body);
}
