/* test_http.c: request accessors, reply helpers and route walk (404, 405 +
 * Allow, 401, body errors) on requests built in memory, as the FastCGI loop
 * would build them. */
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include <sodium.h>
#include "cunit_main.h"
#include "json.h"
#include "problem.h"
#include "route.h"

static json_object *sent_json(const http_req *r)
{
    return r->sent ? json_parse_strict(r->sent, strlen(r->sent), NULL) : NULL;
}

static const char *sent_code(const http_req *r, char *buf, size_t n)
{
    json_object *o = sent_json(r), *c;
    buf[0] = '\0';
    if (o && json_object_object_get_ex(o, "code", &c))
        snprintf(buf, n, "%s", json_object_get_string(c));
    json_object_put(o);
    return buf;
}

static void req_init(http_req *r, const char *method, const char *path, char **env)
{
    memset(r, 0, sizeof *r);
    r->method = method;
    r->path = strdup(path);
    r->query = "";
    r->env = env;
    strcpy(r->request_id, "test-req-1");
}

static void req_done(http_req *r)
{
    free(r->path);
    free(r->headers);
    free(r->sent);
    json_object_put(r->json);
}

static void test_query(void)
{
    http_req r;
    req_init(&r, "GET", "/", NULL);
    r.query = "limit=20&q=red%20shoe&empty=&flag&plus=a+b&bad=%zz";
    char buf[32];
    CU_ASSERT_EQUAL(http_query(&r, "limit", buf, sizeof buf), 1);
    CU_ASSERT_STRING_EQUAL(buf, "20");
    CU_ASSERT_EQUAL(http_query(&r, "q", buf, sizeof buf), 1);
    CU_ASSERT_STRING_EQUAL(buf, "red shoe");
    CU_ASSERT_EQUAL(http_query(&r, "empty", buf, sizeof buf), 1);
    CU_ASSERT_STRING_EQUAL(buf, "");
    CU_ASSERT_EQUAL(http_query(&r, "flag", buf, sizeof buf), 1);
    CU_ASSERT_EQUAL(http_query(&r, "plus", buf, sizeof buf), 1);
    CU_ASSERT_STRING_EQUAL(buf, "a b");
    CU_ASSERT_EQUAL(http_query(&r, "bad", buf, sizeof buf), -1);
    CU_ASSERT_EQUAL(http_query(&r, "lim", buf, sizeof buf), 0);
    CU_ASSERT_EQUAL(http_query(&r, "q", buf, 4), -1);   /* too long for buf */
    req_done(&r);
    /* A parameter given twice: neither value is taken. */
    req_init(&r, "GET", "/", NULL);
    r.query = "limit=5&q=a&limit=500&flag&flag";
    CU_ASSERT_EQUAL(http_query(&r, "limit", buf, sizeof buf), HTTP_QUERY_REPEATED);
    CU_ASSERT_EQUAL(http_query(&r, "flag", buf, sizeof buf), HTTP_QUERY_REPEATED);
    CU_ASSERT_EQUAL(http_query(&r, "q", buf, sizeof buf), 1);
    json_object *errs = json_object_new_array();
    int64_t v = 7;
    CU_ASSERT_EQUAL(http_query_int(&r, "limit", 1, 100, &v, errs), JSON_BAD);
    CU_ASSERT_EQUAL(v, 7);
    CU_ASSERT_STRING_EQUAL(json_object_to_json_string(errs),
                           "[ { \"field\": \"limit\", \"message\": \"given more than once\" } ]");
    json_object_put(errs);
    /* http_query_once reports the repeat itself, and only that. */
    errs = json_object_new_array();
    CU_ASSERT_EQUAL(http_query_once(&r, "flag", buf, sizeof buf, errs), HTTP_QUERY_REPEATED);
    CU_ASSERT_EQUAL(http_query_once(&r, "q", buf, sizeof buf, errs), 1);
    CU_ASSERT_EQUAL(http_query_once(&r, "none", buf, sizeof buf, errs), 0);
    CU_ASSERT_STRING_EQUAL(json_object_to_json_string(errs),
                           "[ { \"field\": \"flag\", \"message\": \"given more than once\" } ]");
    json_object_put(errs);
    req_done(&r);
}

