/* test_product_helpers.c: the product service's pure pieces (list cursors,
 * ETag matching, list visibility planning, sku/currency rules, the search words,
 * time formatting) and the handler paths that answer before any database
 * access (validation 422s, bad cursor 400). */
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include "cunit_main.h"

#include "db.h"
#include "json.h"
#include "product/handlers.h"

static void test_cursor(void)
{
    char buf[64], prefix[HTTP_CURSOR_PREFIX], other[HTTP_CURSOR_PREFIX];
    int64_t id = 0;
    int64_t ids[] = {1, 9, 10, 123456789, 999999999999999999LL};
    http_cursor_prefix(PRODUCT_CURSOR, "seller=0;status=;q=", prefix);
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        http_cursor_encode(prefix, ids[i], buf, sizeof buf);
        CU_ASSERT_TRUE(http_cursor_decode(prefix, buf, &id));
        CU_ASSERT_EQUAL(id, ids[i]);
    }
    /* The list's name, a hash of its filters, the id: the same filters
     * give the same prefix, others another, and a cursor goes back only
     * to the filters that gave it out. */
    CU_ASSERT_EQUAL(strlen(prefix), 10);
    CU_ASSERT_EQUAL(prefix[0], 'p');
    http_cursor_prefix(PRODUCT_CURSOR, "seller=0;status=;q=", other);
    CU_ASSERT_STRING_EQUAL(prefix, other);
    http_cursor_prefix(PRODUCT_CURSOR, "seller=0;status=draft;q=", other);
    CU_ASSERT_STRING_NOT_EQUAL(prefix, other);
    http_cursor_encode(prefix, 42, buf, sizeof buf);
    CU_ASSERT_FALSE(http_cursor_decode(other, buf, &id));
    CU_ASSERT_FALSE(http_cursor_decode(prefix, "NDI", &id));             /* "42" bare */
    CU_ASSERT_FALSE(http_cursor_decode(prefix, "", &id));
    CU_ASSERT_FALSE(http_cursor_decode("", "NDI=", &id));                /* padding */
    CU_ASSERT_FALSE(http_cursor_decode("", "NDJ", &id));                 /* non-canonical bits */
    CU_ASSERT_FALSE(http_cursor_decode(prefix, "!!!", &id));
    CU_ASSERT_FALSE(http_cursor_decode("", "YWJj", &id));                /* "abc" */
    CU_ASSERT_FALSE(http_cursor_decode("", "MDQy", &id));                /* "042" */
    CU_ASSERT_FALSE(http_cursor_decode("", "LTE", &id));                 /* "-1" */
    CU_ASSERT_FALSE(http_cursor_decode("", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA", &id));  /* 20 digits */
}

static void test_etag(void)
{
    CU_ASSERT_TRUE(product_etag_matches("\"3\"", 3, false));
    CU_ASSERT_FALSE(product_etag_matches("\"3\"", 4, false));
    CU_ASSERT_FALSE(product_etag_matches("\"33\"", 3, false));
    CU_ASSERT_TRUE(product_etag_matches("*", 7, false));
    CU_ASSERT_TRUE(product_etag_matches("\"1\", \"2\",\"7\"", 7, false));
    CU_ASSERT_FALSE(product_etag_matches("W/\"7\"", 7, false));  /* If-Match: strong */
    CU_ASSERT_TRUE(product_etag_matches("W/\"7\"", 7, true));    /* If-None-Match: weak */
    CU_ASSERT_TRUE(product_etag_matches("\"1\", W/\"7\"", 7, true));
    CU_ASSERT_FALSE(product_etag_matches("7", 7, true));         /* unquoted: malformed */
    CU_ASSERT_FALSE(product_etag_matches("\"7\"x", 7, true));     /* junk after the tag */
    CU_ASSERT_FALSE(product_etag_matches("\"7\";x", 7, false));
    CU_ASSERT_FALSE(product_etag_matches("*x", 7, false));
    CU_ASSERT_TRUE(product_etag_matches(" \"7\" ,\t\"8\" ", 8, false));  /* whitespace is fine */
    CU_ASSERT_FALSE(product_etag_matches("\"7", 7, true));
    CU_ASSERT_FALSE(product_etag_matches("", 7, true));
    CU_ASSERT_FALSE(product_etag_matches(NULL, 7, true));
}

static void test_plan(void)
{
    product_query q = {0};
    CU_ASSERT_TRUE(product_plan_list(USER_ANON, 0, &q));
    CU_ASSERT_EQUAL(q.vis, VIS_ACTIVE);

    q = (product_query){.status = "draft"};
    CU_ASSERT_FALSE(product_plan_list(USER_CUSTOMER, 5, &q));

    q = (product_query){.status = "active"};
    CU_ASSERT_TRUE(product_plan_list(USER_CUSTOMER, 5, &q));
    CU_ASSERT_EQUAL(q.vis, VIS_ACTIVE);
    CU_ASSERT_PTR_NULL(q.status);

    q = (product_query){0};
    CU_ASSERT_TRUE(product_plan_list(USER_SELLER, 5, &q));
    CU_ASSERT_EQUAL(q.vis, VIS_OWN);
    CU_ASSERT_EQUAL(q.viewer_id, 5);

    q = (product_query){.status = "draft"};
    CU_ASSERT_TRUE(product_plan_list(USER_SELLER, 5, &q));
    CU_ASSERT_EQUAL(q.vis, VIS_ALL);
    CU_ASSERT_EQUAL(q.seller_id, 5);
    CU_ASSERT_STRING_EQUAL(q.status, "draft");

    q = (product_query){.status = "archived", .seller_id = 6};
    CU_ASSERT_FALSE(product_plan_list(USER_SELLER, 5, &q));

    q = (product_query){.seller_id = 6};
    CU_ASSERT_TRUE(product_plan_list(USER_SELLER, 5, &q));
    CU_ASSERT_EQUAL(q.vis, VIS_ACTIVE);

    q = (product_query){.seller_id = 5};
    CU_ASSERT_TRUE(product_plan_list(USER_SELLER, 5, &q));
    CU_ASSERT_EQUAL(q.vis, VIS_ALL);

    q = (product_query){.status = "archived", .seller_id = 9};
    CU_ASSERT_TRUE(product_plan_list(USER_ADMIN, 1, &q));
    CU_ASSERT_EQUAL(q.vis, VIS_ALL);
    CU_ASSERT_EQUAL(q.seller_id, 9);
}

static void test_rules(void)
{
    CU_ASSERT_TRUE(product_sku_valid("A-b_c.9"));
    CU_ASSERT_FALSE(product_sku_valid(""));
    CU_ASSERT_FALSE(product_sku_valid("a b"));
    CU_ASSERT_FALSE(product_sku_valid("é"));
    char sku[66];
    memset(sku, 'x', 65);
    sku[65] = '\0';
    CU_ASSERT_FALSE(product_sku_valid(sku));
    sku[64] = '\0';
    CU_ASSERT_TRUE(product_sku_valid(sku));
    CU_ASSERT_TRUE(product_currency_valid("EUR"));
    CU_ASSERT_FALSE(product_currency_valid("eur"));
    CU_ASSERT_FALSE(product_currency_valid("EURO"));
    CU_ASSERT_FALSE(product_currency_valid("E1R"));
    /* ISO 4217's codes, not any three capitals. */
    CU_ASSERT_TRUE(product_currency_valid("AED"));
    CU_ASSERT_TRUE(product_currency_valid("JPY"));
    CU_ASSERT_TRUE(product_currency_valid("ZWL"));
    CU_ASSERT_FALSE(product_currency_valid("ZZZ"));
    CU_ASSERT_FALSE(product_currency_valid("ABC"));
    CU_ASSERT_FALSE(product_currency_valid("AAA"));
    CU_ASSERT_FALSE(product_currency_valid(""));
}

static void test_search_query_and_time(void)
{
    char b[128];
    /* every operator character separates words; each word is a required prefix */
    CU_ASSERT_EQUAL(store_search_query("+Blue -mug* \"(x)\" <a> ~cup@3", b, sizeof b), 3);
    CU_ASSERT_STRING_EQUAL(b, "+Blue* +mug* +cup*");
    CU_ASSERT_EQUAL(store_search_query("a_b tv \xc3\xa9t\xc3\xa9", b, sizeof b), 2);
    CU_ASSERT_STRING_EQUAL(b, "+a_b* +\xc3\xa9t\xc3\xa9*");     /* "été": 3 characters */
    CU_ASSERT_EQUAL(store_search_query("tv \xc3\xa9t", b, sizeof b), 0);  /* "ét": 2 */
    CU_ASSERT_STRING_EQUAL(b, "");
    CU_ASSERT_EQUAL(store_search_query("%% !! ** ", NULL, 0), 0);
    CU_ASSERT_EQUAL(store_search_query("100% cotton", NULL, 0), 2);
    char lng[STORE_SEARCH_MAX_WORD + 8];
    memset(lng, 'x', STORE_SEARCH_MAX_WORD);
    strcpy(lng + STORE_SEARCH_MAX_WORD, " mug");
    CU_ASSERT_EQUAL(store_search_query(lng, NULL, 0), 2);       /* 84: still indexed */
    memset(lng, 'x', STORE_SEARCH_MAX_WORD + 1);
    strcpy(lng + STORE_SEARCH_MAX_WORD + 1, " mu");
    CU_ASSERT_EQUAL(store_search_query(lng, NULL, 0), -1);      /* 85: matches nothing */
    char t[32];
    db_time_rfc3339("2026-11-24 19:30:00.123", t, sizeof t);
    CU_ASSERT_STRING_EQUAL(t, "2026-11-24T19:30:00.123Z");
    db_time_rfc3339(NULL, t, sizeof t);
    CU_ASSERT_STRING_EQUAL(t, "");
    /* The list statement always binds the same six parameters. */
    const char *sql = store_list_sql(VIS_OWN, true, false, true);
    CU_ASSERT_PTR_EQUAL(sql, store_list_sql(VIS_OWN, true, false, true));
    CU_ASSERT_PTR_NOT_NULL(strstr(sql, "MATCH(name) AGAINST(? IN BOOLEAN MODE)"));
    size_t marks = 0;
    for (const char *c = sql; *c; c++)
        marks += *c == '?';
    CU_ASSERT_EQUAL(marks, 6);
    marks = 0;
    for (const char *c = store_list_own_sql(); *c; c++)
        marks += *c == '?';
    CU_ASSERT_EQUAL(marks, 9);
}

/* ---- handler paths that never reach the database */

static void req_init(http_req *r, const char *method, const char *query, const char *body)
{
    memset(r, 0, sizeof *r);
    r->method = method;
    r->path = strdup("/products");
    r->query = query;
    strcpy(r->request_id, "test-product-1");
    r->auth.role = USER_SELLER;
    r->auth.user_id = 7;
    if (body)
        r->json = json_parse_strict(body, strlen(body), NULL);
}

/* Frees r and returns the sent body parsed (caller puts it). */
static json_object *req_done(http_req *r)
{
    json_object *o = r->sent ? json_parse_strict(r->sent, strlen(r->sent), NULL) : NULL;
    free(r->path);
    free(r->headers);
    free(r->sent);
    json_object_put(r->json);
    return o;
}

/* True when the problem body o names every field in `fields`. */
static bool names_fields(json_object *o, const char *const fields[])
{
    json_object *errs = NULL;
    if (!o || !json_object_object_get_ex(o, "errors", &errs))
        return false;
    for (size_t i = 0; fields[i]; i++) {
        bool found = false;
        for (size_t k = 0; k < json_object_array_length(errs); k++) {
            json_object *f = NULL;
            json_object_object_get_ex(json_object_array_get_idx(errs, k), "field", &f);
            found |= strcmp(json_object_get_string(f), fields[i]) == 0;
        }
        if (!found)
            return false;
    }
    return true;
}

static void test_create_validation(void)
{
    http_req r;
    req_init(&r, "POST", "",
             "{\"sku\":\"bad sku\",\"name\":\"\",\"price_cents\":1.5,\"currency\":\"eur\","
             "\"stock\":-1,\"status\":\"archived\",\"color\":\"red\",\"description\":7}");
    CU_ASSERT_EQUAL(product_create(&r), 422);
    json_object *o = req_done(&r);
    static const char *const bad[] = {"sku", "name", "price_cents", "currency", "stock",
                                      "status", "color", "description", NULL};
    CU_ASSERT_TRUE(names_fields(o, bad));
    json_object_put(o);

    req_init(&r, "POST", "", "{\"name\":\"x\",\"currency\":\"EUR\"}");
    CU_ASSERT_EQUAL(product_create(&r), 422);
    o = req_done(&r);
    static const char *const missing[] = {"sku", "price_cents", NULL};
    CU_ASSERT_TRUE(names_fields(o, missing));
    json_object_put(o);
}

static void test_edit_validation(void)
{
    http_req r;
    req_init(&r, "PATCH", "", "{\"name\":null,\"sku\":\"x\",\"stock\":3,\"seller_id\":1}");
    r.id = 1;
    CU_ASSERT_EQUAL(product_patch(&r), 422);
    json_object *o = req_done(&r);
    static const char *const bad[] = {"name", "sku", "stock", "seller_id", NULL};
    CU_ASSERT_TRUE(names_fields(o, bad));
    json_object_put(o);

    req_init(&r, "PUT", "", "{\"name\":\"x\"}");
    r.id = 1;
    CU_ASSERT_EQUAL(product_put(&r), 422);
    o = req_done(&r);
    static const char *const required[] = {"price_cents", "currency", "status", NULL};
    CU_ASSERT_TRUE(names_fields(o, required));
    json_object_put(o);

    req_init(&r, "POST", "", "{\"delta\":0}");
    r.id = 1;
    CU_ASSERT_EQUAL(product_stock(&r), 422);
    json_object_put(req_done(&r));
    req_init(&r, "POST", "", "{\"delta\":\"1\"}");
    r.id = 1;
    CU_ASSERT_EQUAL(product_stock(&r), 422);
    json_object_put(req_done(&r));
}

static void test_list_params(void)
{
    const char *bad[] = {"limit=0", "limit=101", "limit=abc", "limit=", "limit=-1",
                         "limit=1.5", "status=gone", "seller_id=0", "seller_id=x",
                         "q=tv", "q=%25%25%25", "q=a+b+c"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_req r;
        req_init(&r, "GET", bad[i], NULL);
        CU_ASSERT_EQUAL(product_list(&r), 422);
        json_object_put(req_done(&r));
    }
    http_req r;
    req_init(&r, "GET", "limit=5&cursor=not-a-cursor", NULL);
    CU_ASSERT_EQUAL(product_list(&r), 400);
    json_object *o = req_done(&r), *code = NULL;
    json_object_object_get_ex(o, "code", &code);
    CU_ASSERT_STRING_EQUAL(json_object_get_string(code), "invalid_cursor");
    json_object_put(o);
}

static void test_reserve_validation(void)
{
    http_req r;
    req_init(&r, "POST", "",
             "{\"order_id\":0,\"items\":[{\"product_id\":1,\"quantity\":0},"
             "{\"product_id\":1,\"quantity\":1,\"x\":1},5]}");
    CU_ASSERT_EQUAL(product_reserve(&r), 422);
    json_object *o = req_done(&r);
    static const char *const bad[] = {"order_id", "items[0].quantity", "items[1].product_id",
                                      "items[1].x", "items[2]", NULL};
    CU_ASSERT_TRUE(names_fields(o, bad));
    json_object_put(o);

    req_init(&r, "POST", "", "{\"order_id\":1,\"items\":[]}");
    CU_ASSERT_EQUAL(product_reserve(&r), 422);
    json_object_put(req_done(&r));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("product helpers", NULL, NULL);
    CU_add_test(s, "cursor encode/decode", test_cursor);
    CU_add_test(s, "etag matching", test_etag);
    CU_add_test(s, "list visibility plan", test_plan);
    CU_add_test(s, "sku and currency rules", test_rules);
    CU_add_test(s, "search words, time, list sql", test_search_query_and_time);
    CU_add_test(s, "create validation", test_create_validation);
    CU_add_test(s, "edit validation", test_edit_validation);
    CU_add_test(s, "list parameters", test_list_params);
    CU_add_test(s, "reserve validation", test_reserve_validation);
    return cunit_run_all();
}
