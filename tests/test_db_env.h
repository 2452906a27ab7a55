/* test_db_env.h: the unit tests' way to the throwaway MariaDB that
 * scripts/with-test-db starts (its socket in $SHOP_TEST_DB_SOCKET): the
 * DB layer pointed at it and initialised.  0, or -1 (no socket, no
 * connection: the suite's setup fails, and with it the binary). */
#ifndef SHOP_TESTS_TEST_DB_ENV_H
#define SHOP_TESTS_TEST_DB_ENV_H

#include <stdlib.h>
#include "db.h"

static inline int test_db_connect(void)
{
    const char *sock = getenv("SHOP_TEST_DB_SOCKET");
    if (!sock)
        return -1;
    setenv("SHOP_DB_SOCKET", sock, 1);
    setenv("SHOP_DB_HOST", "localhost", 1);
    setenv("SHOP_DB_USER", "tester", 1);
    setenv("SHOP_DB_PASSWORD", "tester-pw", 1);
    setenv("SHOP_DB_NAME", "shop_test", 1);
    return db_init();
}

/* The single number a counting query answers (SELECT COUNT(*) ...), or -1
 * when it fails. */
static inline int64_t test_db_count(const char *sql)
{
    db_res *r = db_query(sql, NULL);
    int64_t n = r && db_rows(r) == 1 ? db_int(r, 0, 0) : -1;
    db_free(r);
    return n;
}

#endif