/* The integer query parameters every list takes: digits only, in range,
 * one {"field","message"} per bad parameter. */
static void test_query_int(void)
{
    http_req r;
    req_init(&r, "GET", "/", NULL);
    r.query = "limit=20&zero=0&big=1000&neg=-1&plus=%2B5&sp=5%20&hex=0x1&long=1234567890123456789"
              "&empty=&max=999999999999999999&top=9223372036854775807&over=9223372036854775808"
              "&twenty=12345678901234567890";
    json_object *errs = json_object_new_array();
    int64_t v = 7;
    CU_ASSERT_EQUAL(http_query_int(&r, "limit", 1, 100, &v, errs), JSON_OK);
    CU_ASSERT_EQUAL(v, 20);
    CU_ASSERT_EQUAL(http_query_int(&r, "absent", 1, 100, &v, errs), JSON_ABSENT);
    CU_ASSERT_EQUAL(v, 20);
    CU_ASSERT_EQUAL(http_query_int(&r, "max", 1, INT64_MAX, &v, errs), JSON_OK);
    CU_ASSERT_EQUAL(v, 999999999999999999LL);
    /* every positive id, INT64_MAX included; nothing past it */
    CU_ASSERT_EQUAL(http_query_int(&r, "top", 1, INT64_MAX, &v, errs), JSON_OK);
    CU_ASSERT_EQUAL(v, INT64_MAX);
    CU_ASSERT_EQUAL(json_object_array_length(errs), 0);
    CU_ASSERT_EQUAL(http_query_int(&r, "over", 1, INT64_MAX, &v, errs), JSON_BAD);
    CU_ASSERT_EQUAL(http_query_int(&r, "twenty", 1, INT64_MAX, &v, errs), JSON_BAD);
    CU_ASSERT_EQUAL(v, INT64_MAX);
    CU_ASSERT_EQUAL(json_object_array_length(errs), 2);
    json_object_put(errs);
    errs = json_object_new_array();
    const char *bad[] = {"zero", "big", "neg", "plus", "sp", "hex", "long", "empty"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_EQUAL(http_query_int(&r, bad[i], 1, 100, &v, errs), JSON_BAD);
    CU_ASSERT_EQUAL(v, INT64_MAX);
    CU_ASSERT_EQUAL_FATAL(json_object_array_length(errs), 8);
    json_object *f, *m;
    json_object *e = json_object_array_get_idx(errs, 1);
    CU_ASSERT_TRUE(json_object_object_get_ex(e, "field", &f) &&
                   strcmp(json_object_get_string(f), "big") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(e, "message", &m) &&
                   strcmp(json_object_get_string(m), "must be an integer from 1 to 100") == 0);
    json_object_put(errs);
    req_done(&r);
}

static void test_request_id(void)
{
    CU_ASSERT_TRUE(http_request_id_valid("abc-DEF_1.2"));
    CU_ASSERT_FALSE(http_request_id_valid(""));
    CU_ASSERT_FALSE(http_request_id_valid(NULL));
    CU_ASSERT_FALSE(http_request_id_valid("has space"));
    CU_ASSERT_FALSE(http_request_id_valid("semi;colon"));
    char id[130];
    memset(id, 'a', 128);
    id[128] = '\0';
    CU_ASSERT_TRUE(http_request_id_valid(id));
    id[128] = 'a';
    id[129] = '\0';
    CU_ASSERT_FALSE(http_request_id_valid(id));
}

static void test_headers_from_env(void)
{
    char *env[] = {"HTTP_IF_MATCH=\"3\"", "CONTENT_TYPE=application/json", NULL};
    http_req r;
    req_init(&r, "GET", "/", env);
    CU_ASSERT_STRING_EQUAL(http_header(&r, "If-Match"), "\"3\"");
    CU_ASSERT_STRING_EQUAL(http_header(&r, "content-type"), "application/json");
    CU_ASSERT_PTR_NULL(http_header(&r, "Authorization"));
    http_add_header(&r, "X-Test", "a\r\nInjected: yes");
    CU_ASSERT_PTR_NULL(strstr(r.headers, "\r\nInjected"));
    req_done(&r);
}

/* An answer that says nothing of caching is not cacheable; one that says
 * something keeps its word, once. */
static void test_cache_control_default(void)
{
    http_req r;
    req_init(&r, "GET", "/", NULL);
    CU_ASSERT_EQUAL(http_reply_json(&r, 200, json_object_new_object()), 200);
    CU_ASSERT_PTR_NOT_NULL(r.headers && strstr(r.headers, "Cache-Control: no-store\r\n"));
    req_done(&r);

    req_init(&r, "GET", "/", NULL);
    http_add_header(&r, "cache-control", "public, max-age=5");
    CU_ASSERT_EQUAL(http_reply_empty(&r, 304), 304);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.headers, "cache-control: public, max-age=5\r\n"));
    CU_ASSERT_PTR_NULL(strstr(r.headers, "no-store"));
    req_done(&r);
}

