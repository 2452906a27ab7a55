/* test_config.c: settings come from the file, the environment overrides. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include "cunit_main.h"
#include "config.h"

static char path[64];

static int setup(void)
{
    snprintf(path, sizeof path, "/tmp/shop-test-config-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return -1;
    }
    int bad = fputs("# comment\n\nDB_HOST = db.example\nDB_PORT=3307\nEMPTY=\nWEIRD=a=b\n"
                    "BADINT=12x\n", f) < 0;
    return fclose(f) != 0 || bad ? -1 : 0;
}

static int teardown(void)
{
    unlink(path);
    config_free();
    return 0;
}

static void test_file_values(void)
{
    CU_ASSERT_EQUAL(config_load_file(path), 0);
    CU_ASSERT_STRING_EQUAL(config_get("DB_HOST", "x"), "db.example");
    CU_ASSERT_EQUAL(config_int("DB_PORT", 1), 3307);
    CU_ASSERT_STRING_EQUAL(config_get("EMPTY", "x"), "");
    CU_ASSERT_STRING_EQUAL(config_get("WEIRD", "x"), "a=b");
    CU_ASSERT_STRING_EQUAL(config_get("MISSING", "dflt"), "dflt");
    CU_ASSERT_PTR_NULL(config_get("MISSING", NULL));
    CU_ASSERT_EQUAL(config_int("BADINT", 5), 5);
    CU_ASSERT_EQUAL(config_int("MISSING", 9), 9);
}

static void test_env_overrides(void)
{
    setenv("SHOP_DB_HOST", "override", 1);
    CU_ASSERT_STRING_EQUAL(config_get("DB_HOST", "x"), "override");
    unsetenv("SHOP_DB_HOST");
    CU_ASSERT_STRING_EQUAL(config_get("DB_HOST", "x"), "db.example");
}

static void test_missing_file_fails(void)
{
    CU_ASSERT_EQUAL(config_load_file("/nonexistent/shop.conf"), -1);
}

static void test_bad_line_fails(void)
{
    char p[64] = "/tmp/shop-test-config-XXXXXX";
    int fd = mkstemp(p);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(write(fd, "no equals sign\n", 15) == 15);
    close(fd);
    CU_ASSERT_EQUAL(config_load_file(p), -1);
    unlink(p);
}

static void test_due_once_per_interval(void)
{
    struct timespec next = {0};
    setenv("SHOP_TEST_EVERY", "1", 1);
    CU_ASSERT_TRUE(config_due("TEST_EVERY", 60, &next));      /* the first call runs */
    CU_ASSERT_FALSE(config_due("TEST_EVERY", 60, &next));     /* not again at once */
    struct timespec nap = {.tv_sec = 1, .tv_nsec = 100 * 1000 * 1000};
    nanosleep(&nap, NULL);
    CU_ASSERT_TRUE(config_due("TEST_EVERY", 60, &next));      /* 1 s later it does */
    CU_ASSERT_FALSE(config_due("TEST_EVERY", 60, &next));
    setenv("SHOP_TEST_EVERY", "0", 1);                        /* never more than once a second */
    CU_ASSERT_FALSE(config_due("TEST_EVERY", 60, &next));
    unsetenv("SHOP_TEST_EVERY");
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("config", setup, teardown);
    CU_add_test(s, "file values", test_file_values);
    CU_add_test(s, "env overrides", test_env_overrides);
    CU_add_test(s, "missing file fails", test_missing_file_fails);
    CU_add_test(s, "bad line fails", test_bad_line_fails);
    CU_add_test(s, "due once per interval", test_due_once_per_interval);
    return cunit_run_all();
}
