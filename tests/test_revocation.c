/* test_revocation.c: the revoke consumer's handling of user events against
 * a real list file: a role or password change voids the user's earlier
 * tokens (to the millisecond of changed_at), replays change nothing, bad
 * events are dead-lettered, other types ignored.  And changed_at parsing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include "cunit_main.h"
#include "revocation.h"
#include "revoke.h"

static char path[64];

static int handle(const char *type, const char *data_json)
{
    json_object *data = data_json ? json_tokener_parse(data_json) : NULL;
    event ev = {.id = "auth-1", .source = "/shop/auth", .type = type, .time = "", .subject = "7",
                .data = data};
    int rc = revocation_handle(&ev, NULL);
    json_object_put(data);
    return rc;
}

static void test_time_parse(void)
{
    CU_ASSERT_EQUAL(revocation_time_ms("1970-01-01T00:00:01.5Z"), 1500);
    CU_ASSERT_EQUAL(revocation_time_ms("2026-11-28T14:50:01.123Z"), 1795877401123LL);
    CU_ASSERT_EQUAL(revocation_time_ms("2026-11-28T14:50:01Z"), 1795877401000LL);
    CU_ASSERT_EQUAL(revocation_time_ms("2026-11-28T14:50:01.123456789Z"), 1795877401123LL);
    CU_ASSERT_EQUAL(revocation_time_ms("2026-11-28T14:50:01.123+01:00"), -1);
    CU_ASSERT_EQUAL(revocation_time_ms("2026-11-28 14:50:01.123Z"), -1);
    CU_ASSERT_EQUAL(revocation_time_ms("2026-13-28T14:50:01Z"), -1);
    CU_ASSERT_EQUAL(revocation_time_ms("2026-11-28T14:50:01.Z"), -1);
    CU_ASSERT_EQUAL(revocation_time_ms("+026-11-28T14:50:01Z"), -1);
    CU_ASSERT_EQUAL(revocation_time_ms(""), -1);
    CU_ASSERT_EQUAL(revocation_time_ms(NULL), -1);
}

static void test_events_void_earlier_tokens(void)
{
    strcpy(path, "/tmp/shop-test-revocation-XXXXXX");
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    setenv("SHOP_REVOKE_FILE", path, 1);
    setenv("SHOP_ACCESS_TTL", "900", 1);
    CU_ASSERT_EQUAL_FATAL(revocation_init(), 0);

    /* A change mid-second, later than the list's creation (a new list
     * voids every token issued before it was made). */
    int64_t at = (revoke_now_ms() / 1000 + 2) * 1000 + 250;
    char when[40], data[256];
    time_t s = (time_t)(at / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(data, sizeof data, "{\"user_id\":7,\"old_role\":\"seller\",\"new_role\":\"customer\","
             "\"changed_at\":\"%s.250Z\"}", when);
    CU_ASSERT_EQUAL(handle("user.role_changed", data), CONSUME_OK);
    CU_ASSERT_TRUE(revoke_is_revoked(7, NULL, at - 1));
    CU_ASSERT_FALSE(revoke_is_revoked(7, NULL, at));
    CU_ASSERT_FALSE(revoke_is_revoked(8, NULL, at - 1));
    /* The same event again: nothing changes. */
    CU_ASSERT_EQUAL(handle("user.role_changed", data), CONSUME_OK);
    CU_ASSERT_FALSE(revoke_is_revoked(7, NULL, at));

    snprintf(data, sizeof data, "{\"user_id\":8,\"changed_at\":\"%s.900Z\"}", when);
    CU_ASSERT_EQUAL(handle("user.password_changed", data), CONSUME_OK);
    CU_ASSERT_TRUE(revoke_is_revoked(8, NULL, at + 649));
    CU_ASSERT_FALSE(revoke_is_revoked(8, NULL, at + 650));

    /* A reused refresh token voids its login's tokens, not the user's
     * other logins'... */
    const char *sid = "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb", *other = "ccccccccccccccccdddddddddddddddd";
    snprintf(data, sizeof data, "{\"user_id\":11,\"session\":\"%s\",\"changed_at\":\"%s.100Z\","
             "\"reason\":\"refresh_token_reused\"}", sid, when);
    CU_ASSERT_EQUAL(handle("user.tokens_revoked", data), CONSUME_OK);
    CU_ASSERT_TRUE(revoke_is_revoked(11, sid, at - 151));
    CU_ASSERT_FALSE(revoke_is_revoked(11, sid, at - 150));
    CU_ASSERT_FALSE(revoke_is_revoked(11, other, at - 151));
    CU_ASSERT_FALSE(revoke_is_revoked(11, NULL, at - 151));
    /* ...and without a session (an event from before sessions were named)
     * all of the user's. */
    snprintf(data, sizeof data, "{\"user_id\":10,\"changed_at\":\"%s.100Z\","
             "\"reason\":\"refresh_token_reused\"}", when);
    CU_ASSERT_EQUAL(handle("user.tokens_revoked", data), CONSUME_OK);
    CU_ASSERT_TRUE(revoke_is_revoked(10, NULL, at - 151));
    CU_ASSERT_TRUE(revoke_is_revoked(10, other, at - 151));
    CU_ASSERT_FALSE(revoke_is_revoked(10, NULL, at - 150));
    snprintf(data, sizeof data, "{\"user_id\":12,\"session\":\"ABC\",\"changed_at\":\"%s.100Z\"}", when);
    CU_ASSERT_EQUAL(handle("user.tokens_revoked", data), CONSUME_DEAD);
    snprintf(data, sizeof data, "{\"user_id\":12,\"session\":7,\"changed_at\":\"%s.100Z\"}", when);
    CU_ASSERT_EQUAL(handle("user.tokens_revoked", data), CONSUME_DEAD);

    /* Unusable events go to the dead-letter queue; others are not ours. */
    CU_ASSERT_EQUAL(handle("user.role_changed", "{\"user_id\":7}"), CONSUME_DEAD);
    CU_ASSERT_EQUAL(handle("user.role_changed", "{\"user_id\":\"7\",\"changed_at\":\"2026-11-28T14:50:01Z\"}"),
                    CONSUME_DEAD);
    CU_ASSERT_EQUAL(handle("user.password_changed", "{\"user_id\":7,\"changed_at\":\"yesterday\"}"),
                    CONSUME_DEAD);
    CU_ASSERT_EQUAL(handle("user.password_changed", NULL), CONSUME_DEAD);
    CU_ASSERT_EQUAL(handle("order.confirmed", "{\"order_id\":1}"), CONSUME_OK);
    /* A change older than any live token is acknowledged and not stored. */
    CU_ASSERT_EQUAL(handle("user.password_changed", "{\"user_id\":9,\"changed_at\":\"2001-01-01T00:00:00Z\"}"),
                    CONSUME_OK);
    CU_ASSERT_FALSE(revoke_is_revoked(9, NULL, at));
    revoke_close();
    unlink(path);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("revocation", NULL, NULL);
    CU_add_test(s, "changed_at parsing", test_time_parse);
    CU_add_test(s, "events void earlier tokens", test_events_void_earlier_tokens);
    return cunit_run_all();
}