static void test_format_time(void)
{
    char buf[32];
    http_format_time(1795980600, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "2026-11-29T19:30:00Z");
}

static void test_route_match(void)
{
    int64_t id = 0;
    CU_ASSERT_TRUE(route_match("/products", "/products", &id));
    CU_ASSERT_FALSE(route_match("/products", "/products/", &id));
    CU_ASSERT_TRUE(route_match("/products/{id}/stock", "/products/42/stock", &id));
    CU_ASSERT_EQUAL(id, 42);
    CU_ASSERT_FALSE(route_match("/products/{id}", "/products/0", &id));
    CU_ASSERT_FALSE(route_match("/products/{id}", "/products/007", &id));
    CU_ASSERT_FALSE(route_match("/products/{id}", "/products/abc", &id));
    CU_ASSERT_FALSE(route_match("/products/{id}", "/products/12a", &id));
    CU_ASSERT_FALSE(route_match("/products/{id}", "/products/1234567890123456789", &id));
}

/* base64url (no padding) of text, for building cursors by hand. */
static void b64(const char *text, char *out, size_t n)
{
    sodium_bin2base64(out, n, (const unsigned char *)text, strlen(text),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void test_cursor(void)
{
    char buf[64], raw[64], forged[96];
    size_t len = 0;
    int64_t id = 0;
    http_cursor_encode("p:", 123456789012345678LL, buf, sizeof buf);
    CU_ASSERT_TRUE(http_cursor_decode("p:", buf, &id));
    CU_ASSERT_EQUAL(id, 123456789012345678LL);
    CU_ASSERT_FALSE(http_cursor_decode("q:", buf, &id));   /* another list's cursor */

    /* What it holds: prefix, id, "." and an 8-hex-digit check. */
    http_cursor_encode("p:", 42, buf, sizeof buf);
    CU_ASSERT_EQUAL_FATAL(sodium_base642bin((unsigned char *)raw, sizeof raw - 1, buf, strlen(buf),
                                            NULL, &len, NULL,
                                            sodium_base64_VARIANT_URLSAFE_NO_PADDING), 0);
    raw[len] = '\0';
    CU_ASSERT_EQUAL(len, strlen("p:42.") + 8);
    CU_ASSERT_EQUAL(strncmp(raw, "p:42.", 5), 0);
    /* Edited by hand: another id under the same check, a digit dropped, the
     * check cut short or left out: all refused. */
    char edited[64];
    snprintf(edited, sizeof edited, "p:43%s", raw + 4);
    b64(edited, forged, sizeof forged);
    CU_ASSERT_FALSE(http_cursor_decode("p:", forged, &id));
    snprintf(edited, sizeof edited, "p:4%s", raw + 4);
    b64(edited, forged, sizeof forged);
    CU_ASSERT_FALSE(http_cursor_decode("p:", forged, &id));
    snprintf(edited, sizeof edited, "%.*s", (int)len - 1, raw);
    b64(edited, forged, sizeof forged);
    CU_ASSERT_FALSE(http_cursor_decode("p:", forged, &id));
    b64("p:42", forged, sizeof forged);
    CU_ASSERT_FALSE(http_cursor_decode("p:", forged, &id));
    snprintf(forged, sizeof forged, "%.*s", (int)strlen(buf) - 1, buf);  /* a character cut */
    CU_ASSERT_FALSE(http_cursor_decode("p:", forged, &id));
    snprintf(forged, sizeof forged, "%s=", buf);                          /* padding: not ours */
    CU_ASSERT_FALSE(http_cursor_decode("p:", forged, &id));

    CU_ASSERT_FALSE(http_cursor_decode("", "NDI", &id));   /* "42" bare */
    CU_ASSERT_FALSE(http_cursor_decode("", "NDJ", &id));   /* same bytes, other bits */
    CU_ASSERT_FALSE(http_cursor_decode("", "MDQy", &id));  /* "042" */
    CU_ASSERT_FALSE(http_cursor_decode("", "MA", &id));    /* "0" */
    CU_ASSERT_FALSE(http_cursor_decode("", "", &id));
    CU_ASSERT_FALSE(http_cursor_decode("", NULL, &id));
    http_cursor_encode("", 42, buf, 3);                    /* too small: empty, no overflow */
    CU_ASSERT_STRING_EQUAL(buf, "");
}

/* Every list answers {"items", "next_cursor"}: a cursor only when more rows
 * follow a non-empty page. */
static void test_reply_page(void)
{
    http_req r;
    char buf[64];
    int64_t id = 0;
    json_object *items = json_object_new_array();
    json_object_array_add(items, json_object_new_int(1));
    req_init(&r, "GET", "/things", NULL);
    CU_ASSERT_EQUAL(http_reply_page(&r, items, true, "t:", 77), 200);
    json_object *o = json_parse_strict(r.sent, strlen(r.sent), NULL), *v;
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "items", &v) && json_object_array_length(v) == 1);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "next_cursor", &v) &&
                   json_object_is_type(v, json_type_string));
    snprintf(buf, sizeof buf, "%s", json_object_get_string(v));
    CU_ASSERT_TRUE(http_cursor_decode("t:", buf, &id));
    CU_ASSERT_EQUAL(id, 77);
    json_object_put(o);
    req_done(&r);

    req_init(&r, "GET", "/things", NULL);
    CU_ASSERT_EQUAL(http_reply_page(&r, json_object_new_array(), true, "t:", 0), 200);
    CU_ASSERT_STRING_EQUAL(r.sent, "{\"items\":[],\"next_cursor\":null}");
    req_done(&r);
}

