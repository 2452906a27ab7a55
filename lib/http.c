/* http.c: the request accessors and the three reply functions over a
 * FastCGI request.  Everything a handler sends goes through http_send(), which
 * adds X-Request-ID, Content-Length and the collected extra headers, so every
 * response carries them. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcgiapp.h>
#include <inttypes.h>
#include <sodium.h>

#include "http.h"
#include "json.h"
#include "log.h"

const char *http_header(const http_req *req, const char *name)
{
    char key[128];
    size_t n = 0;
    /* CGI names: Content-Type and Content-Length have no HTTP_ prefix. */
    if (strcasecmp(name, "Content-Type") != 0 && strcasecmp(name, "Content-Length") != 0) {
        memcpy(key, "HTTP_", 5);
        n = 5;
    }
    for (const char *p = name; *p && n < sizeof key - 1; p++)
        key[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    key[n] = '\0';
    return req->env ? FCGX_GetParam(key, req->env) : NULL;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes src[0..n) into dst (size cap); '+' is a space when plus.
 * Returns -1 on bad escapes, NUL bytes or overflow. */
static int url_decode(const char *src, size_t n, char *dst, size_t cap, bool plus)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)src[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval(src[i + 1]), l = hexval(src[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c == 0 || o + 1 >= cap)
            return -1;
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return 0;
}

int http_query(const http_req *req, const char *name, char *buf, size_t n)
{
    size_t nl = strlen(name);
    const char *q = req->query ? req->query : "";
    int rc = 0;
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        size_t kl = eq ? (size_t)(eq - q) : len;
        if (kl == nl && memcmp(q, name, nl) == 0) {
            if (rc != 0)
                return HTTP_QUERY_REPEATED;
            if (!eq)
                rc = n ? (buf[0] = '\0', 1) : -1;
            else
                rc = url_decode(eq + 1, len - kl - 1, buf, n, true) == 0 ? 1 : -1;
        }
        q += len;
        if (*q == '&')
            q++;
    }
    return rc;
}

int http_query_once(const http_req *req, const char *name, char *buf, size_t n, json_object *errs)
{
    int rc = http_query(req, name, buf, n);
    if (rc == HTTP_QUERY_REPEATED)
        json_add_error(errs, name, "given more than once");
    return rc;
}

int http_query_int(const http_req *req, const char *name, int64_t min, int64_t max,
                   int64_t *out, json_object *errs)
{
    char buf[24];
    int rc = http_query_once(req, name, buf, sizeof buf, errs);
    if (rc == 0)
        return JSON_ABSENT;
    if (rc == HTTP_QUERY_REPEATED)
        return JSON_BAD;
    bool ok = rc > 0 && buf[0] && strlen(buf) <= 19;
    for (const char *p = buf; ok && *p; p++)
        ok = isdigit((unsigned char)*p);
    errno = 0;
    long long v = ok ? strtoll(buf, NULL, 10) : 0;
    if (!ok || errno == ERANGE || v < min || v > max) {
        char msg[80];
        if (min == 1 && max == INT64_MAX)
            snprintf(msg, sizeof msg, "must be a positive integer");
        else
            snprintf(msg, sizeof msg, "must be an integer from %" PRId64 " to %" PRId64, min, max);
        json_add_error(errs, name, msg);
        return JSON_BAD;
    }
    *out = v;
    return JSON_OK;
}

/* Used by server.c to fill req->path from REQUEST_URI. */
int http_decode_path(const char *src, size_t n, char *dst, size_t cap)
{
    return url_decode(src, n, dst, cap, false);
}

void http_add_header(http_req *req, const char *name, const char *fmt, ...)
{
    char value[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    /* A header value must never smuggle a line break into the response. */
    for (char *p = value; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    size_t add = strlen(name) + strlen(value) + 4;
    char *h = realloc(req->headers, req->headers_len + add + 1);
    if (!h) {
        log_error("http: out of memory adding header %s", name);
        return;
    }
    req->headers = h;
    req->headers_len += (size_t)snprintf(h + req->headers_len, add + 1, "%s: %s\r\n", name, value);
}

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

/* True when a header `name` was added to the response (http_add_header). */
static bool http_has_out_header(const http_req *req, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = req->headers; p && *p;) {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':')
            return true;
        const char *eol = strstr(p, "\r\n");
        p = eol ? eol + 2 : NULL;
    }
    return false;
}

/* Writes status line, headers and body.  The only writer of responses.  An
 * answer that says nothing of caching is not cacheable (Cache-Control:
 * no-store): only what a handler marks public may be kept. */
static int http_send(http_req *req, int status, const char *ctype, const char *body, size_t len)
{
    FCGX_Request *f = req->fcgi;
    if (req->status) {
        log_error("http: second reply (%d after %d) ignored", status, req->status);
        return req->status;
    }
    req->status = status;
    if (!http_has_out_header(req, "Cache-Control"))
        http_add_header(req, "Cache-Control", "no-store");
    if (!f) {
        free(req->sent);
        req->sent = strndup(body ? body : "", len);
        return status;
    }
    FCGX_FPrintF(f->out, "Status: %d %s\r\nX-Request-ID: %s\r\n", status,
                 http_reason(status), req->request_id);
    if (ctype)
        FCGX_FPrintF(f->out, "Content-Type: %s\r\n", ctype);
    if (status != 204 && status != 304)
        /* libfcgi's printf knows no %zu: it would print an empty value. */
        FCGX_FPrintF(f->out, "Content-Length: %lu\r\n", (unsigned long)len);
    if (req->headers_len)
        FCGX_PutStr(req->headers, (int)req->headers_len, f->out);
    FCGX_PutStr("\r\n", 2, f->out);
    if (len && status != 204 && status != 304 && strcmp(req->method, "HEAD") != 0)
        FCGX_PutStr(body, (int)len, f->out);
    return status;
}

