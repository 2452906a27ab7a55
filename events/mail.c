/* mail.c: see mail.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "log.h"
#include "text.h"
#include "mail.h"

bool mail_address_ok(const char *addr)
{
    if (!addr)
        return false;
    size_t n = strlen(addr);
    const char *at = strchr(addr, '@');
    if (n < 3 || n > 254 || !at || at == addr || !at[1] || strchr(at + 1, '@'))
        return false;
    for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
        if (*p <= 0x20 || *p == 0x7f || strchr("<>()\",;:\\[]", *p))
            return false;
    return true;
}

/* Text from the order (a product name) as one safe line: control
 * characters (CR, LF, TAB...) become spaces. */
static void put_text(text_buf *b, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        text_put(b, "%c", c < 0x20 || c == 0x7f ? ' ' : (char)c);
    }
}

/* ISO 4217's minor units for the codes whose exponent is not 2 (the API's
 * *_cents count them): JPY 1500 is 1500 JPY, KWD 1500 is 1.500 KWD. */
static int minor_digits(const char *currency)
{
    static const struct { const char *code; int digits; } odd[] = {
        {"BIF", 0}, {"CLP", 0}, {"DJF", 0}, {"GNF", 0}, {"ISK", 0}, {"JPY", 0}, {"KMF", 0},
        {"KRW", 0}, {"PYG", 0}, {"RWF", 0}, {"UGX", 0}, {"UYI", 0}, {"VND", 0}, {"VUV", 0},
        {"XAF", 0}, {"XOF", 0}, {"XPF", 0},
        {"BHD", 3}, {"IQD", 3}, {"JOD", 3}, {"KWD", 3}, {"LYD", 3}, {"OMR", 3}, {"TND", 3},
        {"CLF", 4}, {"UYW", 4},
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        if (strcmp(currency, odd[i].code) == 0)
            return odd[i].digits;
    return 2;
}

/* An amount in minor units as "12.50 EUR", "1500 JPY", "1.500 KWD"
 * (negative amounts never occur; printed all the same). */
static void put_money(text_buf *b, int64_t cents, const char *currency)
{
    int digits = minor_digits(currency);
    int64_t unit = 1;
    for (int i = 0; i < digits; i++)
        unit *= 10;
    uint64_t a = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    text_put(b, "%s%" PRIu64, cents < 0 ? "-" : "", a / (uint64_t)unit);
    if (digits > 0)
        text_put(b, ".%0*" PRIu64, digits, a % (uint64_t)unit);
    text_put(b, " %s", currency);
}

static bool get_int(json_object *o, const char *k, int64_t *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
        return false;
    *out = json_object_get_int64(v);
    return true;
}

static const char *get_str(json_object *o, const char *k)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

char *mail_format_order(const char *type, json_object *order, const char *event_id,
                        const char *from, const char *to, const char *name, time_t now)
{
    bool confirmed = type && strcmp(type, "order.confirmed") == 0;
    bool cancelled = type && strcmp(type, "order.cancelled") == 0;
    int64_t id = 0, total = 0;
    const char *currency = get_str(order, "currency");
    json_object *items = NULL;
    if ((!confirmed && !cancelled) || !order || !get_int(order, "order_id", &id) ||
        !get_int(order, "total_cents", &total) || !currency || strlen(currency) != 3 ||
        !json_object_object_get_ex(order, "items", &items) ||
        !json_object_is_type(items, json_type_array) || !mail_address_ok(from) ||
        !mail_address_ok(to) || !event_id || strspn(event_id, "abcdefghijklmnopqrstuvwxyz"
                                                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
                                                  != strlen(event_id) || !*event_id)
        return NULL;
    for (const char *c = currency; *c; c++)
        if (*c < 'A' || *c > 'Z')
            return NULL;

    char date[64];
    struct tm tm;
    if (!gmtime_r(&now, &tm) || strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm) == 0)
        return NULL;
    const char *domain = strchr(from, '@') + 1;
    text_buf b = {0};
    text_put(&b, "From: shop <%s>\r\n", from);
    text_put(&b, "To: <%s>\r\n", to);
    text_put(&b, "Subject: Your order %" PRId64 " is %s\r\n", id, confirmed ? "confirmed" : "cancelled");
    text_put(&b, "Date: %s\r\n", date);
    text_put(&b, "Message-ID: <%s@%s>\r\n", event_id, domain);
    text_put(&b, "MIME-Version: 1.0\r\n");
    text_put(&b, "Content-Type: text/plain; charset=utf-8\r\n");
    text_put(&b, "Content-Transfer-Encoding: 8bit\r\n");
    text_put(&b, "\r\n");
    text_put(&b, "Hello");
    if (name && *name) {
        text_put(&b, " ");
        put_text(&b, name);
    }
    text_put(&b, ",\r\n\r\n");
    if (confirmed)
        text_put(&b, "thank you for your order. Order %" PRId64 " is confirmed:\r\n\r\n", id);
    else
        text_put(&b, "order %" PRId64 " has been cancelled. It held:\r\n\r\n", id);
    size_t n = json_object_array_length(items);
    for (size_t i = 0; i < n; i++) {
        json_object *l = json_object_array_get_idx(items, i);
        int64_t qty = 0, unit = 0, line = 0;
        const char *pname = get_str(l, "name"), *sku = get_str(l, "sku");
        if (!get_int(l, "quantity", &qty) || !get_int(l, "unit_price_cents", &unit) ||
            !get_int(l, "line_total_cents", &line) || !pname || !sku) {
            free(b.s);
            return NULL;
        }
        text_put(&b, "  %" PRId64 " x ", qty);
        put_text(&b, pname);
        text_put(&b, " (");
        put_text(&b, sku);
        text_put(&b, ") at ");
        put_money(&b, unit, currency);
        text_put(&b, ": ");
        put_money(&b, line, currency);
        text_put(&b, "\r\n");
    }
    text_put(&b, "\r\nTotal: ");
    put_money(&b, total, currency);
    text_put(&b, "\r\n\r\n");
    if (cancelled)
        text_put(&b, "Nothing will be charged for it.\r\n\r\n");
    text_put(&b, "-- \r\nshop\r\n");
    return text_take(&b);
}

typedef struct upload {
    const char *data;
    size_t left;
} upload;

static size_t mail_read(char *ptr, size_t size, size_t nmemb, void *arg)
{
    upload *u = arg;
    size_t n = size * nmemb < u->left ? size * nmemb : u->left;
    memcpy(ptr, u->data, n);
    u->data += n;
    u->left -= n;
    return n;
}

/* One transfer on the process's handle c (options reset, its connection
 * kept).  fresh: on a new connection. */
static CURLcode mail_perform(CURL *c, const char *smtp_url, const char *mfrom,
                             struct curl_slist *rcpt, const char *message, bool fresh, char *err)
{
    upload u = {message, strlen(message)};
    CURLcode rc;
    curl_easy_reset(c);     /* options only: the open connection stays */
    err[0] = '\0';
    if ((rc = curl_easy_setopt(c, CURLOPT_URL, smtp_url)) == CURLE_OK &&
        (rc = curl_easy_setopt(c, CURLOPT_MAIL_FROM, mfrom)) == CURLE_OK &&
        (rc = curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt)) == CURLE_OK &&
        (rc = curl_easy_setopt(c, CURLOPT_UPLOAD, 1L)) == CURLE_OK &&
        (rc = curl_easy_setopt(c, CURLOPT_READFUNCTION, mail_read)) == CURLE_OK &&
        (rc = curl_easy_setopt(c, CURLOPT_READDATA, &u)) == CURLE_OK &&
        (rc = curl_easy_setopt(c, CURLOPT_INFILESIZE, (long)u.left)) == CURLE_OK &&
        (rc = curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L)) == CURLE_OK &&
        (rc = curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L)) == CURLE_OK &&
        (rc = curl_easy_setopt(c, CURLOPT_MAXAGE_CONN, 60L)) == CURLE_OK &&
        (rc = curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L)) == CURLE_OK &&
        (rc = curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L)) == CURLE_OK &&
        (rc = curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err)) == CURLE_OK)
        rc = curl_easy_perform(c);
    return rc;
}