static int handled;
static int ok_handler(http_req *r)
{
    handled++;
    return http_reply_json(r, 200, json_object_new_object());
}

static const route table[] = {
    {"GET", "/things", ROUTE_PUBLIC, false, ok_handler},
    {"POST", "/things", ROUTE_USER, true, ok_handler},
    {"GET", "/things/{id}", ROUTE_PUBLIC, false, ok_handler},
    {"PATCH", "/things/{id}", ROUTE_PUBLIC, true, ok_handler},
    {"DELETE", "/things/{id}", ROUTE_ADMIN, false, ok_handler},
    {"POST", "/sign-in", ROUTE_ANYONE, true, ok_handler},
};
#define NROUTES (sizeof table / sizeof table[0])

static int dispatch(const char *method, const char *path, char **env, const char *body,
                    char *code, size_t n)
{
    http_req r;
    req_init(&r, method, path, env);
    if (body) {
        r.body = (char *)body;
        r.body_len = strlen(body);
    }
    int status = route_dispatch(table, NROUTES, &r);
    sent_code(&r, code, n);
    if (status == 405)
        CU_ASSERT_PTR_NOT_NULL(r.headers && strstr(r.headers, "Allow: GET, HEAD, PATCH, DELETE\r\n"));
    if (status == 401)
        CU_ASSERT_PTR_NOT_NULL(r.headers && strstr(r.headers, "WWW-Authenticate: Bearer"));
    r.body = NULL;
    req_done(&r);
    return status;
}

