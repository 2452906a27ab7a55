/* test_db.c: the DB layer against a real MariaDB (scripts/with-test-db gives
 * one): typed parameters, buffered results, duplicate keys, and db_tx's
 * contract: commit on success, rollback on a business outcome, whole-
 * transaction retry on deadlock and on a lost connection; db_read's reader:
 * read-only, and the writer whenever the reader is not there; db_purge's
 * bounded batches. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <CUnit/Basic.h>
#include <mysql.h>
#include "cunit_main.h"
#include "db.h"
#include "test_db_env.h"

static int setup(void)
{
    if (test_db_connect() != 0)
        return -1;
    if (db_exec("CREATE TABLE IF NOT EXISTS t (id BIGINT PRIMARY KEY, name VARCHAR(20) UNIQUE, "
                "bin VARBINARY(16), n BIGINT)", NULL) < 0)
        return -1;
    if (db_exec("CREATE OR REPLACE PROCEDURE name_of(p_id BIGINT, OUT o_name VARCHAR(20), "
                "OUT o_n BIGINT) SELECT name, n INTO o_name, o_n FROM t WHERE id = p_id", NULL) < 0)
        return -1;
    if (db_exec("CREATE OR REPLACE PROCEDURE fail_deadlock() SIGNAL SQLSTATE '40001' "
                "SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'simulated deadlock'", NULL) < 0)
        return -1;
    return 0;
}

static int teardown(void)
{
    db_exec("DROP TABLE IF EXISTS t", NULL);
    db_close();
    return 0;
}

static void test_exec_and_query_roundtrip(void)
{
    const unsigned char bin[4] = {0, 1, 0xff, 0};
    CU_ASSERT_EQUAL(db_exec("DELETE FROM t", NULL) >= 0, 1);
    CU_ASSERT_EQUAL(db_exec("INSERT INTO t (id, name, bin, n) VALUES (?, ?, ?, ?)", "isbi",
                            (int64_t)1, "caf\xc3\xa9", bin, sizeof bin, (int64_t)-5), 1);
    CU_ASSERT_EQUAL(db_exec("INSERT INTO t (id, name, bin, n) VALUES (?, ?, ?, ?)", "isbi",
                            (int64_t)2, NULL, bin, (size_t)0, (int64_t)9000000000LL), 1);
    db_res *r = db_query("SELECT id, name, bin, n FROM t WHERE id >= ? ORDER BY id", "i", (int64_t)1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(db_rows(r), 2);
    CU_ASSERT_EQUAL(db_int(r, 0, 0), 1);
    CU_ASSERT_STRING_EQUAL(db_str(r, 0, 1), "caf\xc3\xa9");
    CU_ASSERT_EQUAL(db_len(r, 0, 2), 4);
    CU_ASSERT_EQUAL(memcmp(db_str(r, 0, 2), bin, 4), 0);
    CU_ASSERT_EQUAL(db_int(r, 0, 3), -5);
    CU_ASSERT_TRUE(db_null(r, 1, 1));
    CU_ASSERT_EQUAL(db_int(r, 1, 3), 9000000000LL);
    CU_ASSERT_PTR_NULL(db_str(r, 5, 0));      /* out of range is NULL, not a crash */
    db_free(r);

    /* (id, n) pairs, as the sweep and the expired list read them; at most max. */
    int64_t a[2] = {0, 0}, b[2] = {0, 0};
    CU_ASSERT_EQUAL(db_int_pairs(db_query("SELECT id, n FROM t ORDER BY id", NULL), a, b, 1), 1);
    CU_ASSERT_TRUE(a[0] == 1 && b[0] == -5 && a[1] == 0);
    CU_ASSERT_EQUAL(db_int_pairs(db_query("SELECT id, n FROM t ORDER BY id", NULL), a, b, 2), 2);
    CU_ASSERT_TRUE(a[1] == 2 && b[1] == 9000000000LL);
    CU_ASSERT_EQUAL(db_int_pairs(NULL, a, b, 2), DB_ERROR);
}

