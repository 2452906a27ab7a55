/* test_metrics.c: counters are shared by every process mapping the same
 * file, and render in the Prometheus text format. */
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

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("metrics", NULL, NULL);
    CU_add_test(s, "shared between processes", test_shared_between_processes);
    return cunit_run_all();
}
