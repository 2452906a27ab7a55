/* cunit_main.h: the one way a CUnit test binary runs its registry and picks
 * its exit status, shared by every tests/test_*.c.  A binary passes only when
 * every test it registered ran and none failed: a suite whose setup (or
 * cleanup) failed, a test that could not be registered, or a registry that
 * ran nothing all fail it, because "0 failed" must never stand for "nothing
 * was checked". */
#ifndef SHOP_TESTS_CUNIT_MAIN_H
#define SHOP_TESTS_CUNIT_MAIN_H

#include <stdio.h>
#include <CUnit/Basic.h>

/* Runs every registered suite (verbose), cleans the registry up and returns
 * the process exit status: 0 on a complete, green run, 1 otherwise (saying
 * why on stderr).  Call it once, after the CU_add_suite/CU_add_test calls;
 * it notices a failed registration through CU_get_error(). */
static inline int cunit_run_all(void)
{
    int bad = 0;
    if (CU_get_error() != CUE_SUCCESS) {
        fprintf(stderr, "cunit: registering the tests failed: %s\n", CU_get_error_msg());
        bad = 1;
    }
    unsigned registered = CU_get_registry() ? CU_get_registry()->uiNumberOfTests : 0;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (CU_basic_run_tests() != CUE_SUCCESS) {
        fprintf(stderr, "cunit: the run failed: %s\n", CU_get_error_msg());
        bad = 1;
    }
    unsigned run = CU_get_number_of_tests_run();
    unsigned failed = CU_get_number_of_tests_failed();
    unsigned suites_failed = CU_get_number_of_suites_failed();
    if (suites_failed) {
        fprintf(stderr, "cunit: %u suite(s) failed their setup or cleanup\n", suites_failed);
        bad = 1;
    }
    if (run == 0 || run != registered) {
        fprintf(stderr, "cunit: %u of %u registered tests ran\n", run, registered);
        bad = 1;
    }
    if (failed || CU_get_number_of_failures())
        bad = 1;
    CU_cleanup_registry();
    return bad;
}

#endif