static void test_route_walk(void)
{
    char code[64];
    char *json_env[] = {"CONTENT_TYPE=application/json; charset=UTF-8", NULL};
    char *patch_env[] = {"CONTENT_TYPE=application/merge-patch+json", NULL};
    char *text_env[] = {"CONTENT_TYPE=text/plain", NULL};
    char *latin_env[] = {"CONTENT_TYPE=application/json; charset=latin1", NULL};
    char *bad_auth[] = {"HTTP_AUTHORIZATION=Bearer not.a.token", NULL};
    char *basic_auth[] = {"HTTP_AUTHORIZATION=Basic dXNlcjpwYXNz", NULL};

    handled = 0;
    CU_ASSERT_EQUAL(dispatch("GET", "/things", NULL, NULL, code, sizeof code), 200);
    CU_ASSERT_EQUAL(dispatch("GET", "/nothing", NULL, NULL, code, sizeof code), 404);
    CU_ASSERT_STRING_EQUAL(code, "not_found");
    CU_ASSERT_EQUAL(dispatch("PUT", "/things/5", NULL, NULL, code, sizeof code), 405);
    CU_ASSERT_STRING_EQUAL(code, "method_not_allowed");
    CU_ASSERT_EQUAL(dispatch("POST", "/things", json_env, "{}", code, sizeof code), 401);
    CU_ASSERT_STRING_EQUAL(code, "unauthorized");
    CU_ASSERT_EQUAL(dispatch("GET", "/things", bad_auth, NULL, code, sizeof code), 401);
    CU_ASSERT_EQUAL(dispatch("GET", "/things", basic_auth, NULL, code, sizeof code), 401);
    CU_ASSERT_EQUAL(dispatch("DELETE", "/things/5", NULL, NULL, code, sizeof code), 401);
    CU_ASSERT_EQUAL(handled, 1);
    /* Credentials in the body: a stale bearer token beside them is not read. */
    CU_ASSERT_EQUAL(dispatch("POST", "/sign-in", bad_auth, "{}", code, sizeof code), 415);
    char *json_bad_auth[] = {"CONTENT_TYPE=application/json", "HTTP_AUTHORIZATION=Bearer not.a.token", NULL};
    CU_ASSERT_EQUAL(dispatch("POST", "/sign-in", json_bad_auth, "{}", code, sizeof code), 200);
    CU_ASSERT_EQUAL(handled, 2);

    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", json_env, "{\"a\":1}", code, sizeof code), 200);
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", patch_env, "{\"a\":1}", code, sizeof code), 200);
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", text_env, "{\"a\":1}", code, sizeof code), 415);
    CU_ASSERT_STRING_EQUAL(code, "unsupported_media_type");
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", latin_env, "{\"a\":1}", code, sizeof code), 415);
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", NULL, "{\"a\":1}", code, sizeof code), 415);
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", json_env, "{\"a\":", code, sizeof code), 400);
    CU_ASSERT_STRING_EQUAL(code, "malformed_json");
    /* Optional whitespace around ';' may be tabs (RFC 9110 5.6.3); a quoted
     * charset needs both quotes. */
    char *tab_env[] = {"CONTENT_TYPE=application/json\t;\tcharset=utf-8\t", NULL};
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", tab_env, "{\"a\":1}", code, sizeof code), 200);
    char *quoted_env[] = {"CONTENT_TYPE=application/json; charset=\"utf-8\"", NULL};
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", quoted_env, "{\"a\":1}", code, sizeof code), 200);
    char *half_quoted_env[] = {"CONTENT_TYPE=application/json; charset=\"utf-8", NULL};
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", half_quoted_env, "{\"a\":1}", code, sizeof code), 415);
    /* No content coding is taken: 415, saying which one is. */
    char *gzip_env[] = {"CONTENT_TYPE=application/json", "HTTP_CONTENT_ENCODING=gzip", NULL};
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", gzip_env, "{\"a\":1}", code, sizeof code), 415);
    CU_ASSERT_STRING_EQUAL(code, "unsupported_media_type");
    char *identity_env[] = {"CONTENT_TYPE=application/json", "HTTP_CONTENT_ENCODING=Identity", NULL};
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", identity_env, "{\"a\":1}", code, sizeof code), 200);
    /* Empty parameters are allowed (RFC 9110 8.3.1), a second charset is not. */
    char *empty_params_env[] = {"CONTENT_TYPE=application/json;; charset=utf-8;", NULL};
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", empty_params_env, "{\"a\":1}", code, sizeof code), 200);
    char *two_charsets_env[] = {"CONTENT_TYPE=application/json; charset=utf-8; charset=latin1", NULL};
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", two_charsets_env, "{\"a\":1}", code, sizeof code), 415);
    /* Nested too deep: malformed to this parser; a name holding \u0000: 422. */
    char deep[80];
    memset(deep, '[', 40);
    memset(deep + 40, ']', 39);
    deep[79] = '\0';
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", json_env, deep, code, sizeof code), 400);
    CU_ASSERT_STRING_EQUAL(code, "malformed_json");
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", json_env, "{\"a\\u0000b\":1}", code, sizeof code), 422);
    CU_ASSERT_STRING_EQUAL(code, "validation_failed");
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", json_env, "{\"a\":1,\"a\":2}", code, sizeof code), 422);
    CU_ASSERT_STRING_EQUAL(code, "validation_failed");
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", json_env, "", code, sizeof code), 400);
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", json_env, "[1,2]", code, sizeof code), 422);
    CU_ASSERT_STRING_EQUAL(code, "validation_failed");
    /* A bodiless route takes an empty object, checked as any body is. */
    char *admin_text[] = {"CONTENT_TYPE=text/plain", NULL};
    CU_ASSERT_EQUAL(dispatch("GET", "/things/5", admin_text, "{\"a\":1}", code, sizeof code), 415);
    CU_ASSERT_STRING_EQUAL(code, "unsupported_media_type");
    CU_ASSERT_EQUAL(dispatch("GET", "/things/5", json_env, "{}", code, sizeof code), 200);
    CU_ASSERT_EQUAL(dispatch("GET", "/things/5", json_env, "{", code, sizeof code), 400);
    CU_ASSERT_STRING_EQUAL(code, "malformed_json");
    CU_ASSERT_EQUAL(dispatch("GET", "/things/5", json_env, "{\"a\":1}", code, sizeof code), 422);
    CU_ASSERT_STRING_EQUAL(code, "validation_failed");
    CU_ASSERT_EQUAL(dispatch("GET", "/things/5", json_env, "[]", code, sizeof code), 422);
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", json_env, " null ", code, sizeof code), 422);
    CU_ASSERT_STRING_EQUAL(code, "validation_failed");
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", json_env, "{\"a\":1.}", code, sizeof code), 400);
    CU_ASSERT_STRING_EQUAL(code, "malformed_json");

    char *big = malloc(HTTP_MAX_BODY + 2);
    memset(big, ' ', HTTP_MAX_BODY + 1);
    big[0] = '{';
    big[HTTP_MAX_BODY] = '}';
    big[HTTP_MAX_BODY + 1] = '\0';
    CU_ASSERT_EQUAL(dispatch("PATCH", "/things/5", json_env, big, code, sizeof code), 413);
    CU_ASSERT_STRING_EQUAL(code, "payload_too_large");
    free(big);
    CU_ASSERT_EQUAL(handled, 9);
}