int http_reply_json(http_req *req, int status, json_object *body)
{
    if (!body)
        return http_send(req, status, NULL, "", 0);
    size_t len;
    const char *s = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
    const char *ctype = status >= 400 && json_object_object_get_ex(body, "code", NULL)
                            ? "application/problem+json"
                            : "application/json";
    int rc = http_send(req, status, ctype, s, len);
    json_object_put(body);
    return rc;
}

int http_reply_empty(http_req *req, int status)
{
    return http_send(req, status, NULL, "", 0);
}

int http_reply_raw(http_req *req, int status, const char *content_type, const char *body, size_t len)
{
    return http_send(req, status, content_type, body, len);
}

bool http_request_id_valid(const char *id)
{
    size_t n = 0;
    if (!id)
        return false;
    for (; id[n]; n++) {
        unsigned char c = (unsigned char)id[n];
        if (n >= HTTP_REQUEST_ID_MAX || !(isalnum(c) || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

double http_elapsed_ms(const http_req *req)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - req->started.tv_sec) * 1e3 +
           (double)(now.tv_nsec - req->started.tv_nsec) / 1e6;
}

void http_format_time(time_t t, char *buf, size_t n)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The first 4 bytes of BLAKE2b-128 of s, as 8 hex digits: what binds a
 * cursor to its list's filters and to its id. */
static void http_hash8(const char *s, char out[9])
{
    unsigned char h[crypto_generichash_BYTES_MIN];
    if (crypto_generichash(h, sizeof h, (const unsigned char *)s, strlen(s), NULL, 0) != 0) {
        /* Only for a bad size, which this is not. */
        log_error("http: cannot hash a cursor");
        memset(h, 0, sizeof h);
    }
    snprintf(out, 9, "%02x%02x%02x%02x", h[0], h[1], h[2], h[3]);
}

/* A cursor's check: the hash of "<prefix><id>", so a cursor edited by hand
 * (an id cut short or changed) is refused. */
static void http_cursor_check(const char *prefix, int64_t id, char out[9])
{
    char text[48];
    snprintf(text, sizeof text, "%s%" PRId64, prefix, id);   /* prefix < 16, id <= 18 digits */
    http_hash8(text, out);
}

void http_cursor_encode(const char *prefix, int64_t id, char *buf, size_t n)
{
    char raw[48], check[9];
    http_cursor_check(prefix, id, check);
    int len = snprintf(raw, sizeof raw, "%s%" PRId64 ".%s", prefix, id, check);
    if (len < 0 || (size_t)len >= sizeof raw ||
        n < sodium_base64_ENCODED_LEN((size_t)len, sodium_base64_VARIANT_URLSAFE_NO_PADDING)) {
        if (n)
            buf[0] = '\0';
        return;
    }
    sodium_bin2base64(buf, n, (const unsigned char *)raw, (size_t)len,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

void http_cursor_prefix(const char *list, const char *filters, char out[HTTP_CURSOR_PREFIX])
{
    char h[9];
    http_hash8(filters, h);
    snprintf(out, HTTP_CURSOR_PREFIX, "%.4s%s:", list, h);
}

int http_reply_page(http_req *req, json_object *items, bool more, const char *prefix,
                    int64_t last_id)
{
    json_object *o = json_object_new_object();
    if (!o) {
        json_object_put(items);
        log_error("http: out of memory building a page");
        return http_reply_json(req, 500, NULL);
    }
    json_object_object_add(o, "items", items);
    if (more && items && json_object_array_length(items) > 0) {
        char next[64];
        http_cursor_encode(prefix, last_id, next, sizeof next);
        json_object_object_add(o, "next_cursor", json_object_new_string(next));
    } else {
        json_object_object_add(o, "next_cursor", NULL);
    }
    return http_reply_json(req, 200, o);
}

bool http_cursor_decode(const char *prefix, const char *cursor, int64_t *id)
{
    unsigned char raw[48];
    size_t len = 0, plen = strlen(prefix);
    const char *end = NULL;
    if (!cursor || !*cursor || strlen(cursor) > 60 ||
        sodium_base642bin(raw, sizeof raw - 1, cursor, strlen(cursor), NULL, &len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 || *end != '\0')
        return false;
    raw[len] = '\0';
    if (len <= plen || memcmp(raw, prefix, plen) != 0)
        return false;
    const char *digits = (const char *)raw + plen;
    if (digits[0] < '1' || digits[0] > '9')
        return false;
    int64_t v = 0;
    const char *p = digits;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (p - digits >= 18)
            return false;
        v = v * 10 + (*p - '0');
    }
    if (*p != '.')
        return false;
    /* The check and the one spelling: encoding v again gives the same text. */
    char again[72];
    http_cursor_encode(prefix, v, again, sizeof again);
    if (strcmp(again, cursor) != 0)      /* another spelling of the same bytes */
        return false;
    *id = v;
    return true;
}
