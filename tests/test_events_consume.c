/* test_events_consume.c: the consumer framework's reading of a delivery
 * (events/consume.c): what counts as a CloudEvent, what a handler is given,
 * and what is refused (then dead-lettered, never handed to a handler). */
#include <string.h>
#include <CUnit/Basic.h>
#include "cunit_main.h"
#include "consume.h"

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

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("consume", NULL, NULL);
    CU_add_test(s, "parses a structured CloudEvent", test_parses_a_structured_cloudevent);
    CU_add_test(s, "optional attributes default to empty", test_optional_attributes_default_to_empty);
    CU_add_test(s, "refuses what is no CloudEvent", test_refuses_what_is_no_cloudevent);
    return cunit_run_all();
}
