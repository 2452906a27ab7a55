/* test_events_consume.c: the consumer framework's reading of a delivery
 * (events/consume.c): what counts as a CloudEvent, what a handler is given,
 * and what is refused (then dead-lettered, never handed to a handler); and
 * a batch handler's one transaction, against a real MariaDB
 * (scripts/with-test-db): all of a batch commits, or none of it; and the
 * dedupe rows of a batch, which tell a batch with a repeated event. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include "cunit_main.h"
#include "consume.h"
#include "db.h"
#include "test_db_env.h"

static int parse(const char *s, event *ev, json_object **root)
{
    char why[96];
    return consume_parse(s, strlen(s), ev, root, why, sizeof why);
}

static void test_parses_a_structured_cloudevent(void)
{
    event ev;
    json_object *root = NULL;
    const char *s = "{\"specversion\":\"1.0\",\"id\":\"order-42\",\"source\":\"/shop/order\","
                    "\"type\":\"order.confirmed\",\"time\":\"2026-11-28T14:41:43.155Z\","
                    "\"subject\":\"7\",\"datacontenttype\":\"application/json\","
                    "\"data\":{\"order_id\":7,\"reservation_id\":99}}";
    CU_ASSERT_EQUAL_FATAL(parse(s, &ev, &root), 0);
    CU_ASSERT_STRING_EQUAL(ev.id, "order-42");
    CU_ASSERT_STRING_EQUAL(ev.source, "/shop/order");
    CU_ASSERT_STRING_EQUAL(ev.type, "order.confirmed");
    CU_ASSERT_STRING_EQUAL(ev.time, "2026-11-28T14:41:43.155Z");
    CU_ASSERT_STRING_EQUAL(ev.subject, "7");
    json_object *rid;
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev.data);
    CU_ASSERT_TRUE(json_object_object_get_ex(ev.data, "reservation_id", &rid));
    CU_ASSERT_EQUAL(json_object_get_int64(rid), 99);
    json_object_put(root);
}

static void test_optional_attributes_default_to_empty(void)
{
    event ev;
    json_object *root = NULL;
    CU_ASSERT_EQUAL_FATAL(parse("{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"/x\","
                                "\"type\":\"t\"}", &ev, &root), 0);
    CU_ASSERT_STRING_EQUAL(ev.time, "");
    CU_ASSERT_STRING_EQUAL(ev.subject, "");
    CU_ASSERT_PTR_NULL(ev.data);
    json_object_put(root);
}

static void test_refuses_what_is_no_cloudevent(void)
{
    const char *bad[] = {
        "not json",
        "[1,2]",
        "{\"id\":\"a\",\"source\":\"/x\",\"type\":\"t\"}",                          /* no specversion */
        "{\"specversion\":\"0.3\",\"id\":\"a\",\"source\":\"/x\",\"type\":\"t\"}",
        "{\"specversion\":\"1.0\",\"source\":\"/x\",\"type\":\"t\"}",                /* no id */
        "{\"specversion\":\"1.0\",\"id\":\"\",\"source\":\"/x\",\"type\":\"t\"}",
        "{\"specversion\":\"1.0\",\"id\":\"a\",\"type\":\"t\"}",                     /* no source */
        "{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"/x\"}",                  /* no type */
        "{\"specversion\":\"1.0\",\"id\":7,\"source\":\"/x\",\"type\":\"t\"}",       /* id not a string */
        "{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"/x\",\"type\":\"t\"} x", /* trailing bytes */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        event ev;
        json_object *root = (json_object *)1;
        CU_ASSERT_EQUAL(parse(bad[i], &ev, &root), -1);
        CU_ASSERT_PTR_NULL(root);
        CU_ASSERT_PTR_NULL(ev.id);
    }
    /* An id longer than the dedupe table's key. */
    char s[400];
    char id[200];
    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    snprintf(s, sizeof s, "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":\"/x\",\"type\":\"t\"}", id);
    event ev;
    json_object *root = NULL;
    CU_ASSERT_EQUAL(parse(s, &ev, &root), -1);
}

static int db_setup(void)
{
    if (test_db_connect() != 0)
        return -1;
    if (db_exec("CREATE OR REPLACE TABLE processed_events (id VARCHAR(128) CHARACTER SET ascii"
                " COLLATE ascii_bin NOT NULL PRIMARY KEY, processed_at DATETIME(3) NOT NULL)",
                NULL) < 0)
        return -1;
    return db_exec("CREATE OR REPLACE TABLE batch_t (id BIGINT PRIMARY KEY)", NULL) < 0 ? -1 : 0;
}

static int db_teardown(void)
{
    db_exec("DROP TABLE IF EXISTS batch_t", NULL);
    db_exec("DROP TABLE IF EXISTS processed_events", NULL);
    db_close();
    return 0;
}

