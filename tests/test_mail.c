/* test_mail.c: the notification email's text: headers, the order's lines
 * and total, control characters kept out of the message, and refusals for
 * what it cannot describe.  Sending to a relay that is not there fails. */
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include "cunit_main.h"
#include "mail.h"

static const char ORDER[] =
    "{\"order_id\":42,\"user_id\":7,\"status\":\"confirmed\",\"items\":["
    "{\"product_id\":1,\"sku\":\"MUG-1\",\"name\":\"Blue mug\",\"unit_price_cents\":1250,"
    "\"quantity\":2,\"line_total_cents\":2500},"
    "{\"product_id\":2,\"sku\":\"TEA-9\",\"name\":\"Gr\\u00fcner Tee\\r\\nBcc: x@evil\","
    "\"unit_price_cents\":5,\"quantity\":1,\"line_total_cents\":5}],"
    "\"total_cents\":2505,\"currency\":\"EUR\",\"created_at\":\"2026-11-28T10:00:00.000Z\"}";

static const time_t NOW = 1800000000;   /* Fri, 15 Jan 2027 08:00:00 +0000 */

static void test_confirmed(void)
{
    json_object *o = json_tokener_parse(ORDER);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    char *m = mail_format_order("order.confirmed", o, "order-17", "shop@shop.local",
                                "ann@example.org", "Ann", NOW);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "From: shop <shop@shop.local>\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "To: <ann@example.org>\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "Subject: Your order 42 is confirmed\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "Date: Fri, 15 Jan 2027 08:00:00 +0000\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "Message-ID: <order-17@shop.local>\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "Content-Type: text/plain; charset=utf-8\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "Content-Transfer-Encoding: 8bit\r\n\r\nHello Ann,\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "Order 42 is confirmed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "  2 x Blue mug (MUG-1) at 12.50 EUR: 25.00 EUR\r\n"));
    /* The name's CR LF became spaces: no header can be smuggled in. */
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "  1 x Gr\xc3\xbcner Tee  Bcc: x@evil (TEA-9) at 0.05 EUR: 0.05 EUR\r\n"));
    CU_ASSERT_PTR_NULL(strstr(m, "\r\nBcc:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "\r\nTotal: 25.05 EUR\r\n"));
    /* Every line ends CRLF: no bare LF. */
    for (const char *p = m; (p = strchr(p, '\n')); p++)
        CU_ASSERT(p > m && p[-1] == '\r');
    free(m);
    json_object_put(o);
}

static void test_cancelled(void)
{
    json_object *o = json_tokener_parse(ORDER);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    char *m = mail_format_order("order.cancelled", o, "order-18", "shop@shop.local",
                                "ann@example.org", NULL, NOW);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "Subject: Your order 42 is cancelled\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "\r\n\r\nHello,\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "order 42 has been cancelled"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "  2 x Blue mug (MUG-1) at 12.50 EUR: 25.00 EUR\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "Total: 25.05 EUR"));
    free(m);
    json_object_put(o);
}

static void test_refusals(void)
{
    json_object *o = json_tokener_parse(ORDER);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_PTR_NULL(mail_format_order("user.role_changed", o, "e1", "a@b.c", "d@e.f", NULL, NOW));
    CU_ASSERT_PTR_NULL(mail_format_order("order.confirmed", NULL, "e1", "a@b.c", "d@e.f", NULL, NOW));
    CU_ASSERT_PTR_NULL(mail_format_order("order.confirmed", o, "e1", "a@b.c",
                                         "d@e.f\r\nRCPT TO:<x@y.z>", NULL, NOW));
    CU_ASSERT_PTR_NULL(mail_format_order("order.confirmed", o, "e1", "a@b.c", "nobody", NULL, NOW));
    CU_ASSERT_PTR_NULL(mail_format_order("order.confirmed", o, "e1>x", "a@b.c", "d@e.f", NULL, NOW));
    json_object_object_del(o, "total_cents");
    CU_ASSERT_PTR_NULL(mail_format_order("order.confirmed", o, "e1", "a@b.c", "d@e.f", NULL, NOW));
    json_object_put(o);
    o = json_tokener_parse("{\"order_id\":1,\"total_cents\":1,\"currency\":\"EUR\",\"items\":[{\"sku\":\"A\"}]}");
    CU_ASSERT_PTR_NULL(mail_format_order("order.confirmed", o, "e1", "a@b.c", "d@e.f", NULL, NOW));
    json_object_put(o);
    CU_ASSERT_TRUE(mail_address_ok("ann.b+x@example.org"));
    CU_ASSERT_FALSE(mail_address_ok("ann@@example.org"));
    CU_ASSERT_FALSE(mail_address_ok("<ann@example.org>"));
    CU_ASSERT_FALSE(mail_address_ok("ann @example.org"));
    CU_ASSERT_FALSE(mail_address_ok(NULL));
}

static void test_send_without_relay_fails(void)
{
    /* Port 1 on loopback: nothing listens; the send must say so. */
    CU_ASSERT_EQUAL(mail_send("smtp://127.0.0.1:1", "a@b.c", "d@e.f", "Subject: x\r\n\r\nx\r\n"), -1);
    CU_ASSERT_EQUAL(mail_send("http://127.0.0.1:1", "a@b.c", "d@e.f", "x"), -1);
    CU_ASSERT_EQUAL(mail_send("smtp://127.0.0.1:1", "a@b.c", "bad", "x"), -1);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("mail", NULL, NULL);
    CU_add_test(s, "confirmed order", test_confirmed);
    CU_add_test(s, "cancelled order", test_cancelled);
    CU_add_test(s, "refusals", test_refusals);
    CU_add_test(s, "send without a relay fails", test_send_without_relay_fails);
    return cunit_run_all();
}
