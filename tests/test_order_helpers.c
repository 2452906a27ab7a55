/* test_order_helpers.c: the order service's pure pieces (line validation,
 * Idempotency-Key syntax, the canonical request hash, list cursors) and the
 * handler paths that answer before any database or product call. */
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include "cunit_main.h"

#include "json.h"
#include "order/order.h"

/* Validates body; returns the error fields joined by spaces (static). */
static const char *parse_errors(const char *body, size_t *n, items_line *lines)
{
    static char out[512];
    json_object *j = json_parse_strict(body, strlen(body), NULL);
    json_object *errs = json_object_new_array();
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    order_parse_lines(j, lines, n, errs);
    out[0] = '\0';
    for (size_t i = 0; i < json_object_array_length(errs); i++) {
        json_object *f = NULL;
        json_object_object_get_ex(json_object_array_get_idx(errs, i), "field", &f);
        if (i)
            strcat(out, " ");
        strncat(out, json_object_get_string(f), sizeof out - strlen(out) - 2);
    }
    json_object_put(errs);
    json_object_put(j);
    return out;
}

static void test_parse_lines(void)
{
    items_line lines[ORDER_MAX_LINES];
    size_t n = 0;
    CU_ASSERT_STRING_EQUAL(parse_errors("{\"items\":[{\"product_id\":3,\"quantity\":2},"
                                        "{\"quantity\":1000,\"product_id\":1}]}", &n, lines), "");
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(lines[0].product_id, 3);
    CU_ASSERT_EQUAL(lines[1].quantity, 1000);

    CU_ASSERT_STRING_EQUAL(parse_errors("{}", &n, lines), "items");
    CU_ASSERT_STRING_EQUAL(parse_errors("{\"items\":null}", &n, lines), "items");
    CU_ASSERT_STRING_EQUAL(parse_errors("{\"items\":[]}", &n, lines), "items");
    CU_ASSERT_STRING_EQUAL(parse_errors("{\"items\":{}}", &n, lines), "items");
    CU_ASSERT_STRING_EQUAL(parse_errors("{\"items\":[{\"product_id\":1,\"quantity\":1}],\"x\":1}",
                                        &n, lines), "x");
    CU_ASSERT_STRING_EQUAL(parse_errors("{\"items\":[{\"product_id\":1,\"quantity\":1},"
                                        "{\"product_id\":2,\"quantity\":0},"
                                        "{\"product_id\":1.5,\"quantity\":\"1\"},"
                                        "{\"product_id\":1,\"quantity\":1,\"y\":2},"
                                        "{\"product_id\":2,\"quantity\":1}, 5, true]}", &n, lines),
                           "items[1].quantity items[2].product_id items[2].quantity "
                           "items[3].y items[3].product_id items[4].product_id items[5] items[6]");

    char big[4096] = "{\"items\":[";
    for (int i = 1; i <= 51; i++) {
        char line[64];
        snprintf(line, sizeof line, "%s{\"product_id\":%d,\"quantity\":1}", i > 1 ? "," : "", i);
        strcat(big, line);
    }
    strcat(big, "]}");
    CU_ASSERT_STRING_EQUAL(parse_errors(big, &n, lines), "items");
}

static void test_idem_key(void)
{
    char k255[256], k256[257];
    memset(k255, 'k', 255);
    k255[255] = '\0';
    memset(k256, 'k', 256);
    k256[256] = '\0';
    CU_ASSERT_TRUE(order_idem_key_valid("a"));
    CU_ASSERT_TRUE(order_idem_key_valid("!~{}-_.:"));
    CU_ASSERT_TRUE(order_idem_key_valid(k255));
    CU_ASSERT_FALSE(order_idem_key_valid(k256));
    CU_ASSERT_FALSE(order_idem_key_valid(""));
    CU_ASSERT_FALSE(order_idem_key_valid("a b"));
    CU_ASSERT_FALSE(order_idem_key_valid("tab\there"));
    CU_ASSERT_FALSE(order_idem_key_valid("caf\xc3\xa9"));
}

static void test_request_hash(void)
{
    items_line a[] = { {1, 2}, {5, 1} }, b[] = { {5, 1}, {1, 2} }, c[] = { {1, 2}, {5, 2} },
               d[] = { {12, 1} }, e[] = { {1, 21} };
    unsigned char ha[32], hb[32], hc[32], hd[32], he[32];
    order_request_hash(a, 2, ha);
    order_request_hash(b, 2, hb);
    order_request_hash(c, 2, hc);
    order_request_hash(d, 1, hd);
    order_request_hash(e, 1, he);
    CU_ASSERT_EQUAL(memcmp(ha, hb, 32), 0);    /* line order does not matter */
    CU_ASSERT_NOT_EQUAL(memcmp(ha, hc, 32), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(hd, he, 32), 0);  /* "12x1" vs "1x21": separated */
}

/* A key's reservation id is the same on every call with the same lines (a
 * retry lands on the same reservation), differs per user, key and lines, and
 * fits a {id} path segment; without a key each call draws a new one. */
static void test_reservation_id(void)
{
    items_line one[] = { { 5, 1 } }, two[] = { { 5, 2 } };
    unsigned char h1[32], h2[32];
    order_request_hash(one, 1, h1);
    order_request_hash(two, 1, h2);
    int64_t a = order_reservation_id(7, "key-1", h1);
    CU_ASSERT_EQUAL(a, order_reservation_id(7, "key-1", h1));
    CU_ASSERT_NOT_EQUAL(a, order_reservation_id(8, "key-1", h1));
    CU_ASSERT_NOT_EQUAL(a, order_reservation_id(7, "key-2", h1));
    CU_ASSERT_NOT_EQUAL(a, order_reservation_id(7, "key-1", h2));   /* other lines */
    int64_t seen[64];
    for (int i = 0; i < 64; i++) {
        seen[i] = order_reservation_id(7, NULL, NULL);
        CU_ASSERT(seen[i] >= 1 && seen[i] <= 999999999999999999LL);
        for (int j = 0; j < i; j++)
            CU_ASSERT_NOT_EQUAL(seen[i], seen[j]);
    }
    CU_ASSERT(a >= 1 && a <= 999999999999999999LL);
}