static void test_problem_body(void)
{
    http_req r;
    req_init(&r, "GET", "/x", NULL);
    json_object *extra = json_object_new_object();
    json_object_object_add(extra, "items", json_object_new_array());
    CU_ASSERT_EQUAL(problem_send_extra(&r, 409, "insufficient_stock", "short", extra), 409);
    json_object *o = sent_json(&r), *v;
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "status", &v) && json_object_get_int(v) == 409);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "title", &v) &&
                   strcmp(json_object_get_string(v), "Conflict") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "request_id", &v) &&
                   strcmp(json_object_get_string(v), "test-req-1") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "items", &v));
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "type", &v));
    json_object_put(o);
    req_done(&r);

    /* Extensions cannot replace the standard members. */
    req_init(&r, "GET", "/x", NULL);
    extra = json_object_new_object();
    json_object_object_add(extra, "status", json_object_new_string("unavailable"));
    json_object_object_add(extra, "code", json_object_new_string("ok"));
    json_object_object_add(extra, "db", json_object_new_string("unavailable"));
    CU_ASSERT_EQUAL(problem_send_extra(&r, 503, "unavailable", "down", extra), 503);
    o = sent_json(&r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "status", &v) && json_object_is_type(v, json_type_int) &&
                   json_object_get_int(v) == 503);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "code", &v) &&
                   strcmp(json_object_get_string(v), "unavailable") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "db", &v) &&
                   strcmp(json_object_get_string(v), "unavailable") == 0);
    json_object_put(o);
    req_done(&r);

    req_init(&r, "GET", "/x", NULL);
    CU_ASSERT_EQUAL(problem_internal(&r, "SELECT secret FROM t"), 500);
    CU_ASSERT_PTR_NULL(strstr(r.sent, "SELECT"));
    req_done(&r);

    req_init(&r, "GET", "/x", NULL);
    CU_ASSERT_EQUAL(problem_unavailable(&r, NULL), 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.headers, "Retry-After: "));
    req_done(&r);

    req_init(&r, "GET", "/x", NULL);
    json_object *errs = json_object_new_array();
    json_add_error(errs, "price_cents", "must be an integer");
    CU_ASSERT_EQUAL(problem_invalid(&r, errs), 422);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.sent, "\"field\":\"price_cents\""));
    req_done(&r);
}

static void test_reply_once(void)
{
    http_req r;
    req_init(&r, "GET", "/x", NULL);
    CU_ASSERT_EQUAL(http_reply_empty(&r, 204), 204);
    CU_ASSERT_EQUAL(http_reply_json(&r, 200, json_object_new_object()), 204);
    CU_ASSERT_EQUAL(r.status, 204);
    req_done(&r);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("http", NULL, NULL);
    CU_add_test(s, "query parameters", test_query);
    CU_add_test(s, "integer query parameters", test_query_int);
    CU_add_test(s, "request id", test_request_id);
    CU_add_test(s, "headers from env", test_headers_from_env);
    CU_add_test(s, "cache-control default", test_cache_control_default);
    CU_add_test(s, "format time", test_format_time);
    CU_add_test(s, "route match", test_route_match);
    CU_add_test(s, "cursor", test_cursor);
    CU_add_test(s, "page reply", test_reply_page);
    CU_add_test(s, "route walk", test_route_walk);
    CU_add_test(s, "problem body", test_problem_body);
    CU_add_test(s, "reply once", test_reply_once);
    return cunit_run_all();
}
