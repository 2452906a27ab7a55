/* test_metrics.c: counters are shared by every process mapping the same
 * file, and render in the Prometheus text format. */
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include "cunit_main.h"
#include "metrics.h"


static void test_shared_between_processes(void)
{
    char path[] = "/tmp/shop-test-metrics-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    setenv("SHOP_METRICS_FILE", path, 1);
    CU_ASSERT_EQUAL_FATAL(metrics_init("product", 2), 0);
    metrics_name_route(0, "GET", "/products/{id}");
    metrics_name_route(1, "POST", "/orders");

    pid_t child = fork();
    if (child == 0) {
        metrics_observe(0, 200, 3.0);
        metrics_observe(1, 409, 40.0);
        metrics_inc(METRIC_ORDERS_REJECTED_STOCK, 1);
        _exit(0);
    }
    int st;
    waitpid(child, &st, 0);
    metrics_observe(0, 200, 0.5);
    metrics_observe(2, 404, 0.2);      /* unmatched */
    metrics_observe(0, 299, 7000);     /* an unlisted status, slower than every bucket */

    size_t len;
    char *text = metrics_render(&len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_EQUAL(strlen(text), len);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "shop_http_requests_total{service=\"product\",method=\"GET\","
                                        "route=\"/products/{id}\",status=\"200\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "route=\"/orders\",status=\"409\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "route=\"unmatched\",status=\"404\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "route=\"/products/{id}\",status=\"other\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "route=\"/products/{id}\",le=\"0.001\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "route=\"/products/{id}\",le=\"0.005\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "route=\"/products/{id}\",le=\"+Inf\"} 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "shop_orders_rejected_stock_total{service=\"product\"} 1\n"));
    free(text);
    unlink(path);
}

static int occurrences(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

/* A consumer's file (another process, another service) reported by the
 * pool's scrape beside its own counters: one family, one TYPE line, a
 * series per service; a file not there (yet) and a bad entry left out. */
static void test_other_files_beside_the_pools(void)
{
    char mine[] = "/tmp/shop-test-metrics-XXXXXX", theirs[] = "/tmp/shop-test-metrics-XXXXXX";
    int fd = mkstemp(mine);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    fd = mkstemp(theirs);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    pid_t child = fork();
    if (child == 0) {
        setenv("SHOP_METRICS_FILE", theirs, 1);
        if (metrics_init("notify", 0) != 0)
            _exit(1);
        metrics_inc(METRIC_EVENTS_PROCESSED, 3);
        metrics_inc(METRIC_EVENTS_FAILED, 1);
        _exit(0);
    }
    int st;
    CU_ASSERT_FATAL(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    setenv("SHOP_METRICS_FILE", mine, 1);
    CU_ASSERT_EQUAL_FATAL(metrics_init("order", 0), 0);
    metrics_inc(METRIC_ORDERS_PLACED, 2);
    char also[256];
    snprintf(also, sizeof also, " notify:%s  revoke:/nonexistent/revoke.metrics bad-entry ", theirs);
    setenv("SHOP_METRICS_ALSO", also, 1);

    size_t len;
    char *text = metrics_render(&len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "shop_orders_placed_total{service=\"order\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "shop_events_processed_total{service=\"order\"} 0\n"
                                        "shop_events_processed_total{service=\"notify\"} 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "shop_events_failed_total{service=\"notify\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "shop_orders_placed_total{service=\"notify\"} 0\n"));
    CU_ASSERT_EQUAL(occurrences(text, "# TYPE shop_events_processed_total counter\n"), 1);
    CU_ASSERT_EQUAL(occurrences(text, "service=\"revoke\""), 0);
    CU_ASSERT_EQUAL(occurrences(text, "bad-entry"), 0);
    free(text);

    /* Without METRICS_ALSO: the pool's own series only. */
    unsetenv("SHOP_METRICS_ALSO");
    text = metrics_render(&len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_EQUAL(occurrences(text, "service=\"notify\""), 0);
    free(text);
    unlink(mine);
    unlink(theirs);
}

/* Runs fn in a child with stderr closed; true when the child died of
 * SIGABRT (a failed assert). */
static bool aborts(void (*fn)(void))
{
    pid_t child = fork();
    if (child == 0) {
        close(STDERR_FILENO);
        fn();
        _exit(0);
    }
    int st = 0;
    waitpid(child, &st, 0);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void bad_counter(void) { metrics_inc(METRIC_COUNT, 1); }
static void bad_route(void) { metrics_init("product", 2); metrics_observe(3, 200, 1.0); }
static void too_many_routes(void) { metrics_init("product", METRICS_ROUTES + 1); }
static void good_calls(void)
{
    metrics_init("product", METRICS_ROUTES);
    metrics_observe(METRICS_ROUTES, 404, 1.0);   /* the "unmatched" slot */
    metrics_inc(METRIC_SWEEP_REPAIRS, 1);
}

/* Programmer errors are asserts (NDEBUG is never defined), not silent clamps. */
static void test_programmer_errors_abort(void)
{
    unsetenv("SHOP_METRICS_FILE");
    CU_ASSERT_TRUE(aborts(bad_counter));
    CU_ASSERT_TRUE(aborts(bad_route));
    CU_ASSERT_TRUE(aborts(too_many_routes));
    CU_ASSERT_FALSE(aborts(good_calls));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("metrics", NULL, NULL);
    CU_add_test(s, "shared between processes", test_shared_between_processes);
    CU_add_test(s, "other processes' files beside the pool's", test_other_files_beside_the_pools);
    CU_add_test(s, "programmer errors abort", test_programmer_errors_abort);
    return cunit_run_all();
}
