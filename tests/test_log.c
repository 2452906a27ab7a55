/* test_log.c: every log line is one JSON object carrying the request id. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include "cunit_main.h"
#include "json.h"
#include "log.h"

/* Runs fn with stderr captured; returns the first line written. */
static void capture(void (*fn)(void), char *buf, size_t n)
{
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    int saved = dup(STDERR_FILENO);
    dup2(p[1], STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[1]);
    ssize_t got = read(p[0], buf, n - 1);
    close(p[0]);
    buf[got > 0 ? got : 0] = '\0';
}

static void log_with_request(void)
{
    log_set_request("rid-123", "POST", "/orders");
    log_error("stock \"short\" for %d", 7);
    log_set_request(NULL, NULL, NULL);
}

static void log_below_level(void)
{
    log_debug("hidden");
}

static void test_line_is_json_with_request_id(void)
{
    char buf[4096];
    log_init("order", LOG_INFO);
    capture(log_with_request, buf, sizeof buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(strchr(buf, '\n'));
    json_object *o = json_parse_strict(buf, strlen(buf), NULL), *v;
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "request_id", &v) &&
                   strcmp(json_object_get_string(v), "rid-123") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "service", &v) &&
                   strcmp(json_object_get_string(v), "order") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "level", &v) &&
                   strcmp(json_object_get_string(v), "error") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "msg", &v) &&
                   strcmp(json_object_get_string(v), "stock \"short\" for 7") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "ts", &v));
    json_object_put(o);
}

static void test_level_filter(void)
{
    char buf[256];
    log_init("order", LOG_INFO);
    capture(log_below_level, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "");
    CU_ASSERT_EQUAL(log_level_parse("WARN"), LOG_WARN);
    CU_ASSERT_EQUAL(log_level_parse("nonsense"), LOG_INFO);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("log", NULL, NULL);
    CU_add_test(s, "line is JSON with request id", test_line_is_json_with_request_id);
    CU_add_test(s, "level filter", test_level_filter);
    return cunit_run_all();
}
