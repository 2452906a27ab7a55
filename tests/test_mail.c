/* test_mail.c: the notification email's text: headers, the order's lines
 * and total, control characters kept out of the message, and refusals for
 * what it cannot describe.  Sending to a relay that is not there fails; to
 * a relay that is (a minimal SMTP server forked here), several emails share
 * one session, and one that the relay closed is replaced without losing
 * the email. */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
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

/* Amounts in the currency's own minor units (ISO 4217), as the API counts
 * them: 0 digits for JPY, 3 for KWD, 4 for CLF. */
static void test_minor_units(void)
{
    static const struct { const char *currency, *line, *total; } cases[] = {
        {"JPY", "  2 x Blue mug (MUG-1) at 1250 JPY: 2500 JPY\r\n", "\r\nTotal: 2505 JPY\r\n"},
        {"KWD", "  2 x Blue mug (MUG-1) at 1.250 KWD: 2.500 KWD\r\n", "\r\nTotal: 2.505 KWD\r\n"},
        {"CLF", "  2 x Blue mug (MUG-1) at 0.1250 CLF: 0.2500 CLF\r\n", "\r\nTotal: 0.2505 CLF\r\n"},
        {"HUF", "  2 x Blue mug (MUG-1) at 12.50 HUF: 25.00 HUF\r\n", "\r\nTotal: 25.05 HUF\r\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_object *o = json_tokener_parse(ORDER);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        json_object_object_add(o, "currency", json_object_new_string(cases[i].currency));
        char *m = mail_format_order("order.confirmed", o, "order-19", "shop@shop.local",
                                    "ann@example.org", "Ann", NOW);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT_PTR_NOT_NULL(strstr(m, cases[i].line));
        CU_ASSERT_PTR_NOT_NULL(strstr(m, cases[i].total));
        CU_ASSERT_PTR_NOT_NULL(strstr(m, "  1 x Gr"));
        free(m);
        json_object_put(o);
    }
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

/* The relay: one connection at a time; writes 'C' to `report` per session
 * and 'M' per email accepted (before its 250), and ends the first session
 * itself after its first email, as a relay restart would. */
static void relay_serve(int lfd, int report)
{
    for (int session = 0;; session++) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            _exit(0);
        FILE *in = fdopen(fd, "r");
        if (!in || write(report, "C", 1) != 1)
            _exit(1);
        dprintf(fd, "220 test relay\r\n");
        char line[1024];
        int data = 0, mails = 0;
        while (fgets(line, sizeof line, in)) {
            if (data) {
                if (strcmp(line, ".\r\n") == 0) {
                    data = 0;
                    mails++;
                    if (write(report, "M", 1) != 1)
                        _exit(1);
                    dprintf(fd, "250 queued\r\n");
                    if (session == 0 && mails == 1)
                        break;          /* "restart": the session ends */
                }
            } else if (strncmp(line, "DATA", 4) == 0) {
                data = 1;
                dprintf(fd, "354 go on\r\n");
            } else if (strncmp(line, "QUIT", 4) == 0) {
                dprintf(fd, "221 bye\r\n");
                break;
            } else {
                dprintf(fd, "250 ok\r\n");    /* EHLO, MAIL, RCPT, RSET, NOOP */
            }
        }
        fclose(in);
    }
}

static void test_one_session_carries_many_emails_and_survives_a_relay_restart(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0), pipefd[2];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CU_ASSERT_FATAL(lfd >= 0 && pipe(pipefd) == 0);
    CU_ASSERT_FATAL(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 4) == 0);
    CU_ASSERT_FATAL(getsockname(lfd, (struct sockaddr *)&a, &len) == 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        close(pipefd[0]);
        relay_serve(lfd, pipefd[1]);
        _exit(0);
    }
    close(lfd);
    close(pipefd[1]);
    char url[64];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", ntohs(a.sin_port));
    const char *msg = "Subject: x\r\n\r\nhello\r\n";
    /* The first email; the relay then ends that session.  The second finds
     * it closed and opens another; the next two ride on that one. */
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(mail_send(url, "shop@example.org", "ann@example.org", msg), 0);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    char seen[64] = "";
    ssize_t n = read(pipefd[0], seen, sizeof seen - 1);
    close(pipefd[0]);
    seen[n > 0 ? n : 0] = '\0';
    CU_ASSERT_STRING_EQUAL(seen, "CMCMMM");   /* 2 sessions, 4 emails, none lost */
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("mail", NULL, NULL);
    CU_add_test(s, "confirmed order", test_confirmed);
    CU_add_test(s, "cancelled order", test_cancelled);
    CU_add_test(s, "amounts in the currency's minor units", test_minor_units);
    CU_add_test(s, "refusals", test_refusals);
    CU_add_test(s, "send without a relay fails", test_send_without_relay_fails);
    CU_add_test(s, "one session carries many emails and survives a relay restart",
                test_one_session_carries_many_emails_and_survives_a_relay_restart);
    return cunit_run_all();
}
