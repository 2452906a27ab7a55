/* client.c: service-to-service HTTP calls (order -> product /internal/) over
 * libcurl.  One easy handle per process, reset between calls, so its
 * connection cache keeps the TCP connection to the internal frontend alive
 * (a worker serves one request at a time, so no locking).  Every call carries
 * X-Service-Token and the id of the request being served, and is bounded by a
 * connect timeout and a total timeout: a dead dependency becomes an error the
 * caller can answer 503 to, never a hung worker. */
#include "client.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "config.h"
#include "log.h"

#define CLIENT_MAX_BODY (1024 * 1024)   /* replies are small; more is a bug */

static CURL *client_handle;

typedef struct client_buf {
    char *data;
    size_t len, cap;
    bool too_big;
} client_buf;

/* Lazily creates the process's handle.  Returns it or NULL. */
static CURL *client_get_handle(void)
{
    static bool global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            log_error("client: curl_global_init failed");
            return NULL;
        }
        global_done = true;
    }
    if (!client_handle)
        client_handle = curl_easy_init();
    if (!client_handle)
        log_error("client: curl_easy_init failed");
    return client_handle;
}

/* libcurl write callback: appends to a growing buffer, refuses past the cap
 * (returning less than asked makes curl abort with CURLE_WRITE_ERROR). */
static size_t client_collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    client_buf *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > CLIENT_MAX_BODY) {
        b->too_big = true;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Appends "Name: value" to list; returns the new list or NULL (list freed). */
static struct curl_slist *client_add_header(struct curl_slist *list, const char *name,
                                            const char *value)
{
    char line[512];
    int n = snprintf(line, sizeof line, "%s: %s", name, value);
    if (n < 0 || (size_t)n >= sizeof line) {
        log_error("client: the %s header would be %d bytes, over %zu", name, n, sizeof line - 1);
        curl_slist_free_all(list);
        return NULL;
    }
    struct curl_slist *l = curl_slist_append(list, line);
    if (!l)
        curl_slist_free_all(list);
    return l;
}

/* Builds the request headers: JSON, the service token, the request id, and
 * an empty Expect so larger POSTs do not wait for 100-continue. */
static struct curl_slist *client_headers(bool has_body)
{
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    if (h && has_body)
        h = client_add_header(h, "Content-Type", "application/json");
    if (h) {
        struct curl_slist *l = curl_slist_append(h, "Expect:");
        if (!l)
            curl_slist_free_all(h);
        h = l;
    }
    if (h)
        h = client_add_header(h, "X-Service-Token", config_get("SERVICE_TOKEN", ""));
    const char *rid = log_current_request_id();
    if (h && rid && *rid)
        h = client_add_header(h, "X-Request-ID", rid);
    return h;
}

int client_call(const char *method, const char *base, const char *path,
                json_object *body, client_resp *out)
{
    out->status = 0;
    out->body = NULL;
    CURL *c = client_get_handle();
    if (!c)
        return -1;
    curl_easy_reset(c);   /* keeps the connection cache: that is the point */

    char url[1024];
    int n = snprintf(url, sizeof url, "%s%s", base ? base : "", path);
    if (!base || !*base || n < 0 || (size_t)n >= sizeof url) {
        log_error("client: bad base URL for %s", path);
        return -1;
    }
    const char *text = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
    struct curl_slist *hdrs = client_headers(text != NULL);
    if (!hdrs) {
        log_error("client: out of memory building headers");
        return -1;
    }
    client_buf buf = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)config_int("CLIENT_CONNECT_TIMEOUT_MS", 1000));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)config_int("CLIENT_TIMEOUT_MS", 5000));
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, client_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(text ? strlen(text) : 0));
        curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, text ? text : "");
    }

    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        log_warn("client: %s %s failed: %s%s", method, path, curl_easy_strerror(rc),
                 buf.too_big ? " (reply too large)" : "");
        free(buf.data);
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    out->status = (int)status;
    if (buf.len > 0) {
        json_tokener *tok = json_tokener_new();
        if (tok) {
            out->body = json_tokener_parse_ex(tok, buf.data, (int)buf.len);
            if (json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(out->body);
                out->body = NULL;
            }
            json_tokener_free(tok);
        }
    }
    free(buf.data);
    log_debug("client: %s %s -> %d", method, path, out->status);
    return 0;
}

void client_free(client_resp *r)
{
    if (r && r->body) {
        json_object_put(r->body);
        r->body = NULL;
    }
}