typedef struct item {
    int64_t id;
    int refuse;             /* apply fails on it, as a poison event's would */
} item;

static int put(void *p)
{
    item *it = p;
    if (it->refuse)
        return DB_ERROR;
    return db_exec("INSERT INTO batch_t (id) VALUES (?)", "i", it->id) == 1 ? DB_OK : DB_ERROR;
}

static int64_t rows(void)
{
    return test_db_count("SELECT COUNT(*) FROM batch_t");
}

static void test_a_batch_commits_whole_or_not_at_all(void)
{
    item ok[3] = {{1, 0}, {2, 0}, {3, 0}};
    CU_ASSERT_TRUE(consume_in_one_tx(ok, 3, sizeof ok[0], put) >= 0);
    CU_ASSERT_EQUAL(rows(), 3);
    item poisoned[3] = {{4, 0}, {5, 1}, {6, 0}};
    CU_ASSERT_TRUE(consume_in_one_tx(poisoned, 3, sizeof poisoned[0], put) < 0);
    CU_ASSERT_EQUAL(rows(), 3);          /* 4 rolled back, 6 never tried */
    CU_ASSERT_TRUE(consume_in_one_tx(poisoned, 1, sizeof poisoned[0], put) >= 0);
    CU_ASSERT_EQUAL(rows(), 4);          /* 4 alone goes through */
}

static int64_t processed(const char *id)
{
    db_res *r = db_query("SELECT COUNT(*) FROM processed_events WHERE id = ?", "s", id);
    int64_t n = r && db_rows(r) == 1 ? db_int(r, 0, 0) : -1;
    db_free(r);
    return n;
}

static void test_dedupe_rows_of_a_batch(void)
{
    char buf[20][16];
    const char *ids[20];
    for (int i = 0; i < 20; i++) {
        snprintf(buf[i], sizeof buf[i], "ev-%d", i);
        ids[i] = buf[i];
    }
    CU_ASSERT_EQUAL(consume_dedupe(ids, 0), DB_OK);
    /* 20 new ids: every row written once. */
    CU_ASSERT_EQUAL(consume_dedupe(ids, 20), DB_OK);
    CU_ASSERT_EQUAL(test_db_count("SELECT COUNT(*) FROM processed_events"), 20);
    for (int i = 0; i < 20; i++)
        CU_ASSERT_EQUAL(processed(ids[i]), 1);
    /* A batch with one id seen before: a conflict, and nothing written of
     * it; one at a time then tells the new one from the old one. */
    const char *again[3] = {"ev-new-1", "ev-7", "ev-new-2"};
    CU_ASSERT_EQUAL(consume_dedupe(again, 3), DB_CONFLICT);
    CU_ASSERT_EQUAL(processed("ev-new-1"), 0);
    CU_ASSERT_EQUAL(processed("ev-new-2"), 0);
    CU_ASSERT_EQUAL(consume_dedupe(again, 1), DB_OK);
    CU_ASSERT_EQUAL(consume_dedupe(again + 1, 1), DB_CONFLICT);
    CU_ASSERT_EQUAL(processed("ev-new-1"), 1);
    CU_ASSERT_EQUAL(processed("ev-7"), 1);
    /* An id the column cannot hold is an error, not a conflict, and
     * nothing of its batch is written: one outside ASCII, one too long,
     * one holding a quote and a backslash (JSON escapes, kept as sent). */
    char longer[200];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    const char *bad[2] = {"ev-ok", "ev-caf\xc3\xa9"};
    CU_ASSERT_EQUAL(consume_dedupe(bad, 2), DB_ERROR);
    const char *big[2] = {"ev-ok", longer};
    CU_ASSERT_EQUAL(consume_dedupe(big, 2), DB_ERROR);
    CU_ASSERT_EQUAL(processed("ev-ok"), 0);
    const char *odd[1] = {"ev-\"q\"\\/\t"};
    CU_ASSERT_EQUAL(consume_dedupe(odd, 1), DB_OK);
    CU_ASSERT_EQUAL(processed("ev-\"q\"\\/\t"), 1);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("consume", NULL, NULL);
    CU_add_test(s, "parses a structured CloudEvent", test_parses_a_structured_cloudevent);
    CU_add_test(s, "optional attributes default to empty", test_optional_attributes_default_to_empty);
    CU_add_test(s, "refuses what is no CloudEvent", test_refuses_what_is_no_cloudevent);
    CU_pSuite t = CU_add_suite("one transaction per batch", db_setup, db_teardown);
    CU_add_test(t, "a batch commits whole or not at all", test_a_batch_commits_whole_or_not_at_all);
    CU_add_test(t, "the dedupe rows of a batch", test_dedupe_rows_of_a_batch);
    return cunit_run_all();
}