static void test_cursor(void)
{
    char buf[64];
    int64_t id = 0;
    int64_t ids[] = { 1, 10, 123456789, 999999999999999999LL };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        http_cursor_encode(ORDER_CURSOR, ids[i], buf, sizeof buf);
        CU_ASSERT_TRUE(http_cursor_decode(ORDER_CURSOR, buf, &id));
        CU_ASSERT_EQUAL(id, ids[i]);
    }
    CU_ASSERT_FALSE(http_cursor_decode(ORDER_CURSOR, "", &id));
    CU_ASSERT_FALSE(http_cursor_decode(ORDER_CURSOR, "!!!", &id));
    CU_ASSERT_FALSE(http_cursor_decode(ORDER_CURSOR, "MTIz", &id));      /* "123": no prefix */
    CU_ASSERT_FALSE(http_cursor_decode(ORDER_CURSOR, "bzE6MA", &id));    /* "o1:0" */
    CU_ASSERT_FALSE(http_cursor_decode(ORDER_CURSOR, "bzE6LTU", &id));   /* "o1:-5" */
    CU_ASSERT_FALSE(http_cursor_decode(ORDER_CURSOR, "bzE6MDU", &id));   /* "o1:05" */
    CU_ASSERT_FALSE(http_cursor_decode(ORDER_CURSOR, "bzE6MTJh", &id));  /* "o1:12a" */
    http_cursor_encode(ORDER_CURSOR, 42, buf, sizeof buf);
    strcat(buf, "=");
    CU_ASSERT_FALSE(http_cursor_decode(ORDER_CURSOR, buf, &id));
}

/* ---- handler paths that answer before any database access */

static void req_init(http_req *r, const char *method, const char *query, const char *body,
                     user_role role)
{
    memset(r, 0, sizeof *r);
    r->method = method;
    r->path = strdup("/orders");
    r->query = query;
    strcpy(r->request_id, "test-order-1");
    r->auth.role = role;
    r->auth.user_id = 7;
    if (body)
        r->json = json_parse_strict(body, strlen(body), NULL);
}

/* Frees r; returns the "code" of the problem sent, or "" (static). */
static const char *req_done(http_req *r)
{
    static char code[64];
    code[0] = '\0';
    json_object *o = r->sent ? json_parse_strict(r->sent, strlen(r->sent), NULL) : NULL, *c;
    if (o && json_object_object_get_ex(o, "code", &c))
        snprintf(code, sizeof code, "%s", json_object_get_string(c));
    json_object_put(o);
    free(r->path);
    free(r->headers);
    free(r->sent);
    json_object_put(r->json);
    return code;
}

static void test_handler_early_answers(void)
{
    http_req r;
    req_init(&r, "POST", "", "{\"items\":[{\"product_id\":1,\"quantity\":0}]}", USER_CUSTOMER);
    CU_ASSERT_EQUAL(order_create(&r), 422);
    CU_ASSERT_STRING_EQUAL(req_done(&r), "validation_failed");

    /* A bad Idempotency-Key is refused before the body is looked at. */
    char *env[] = { "HTTP_IDEMPOTENCY_KEY=a b", NULL };
    req_init(&r, "POST", "", "{\"items\":[{\"product_id\":1,\"quantity\":0}]}", USER_CUSTOMER);
    r.env = env;
    CU_ASSERT_EQUAL(order_create(&r), 400);
    CU_ASSERT_STRING_EQUAL(req_done(&r), "bad_request");

    req_init(&r, "GET", "cursor=", NULL, USER_CUSTOMER);           /* empty: no cursor given out */
    CU_ASSERT_EQUAL(order_list(&r), 400);
    CU_ASSERT_STRING_EQUAL(req_done(&r), "invalid_cursor");

    req_init(&r, "GET", "user_id=3", NULL, USER_CUSTOMER);
    CU_ASSERT_EQUAL(order_list(&r), 403);
    CU_ASSERT_STRING_EQUAL(req_done(&r), "forbidden");

    req_init(&r, "GET", "cursor=nope!", NULL, USER_CUSTOMER);
    CU_ASSERT_EQUAL(order_list(&r), 400);
    CU_ASSERT_STRING_EQUAL(req_done(&r), "invalid_cursor");

    req_init(&r, "GET", "limit=0", NULL, USER_CUSTOMER);
    CU_ASSERT_EQUAL(order_list(&r), 422);
    CU_ASSERT_STRING_EQUAL(req_done(&r), "validation_failed");

    req_init(&r, "GET", "limit=101&user_id=x", NULL, USER_ADMIN);
    CU_ASSERT_EQUAL(order_list(&r), 422);
    CU_ASSERT_STRING_EQUAL(req_done(&r), "validation_failed");
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("order helpers", NULL, NULL);
    CU_add_test(s, "line validation", test_parse_lines);
    CU_add_test(s, "idempotency key syntax", test_idem_key);
    CU_add_test(s, "canonical request hash", test_request_hash);
    CU_add_test(s, "cursor encode/decode", test_cursor);
    CU_add_test(s, "reservation ids", test_reservation_id);
    CU_add_test(s, "handler early answers", test_handler_early_answers);
    return cunit_run_all();
}
