/* test_revoke.c: the per-host revocation list: a token issued before its
 * user's mark is void, after it is not (to the millisecond), in every
 * process mapping the file; marks only rise; expired slots are reused; a
 * full neighbourhood raises the whole-host mark; a new file voids what came
 * before it. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include "cunit_main.h"
#include "revoke.h"

static char path[64];
static const int64_t T0 = 1800000000000;   /* ms */
static const int64_t KEEP = 960000;        /* access-token lifetime + skew */

static void fresh_file(void)
{
    strcpy(path, "/tmp/shop-test-revoke-XXXXXX");
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
}

static void test_new_file_voids_earlier_tokens(void)
{
    fresh_file();
    CU_ASSERT_EQUAL_FATAL(revoke_writer_open(path, T0), 0);
    CU_ASSERT_TRUE(revoke_is_revoked(5, NULL, T0 - 1));
    CU_ASSERT_FALSE(revoke_is_revoked(5, NULL, T0));
    revoke_close();
    /* Opening it again keeps its mark and entries. */
    CU_ASSERT_EQUAL_FATAL(revoke_writer_open(path, T0 + 5000), 0);
    CU_ASSERT_FALSE(revoke_is_revoked(5, NULL, T0 + 1));
    revoke_close();
    unlink(path);
}

static void test_mark_is_per_user_and_per_ms(void)
{
    fresh_file();
    CU_ASSERT_EQUAL_FATAL(revoke_writer_open(path, T0), 0);
    int64_t change = T0 + 10500;              /* mid-second */
    CU_ASSERT_EQUAL(revoke_add(42, change, T0 + 11000, KEEP), 0);
    CU_ASSERT_TRUE(revoke_is_revoked(42, NULL, change - 1));   /* same second, before */
    CU_ASSERT_FALSE(revoke_is_revoked(42, NULL, change));      /* same second, at/after */
    CU_ASSERT_FALSE(revoke_is_revoked(42, NULL, change + 400));
    CU_ASSERT_FALSE(revoke_is_revoked(43, NULL, change - 1));  /* another user */
    /* Marks only rise. */
    CU_ASSERT_EQUAL(revoke_add(42, change - 5000, T0 + 11000, KEEP), 0);
    CU_ASSERT_TRUE(revoke_is_revoked(42, NULL, change - 1));
    CU_ASSERT_EQUAL(revoke_add(42, change + 1000, T0 + 12000, KEEP), 0);
    CU_ASSERT_TRUE(revoke_is_revoked(42, NULL, change + 999));
    CU_ASSERT_FALSE(revoke_is_revoked(42, NULL, change + 1000));
    CU_ASSERT_EQUAL(revoke_add(0, change, T0, KEEP), -1);
    revoke_close();
    unlink(path);
}

/* A login's entry voids that login's tokens only; the user's own entry
 * still voids every login's. */
static void test_per_login(void)
{
    const char *a = "00000000000000000000000000000001", *b = "00000000000000000000000000000002";
    fresh_file();
    CU_ASSERT_EQUAL_FATAL(revoke_writer_open(path, T0), 0);
    int64_t at = T0 + 20000;
    CU_ASSERT_EQUAL(revoke_add_session(a, at, T0 + 21000, KEEP), 0);
    CU_ASSERT_TRUE(revoke_is_revoked(42, a, at - 1));
    CU_ASSERT_FALSE(revoke_is_revoked(42, a, at));
    CU_ASSERT_FALSE(revoke_is_revoked(42, b, at - 1));     /* another login */
    CU_ASSERT_FALSE(revoke_is_revoked(42, NULL, at - 1));  /* a token naming none */
    CU_ASSERT_FALSE(revoke_is_revoked(42, "", at - 1));
    CU_ASSERT_EQUAL(revoke_add(42, at + 500, T0 + 21000, KEEP), 0);
    CU_ASSERT_TRUE(revoke_is_revoked(42, b, at + 499));
    CU_ASSERT_FALSE(revoke_is_revoked(43, b, at + 499));
    CU_ASSERT_EQUAL(revoke_add_session("", at, T0, KEEP), -1);
    CU_ASSERT_EQUAL(revoke_add_session(NULL, at, T0, KEEP), -1);
    revoke_close();
    unlink(path);
}

static void test_readers_in_other_processes(void)
{
    fresh_file();
    CU_ASSERT_EQUAL_FATAL(revoke_writer_open(path, T0), 0);
    revoke_close();
    /* A reader maps the file; a writer in another process adds later. */
    revoke_reader_init(path);
    CU_ASSERT_FALSE(revoke_is_revoked(7, NULL, T0 + 100));
    pid_t child = fork();
    if (child == 0) {
        if (revoke_writer_open(path, T0) != 0 || revoke_add(7, T0 + 200, T0 + 300, KEEP) != 0)
            _exit(1);
        _exit(0);
    }
    int st = 0;
    CU_ASSERT_EQUAL(waitpid(child, &st, 0), child);
    CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CU_ASSERT_TRUE(revoke_is_revoked(7, NULL, T0 + 100));
    CU_ASSERT_FALSE(revoke_is_revoked(7, NULL, T0 + 200));
    revoke_close();
    unlink(path);
}

static void test_missing_file_refuses_nothing(void)
{
    revoke_reader_init("/nonexistent/shop-revoke");
    CU_ASSERT_FALSE(revoke_is_revoked(7, NULL, 0));
    revoke_reader_init(NULL);
    CU_ASSERT_FALSE(revoke_is_revoked(7, NULL, 0));
    revoke_close();
}

static void test_full_neighbourhood_and_reuse(void)
{
    fresh_file();
    CU_ASSERT_EQUAL_FATAL(revoke_writer_open(path, T0), 0);
    /* Fill far more users than probes: some land in the same
     * neighbourhoods.  Every user must read as revoked either way. */
    int full = 0;
    for (int64_t u = 1; u <= 70000; u++) {
        int rc = revoke_add(u, T0 + 1000, T0 + 1000, KEEP);
        CU_ASSERT(rc == 0 || rc == 1);
        full += rc == 1;
    }
    CU_ASSERT(full > 0);                       /* 70000 > 65536 slots */
    for (int64_t u = 1; u <= 70000; u += 997)
        CU_ASSERT_TRUE(revoke_is_revoked(u, NULL, T0 + 999));
    /* Much later every entry has expired: new users reuse the slots and no
     * longer raise the whole-host mark. */
    int64_t later = T0 + 1000 + KEEP + 1;
    for (int64_t u = 100001; u <= 101000; u++)
        CU_ASSERT_EQUAL(revoke_add(u, later, later, KEEP), 0);
    CU_ASSERT_TRUE(revoke_is_revoked(100500, NULL, later - 1));
    CU_ASSERT_FALSE(revoke_is_revoked(100500, NULL, later));
    revoke_close();
    unlink(path);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("revoke", NULL, NULL);
    CU_add_test(s, "a new file voids earlier tokens", test_new_file_voids_earlier_tokens);
    CU_add_test(s, "per user, to the millisecond, only rising", test_mark_is_per_user_and_per_ms);
    CU_add_test(s, "per login", test_per_login);
    CU_add_test(s, "readers in other processes", test_readers_in_other_processes);
    CU_add_test(s, "a missing file refuses nothing", test_missing_file_refuses_nothing);
    CU_add_test(s, "a full neighbourhood, expired slots reused", test_full_neighbourhood_and_reuse);
    return cunit_run_all();
}