int mail_send(const char *smtp_url, const char *from, const char *to, const char *message)
{
    /* One handle for the process, so one SMTP session carries many emails
     * (no connect, greeting and EHLO per email); curl drops a connection
     * the relay closed, or idle for 60 s, and opens another. */
    static CURL *c;
    if (!smtp_url || (strncmp(smtp_url, "smtp://", 7) != 0 && strncmp(smtp_url, "smtps://", 8) != 0) ||
        !mail_address_ok(from) || !mail_address_ok(to) || !message) {
        log_error("mail: bad SMTP_URL, sender or recipient");
        return -1;
    }
    if (!c && !(c = curl_easy_init())) {
        log_error("mail: curl_easy_init failed");
        return -1;
    }
    char mfrom[300], rcpt_s[300];
    snprintf(mfrom, sizeof mfrom, "<%s>", from);
    snprintf(rcpt_s, sizeof rcpt_s, "<%s>", to);
    struct curl_slist *rcpt = curl_slist_append(NULL, rcpt_s);
    if (!rcpt) {
        log_error("mail: out of memory");
        return -1;
    }
    char err[CURL_ERROR_SIZE];
    CURLcode rc = mail_perform(c, smtp_url, mfrom, rcpt, message, false, err);
    long reused = 0;
    if ((rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING) &&
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &reused) == CURLE_OK && reused == 0) {
        /* The kept session broke under us (the relay restarted): once more
         * on a new one. */
        log_warn("mail: the open session to the relay failed (%s); reconnecting",
                 curl_easy_strerror(rc));
        rc = mail_perform(c, smtp_url, mfrom, rcpt, message, true, err);
    }
    curl_slist_free_all(rcpt);
    if (rc != CURLE_OK) {
        log_error("mail: sending to the relay failed: %s (%s)", curl_easy_strerror(rc), err);
        return -1;
    }
    return 0;
}