static void test_duplicate_key_is_conflict(void)
{
    CU_ASSERT_EQUAL(db_exec("INSERT INTO t (id, name) VALUES (?, ?)", "is", (int64_t)10, "dup"), 1);
    CU_ASSERT_EQUAL(db_exec("INSERT INTO t (id, name) VALUES (?, ?)", "is", (int64_t)11, "dup"), DB_CONFLICT);
    CU_ASSERT_EQUAL(db_errno(), 1062);
    CU_ASSERT_FALSE(db_retryable());
}

/* One statement per DB_IDS_MAX ids: every listed row once, no other row,
 * whatever the count (a chunk padded with its last id counts that row once). */
static void test_ids_lists_touch_each_listed_row_once(void)
{
    CU_ASSERT_EQUAL(db_exec("DELETE FROM t WHERE id BETWEEN 100 AND 199", NULL) >= 0, 1);
    for (int64_t id = 100; id < 150; id++)
        CU_ASSERT_EQUAL_FATAL(db_exec("INSERT INTO t (id, n) VALUES (?, 0)", "i", id), 1);
    int64_t ids[40];
    for (int i = 0; i < 40; i++)
        ids[i] = 100 + 40 - 1 - i;        /* 139 down to 100: order does not matter */
    const char *sql = "UPDATE t SET n = n + 1 WHERE id IN " DB_IDS;
    CU_ASSERT_EQUAL(db_exec_ids(sql, ids, 0), 0);
    CU_ASSERT_EQUAL(db_exec_ids(sql, ids, 1), 1);          /* 139 */
    CU_ASSERT_EQUAL(db_exec_ids(sql, ids, 40), 40);        /* 16 + 16 + 8 padded */
    db_res *r = db_query("SELECT id, n FROM t WHERE id BETWEEN 100 AND 149 ORDER BY id", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(db_rows(r), 50);
    for (int i = 0; i < db_rows(r); i++) {
        int64_t id = db_int(r, i, 0), want = id == 139 ? 2 : id < 140 ? 1 : 0;
        if (db_int(r, i, 1) != want)
            CU_FAIL("a row updated the wrong number of times");
    }
    db_free(r);
    /* A query over a short chunk: each matched row once. */
    r = db_query_ids("SELECT id, n FROM t WHERE id IN " DB_IDS " ORDER BY id", ids, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(db_rows(r), 3);
    CU_ASSERT_EQUAL(db_int(r, 0, 0), 137);
    CU_ASSERT_EQUAL(db_int(r, 2, 0), 139);
    CU_ASSERT_EQUAL(db_int(r, 2, 1), 2);
    db_free(r);
    CU_ASSERT_PTR_NULL(db_query_ids("SELECT id FROM t WHERE id IN " DB_IDS, ids, 0));
    CU_ASSERT_PTR_NULL(db_query_ids("SELECT id FROM t WHERE id IN " DB_IDS, ids, DB_IDS_MAX + 1));
    /* An error in a chunk is the caller's error. */
    CU_ASSERT_EQUAL(db_exec_ids("UPDATE no_such_table SET n = 1 WHERE id IN " DB_IDS, ids, 3),
                    DB_ERROR);
}

/* A prepared CALL answers its OUT parameters as one row, then a status the
 * connection must read before its next statement. */
static void test_call_answers_out_parameters(void)
{
    CU_ASSERT_EQUAL(db_exec("DELETE FROM t WHERE id = ?", "i", (int64_t)30) >= 0, 1);
    CU_ASSERT_EQUAL(db_exec("INSERT INTO t (id, name, n) VALUES (?, ?, ?)", "isi",
                            (int64_t)30, "thirty", (int64_t)42), 1);
    for (int round = 0; round < 2; round++) {     /* the cached statement, twice */
        db_res *r = db_query("CALL name_of(?, ?, ?)", "iss", (int64_t)30, NULL, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT_EQUAL(db_rows(r), 1);
        CU_ASSERT_STRING_EQUAL(db_str(r, 0, 0), "thirty");
        CU_ASSERT_EQUAL(db_int(r, 0, 1), 42);
        db_free(r);
        r = db_query("SELECT n FROM t WHERE id = ?", "i", (int64_t)30);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);            /* not "commands out of sync" */
        CU_ASSERT_EQUAL(db_int(r, 0, 0), 42);
        db_free(r);
    }
    db_res *r = db_query("CALL name_of(?, ?, ?)", "iss", (int64_t)31, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);                /* no such row: NULL answers */
    CU_ASSERT_TRUE(db_null(r, 0, 0));
    db_free(r);
}

static void test_bad_parameter_count_fails(void)
{
    CU_ASSERT_EQUAL(db_exec("UPDATE t SET n = ? WHERE id = ?", "i", (int64_t)1), DB_ERROR);
    CU_ASSERT_PTR_NULL(db_query("SELECT no_such_column FROM t", NULL));
}

static int attempts;

/* Kills the DB layer's connection from another one, so that the layer
 * learns of it only at its next statement (a server gone mid-COMMIT). */
static void kill_from_outside(void)
{
    db_res *r = db_query("SELECT CONNECTION_ID()", NULL);
    int64_t id = r && db_rows(r) == 1 ? db_int(r, 0, 0) : -1;
    db_free(r);
    MYSQL *c = mysql_init(NULL);
    if (!c || id < 0 ||
        !mysql_real_connect(c, "localhost", "tester", "tester-pw", NULL, 0,
                            getenv("SHOP_TEST_DB_SOCKET"), 0)) {
        CU_FAIL("cannot open a second connection");
    } else {
        char sql[64];
        snprintf(sql, sizeof sql, "KILL CONNECTION %lld", (long long)id);
        CU_ASSERT_EQUAL(mysql_query(c, sql), 0);
    }
    if (c)
        mysql_close(c);
}

static int tx_insert_then(void *arg)
{
    int outcome = *(int *)arg;
    attempts++;
    if (db_exec("INSERT INTO t (id, name) VALUES (?, ?)", "is", (int64_t)100, "tx") < 0)
        return DB_ERROR;
    if (outcome == 1 && attempts == 1 && db_exec("CALL fail_deadlock()", NULL) < 0)
        return DB_ERROR;                       /* retried: the insert is rolled back */
    if (outcome == 2 && attempts == 1) {
        db_exec("KILL CONNECTION_ID()", NULL); /* the connection dies mid-transaction */
        return DB_ERROR;
    }
    if (outcome == 3 && attempts == 1)
        kill_from_outside();                   /* the COMMIT that follows gets no answer */
    if (outcome == 4) {
        kill_from_outside();                   /* every attempt's: the first one's */
        if (attempts > 1)                      /* statements never run again */
            return DB_ERROR;
    }
    if (outcome == 5) {
        db_exec("KILL CONNECTION_ID()", NULL); /* the connection dies; the error */
        db_exec("INSERT INTO t (id, name) VALUES (?, ?)", "is", (int64_t)101, "tx2");
        return -10;                            /* ignored, the next statement runs */
    }
    if (outcome == -10)
        return -10;                            /* a business "no": roll back */
    return 7;
}

static int64_t count_tx_rows(void)
{
    return test_db_count("SELECT COUNT(*) FROM t WHERE id = 100");
}

static void test_tx_commits(void)
{
    int outcome = 0;
    db_exec("DELETE FROM t WHERE id = 100", NULL);
    attempts = 0;
    CU_ASSERT_EQUAL(db_tx(tx_insert_then, &outcome), 7);
    CU_ASSERT_EQUAL(attempts, 1);
    CU_ASSERT_EQUAL(count_tx_rows(), 1);
}

static void test_tx_business_outcome_rolls_back(void)
{
    int outcome = -10;
    db_exec("DELETE FROM t WHERE id = 100", NULL);
    attempts = 0;
    CU_ASSERT_EQUAL(db_tx(tx_insert_then, &outcome), -10);
    CU_ASSERT_EQUAL(attempts, 1);
    CU_ASSERT_EQUAL(count_tx_rows(), 0);
}

static int hooked;
static void count_hook(void) { hooked++; }

static void test_tx_retries_whole_transaction_on_deadlock(void)
{
    int outcome = 1;
    db_exec("DELETE FROM t WHERE id = 100", NULL);
    attempts = 0;
    hooked = 0;
    db_on_retry(count_hook);            /* what server.c wires to metrics */
    uint64_t before = db_retry_count();
    CU_ASSERT_EQUAL(db_tx(tx_insert_then, &outcome), 7);
    db_on_retry(NULL);
    CU_ASSERT_EQUAL(attempts, 2);
    CU_ASSERT_EQUAL(db_retry_count(), before + 1);
    CU_ASSERT_EQUAL(hooked, 1);
    CU_ASSERT_EQUAL(count_tx_rows(), 1);       /* exactly once, not twice */
}

/* A statement after the transaction's connection died fails: it does not
 * reconnect and run outside the transaction, committed on its own. */
static void test_tx_never_reconnects_in_the_middle(void)
{
    int outcome = 5;
    db_exec("DELETE FROM t WHERE id IN (100, 101)", NULL);
    attempts = 0;
    CU_ASSERT_EQUAL(db_tx(tx_insert_then, &outcome), -10);
    CU_ASSERT_EQUAL(attempts, 1);
    CU_ASSERT_EQUAL(test_db_count("SELECT COUNT(*) FROM t WHERE id IN (100, 101)"), 0);
    CU_ASSERT_TRUE(db_ping());
}

static void test_tx_retries_after_lost_connection(void)
{
    int outcome = 2;
    db_exec("DELETE FROM t WHERE id = 100", NULL);
    attempts = 0;
    CU_ASSERT_EQUAL(db_tx(tx_insert_then, &outcome), 7);
    CU_ASSERT_EQUAL(attempts, 2);
    CU_ASSERT_EQUAL(count_tx_rows(), 1);
    CU_ASSERT_TRUE(db_ping());
}

/* A COMMIT without an answer leaves the outcome unknown until a later
 * attempt runs the statements again (and so sees what landed). */
static void test_tx_commit_without_answer(void)
{
    int outcome = 3;
    db_exec("DELETE FROM t WHERE id = 100", NULL);
    attempts = 0;
    CU_ASSERT_EQUAL(db_tx(tx_insert_then, &outcome), 7);
    CU_ASSERT_EQUAL(attempts, 2);
    CU_ASSERT_FALSE(db_tx_outcome_unknown());
    CU_ASSERT_EQUAL(count_tx_rows(), 1);

    outcome = 4;
    db_exec("DELETE FROM t WHERE id = 100", NULL);
    attempts = 0;
    CU_ASSERT_EQUAL(db_tx(tx_insert_then, &outcome), DB_UNAVAILABLE);
    CU_ASSERT_TRUE(attempts > 2);
    CU_ASSERT_TRUE(db_tx_outcome_unknown());
    outcome = 0;
    CU_ASSERT_TRUE(db_tx(tx_insert_then, &outcome) == 7 || count_tx_rows() == 1);
    CU_ASSERT_FALSE(db_tx_outcome_unknown());          /* each db_tx starts clean */
    CU_ASSERT_TRUE(db_ping());
}

static void test_unreachable_is_unavailable(void)
{
    int outcome = 0;
    db_close();
    setenv("SHOP_DB_SOCKET", "/nonexistent/socket", 1);
    CU_ASSERT_EQUAL(db_init(), 0);
    attempts = 0;
    CU_ASSERT_EQUAL(db_tx(tx_insert_then, &outcome), DB_UNAVAILABLE);
    CU_ASSERT_EQUAL(attempts, 0);
    CU_ASSERT_FALSE(db_ping());
    setenv("SHOP_DB_SOCKET", getenv("SHOP_TEST_DB_SOCKET"), 1);
    CU_ASSERT_EQUAL(db_init(), 0);
    CU_ASSERT_TRUE(db_ping());
}

/* CONNECTION_ID() of the connection db_read / db_query use (-1: failed). */
static int64_t read_conn_id(bool reader)
{
    db_res *r = reader ? db_read("SELECT CONNECTION_ID()", NULL)
                       : db_query("SELECT CONNECTION_ID()", NULL);
    int64_t id = r && db_rows(r) == 1 ? db_int(r, 0, 0) : -1;
    db_free(r);
    return id;
}

/* Points the reader at `socket` (NULL: no reader) and reconnects both. */
static void use_reader(const char *socket)
{
    db_close();
    if (socket)
        setenv("SHOP_DB_READ_SOCKET", socket, 1);
    else
        unsetenv("SHOP_DB_READ_SOCKET");
    CU_ASSERT_EQUAL_FATAL(db_init(), 0);
}

static void test_read_goes_to_a_read_only_second_connection(void)
{
    use_reader(getenv("SHOP_TEST_DB_SOCKET"));
    int64_t writer = read_conn_id(false), reader = read_conn_id(true);
    CU_ASSERT_TRUE(writer > 0 && reader > 0);
    CU_ASSERT_NOT_EQUAL(writer, reader);
    CU_ASSERT_EQUAL(read_conn_id(true), reader);     /* kept, not reconnected */
    /* (Not in one statement with COUNT(*): MariaDB 10.11 answers 0 there.) */
    db_res *r = db_read("SELECT @@session.tx_read_only", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(db_int(r, 0, 0), 1);
    db_free(r);
    r = db_read("SELECT COUNT(*) FROM t WHERE id = ?", "i", (int64_t)10);
    CU_ASSERT_EQUAL(db_int(r, 0, 0), 1);             /* sees the writer's row */
    db_free(r);
    r = db_query("SELECT @@session.tx_read_only", NULL);
    CU_ASSERT_EQUAL(db_int(r, 0, 0), 0);
    db_free(r);
    use_reader(NULL);
    CU_ASSERT_EQUAL(read_conn_id(true), read_conn_id(false));   /* none configured */
}

static void test_read_falls_back_to_the_writer_when_reader_is_down(void)
{
    use_reader("/nonexistent/socket");
    int64_t writer = read_conn_id(false);
    CU_ASSERT_TRUE(writer > 0);
    CU_ASSERT_EQUAL(read_conn_id(true), writer);
    CU_ASSERT_EQUAL(read_conn_id(true), writer);
    use_reader(NULL);
}

static void test_read_survives_a_killed_reader_and_returns_to_it(void)
{
    use_reader(getenv("SHOP_TEST_DB_SOCKET"));
    int64_t writer = read_conn_id(false), reader = read_conn_id(true);
    CU_ASSERT_TRUE(reader > 0 && reader != writer);
    CU_ASSERT_TRUE(db_exec("KILL CONNECTION ?", "i", reader) >= 0);
    int64_t next = read_conn_id(true);
    CU_ASSERT_TRUE(next > 0);                        /* answered by someone */
    usleep(1100 * 1000);                             /* past the reader's pause */
    next = read_conn_id(true);
    CU_ASSERT_TRUE(next > 0 && next != writer && next != reader);
    use_reader(NULL);
}

static int tx_read(void *arg)
{
    *(int64_t *)arg = read_conn_id(true);
    return 0;
}

static void test_read_inside_a_transaction_uses_the_writer(void)
{
    use_reader(getenv("SHOP_TEST_DB_SOCKET"));
    int64_t writer = read_conn_id(false), in_tx = 0;
    CU_ASSERT_NOT_EQUAL(read_conn_id(true), writer);
    CU_ASSERT_EQUAL(db_tx(tx_read, &in_tx), 0);
    CU_ASSERT_EQUAL(in_tx, writer);
    use_reader(NULL);
}

/* db_purge: batches of `batch` rows, each its own transaction, at most
 * max_batches per call, stopping at the first batch that is not full. */
static void test_purge_deletes_in_bounded_batches(void)
{
    static const char sql[] = "DELETE FROM purge_t WHERE n < ? ORDER BY n LIMIT ?";
    CU_ASSERT_EQUAL_FATAL(db_exec("CREATE OR REPLACE TABLE purge_t (id BIGINT PRIMARY KEY,"
                                  " n BIGINT, KEY (n))", NULL) >= 0, 1);
    for (int64_t i = 1; i <= 7; i++)
        CU_ASSERT_EQUAL(db_exec("INSERT INTO purge_t (id, n) VALUES (?, ?)", "ii", i, i), 1);
    /* Rows with n < 6: five.  One batch of two per call at most. */
    CU_ASSERT_EQUAL(db_purge(sql, 6, 2, 1), 2);
    db_res *r = db_query("SELECT MIN(n), COUNT(*) FROM purge_t", "");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(db_int(r, 0, 0), 3);        /* the oldest went first */
    CU_ASSERT_EQUAL(db_int(r, 0, 1), 5);
    db_free(r);
    /* Two full batches, then a short one ends the call before max_batches. */
    CU_ASSERT_EQUAL(db_purge(sql, 6, 2, 10), 3);
    CU_ASSERT_EQUAL(db_purge(sql, 6, 2, 10), 0);
    r = db_query("SELECT COUNT(*) FROM purge_t", "");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(db_int(r, 0, 0), 2);        /* n = 6 and 7 are kept */
    db_free(r);
    db_exec("DROP TABLE purge_t", NULL);
    /* A failing statement is an error, not a count. */
    CU_ASSERT_TRUE(db_purge("DELETE FROM no_such_table WHERE n < ? LIMIT ?", 1, 2, 1) < 0);
}

int main(void)
{
    if (!getenv("SHOP_TEST_DB_SOCKET")) {
        fprintf(stderr, "test_db needs a database: run it under scripts/with-test-db\n");
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("db", setup, teardown);
    CU_add_test(s, "exec and query roundtrip", test_exec_and_query_roundtrip);
    CU_add_test(s, "duplicate key is conflict", test_duplicate_key_is_conflict);
    CU_add_test(s, "id lists touch each listed row once", test_ids_lists_touch_each_listed_row_once);
    CU_add_test(s, "bad parameter count fails", test_bad_parameter_count_fails);
    CU_add_test(s, "call answers out parameters", test_call_answers_out_parameters);
    CU_add_test(s, "tx commits", test_tx_commits);
    CU_add_test(s, "purge deletes in bounded batches", test_purge_deletes_in_bounded_batches);
    CU_add_test(s, "tx business outcome rolls back", test_tx_business_outcome_rolls_back);
    CU_add_test(s, "tx retries whole transaction on deadlock", test_tx_retries_whole_transaction_on_deadlock);
    CU_add_test(s, "tx retries after lost connection", test_tx_retries_after_lost_connection);
    CU_add_test(s, "tx never reconnects in the middle", test_tx_never_reconnects_in_the_middle);
    CU_add_test(s, "tx: a COMMIT without an answer", test_tx_commit_without_answer);
    CU_add_test(s, "unreachable is unavailable", test_unreachable_is_unavailable);
    CU_add_test(s, "read goes to a read-only second connection",
                test_read_goes_to_a_read_only_second_connection);
    CU_add_test(s, "read falls back to the writer when the reader is down",
                test_read_falls_back_to_the_writer_when_reader_is_down);
    CU_add_test(s, "read survives a killed reader and returns to it",
                test_read_survives_a_killed_reader_and_returns_to_it);
    CU_add_test(s, "read inside a transaction uses the writer",
                test_read_inside_a_transaction_uses_the_writer);
    return cunit_run_all();
}
