/* http.h: one HTTP request as a FastCGI worker sees it, and the only ways to
 * answer it.  A handler reads what it needs through these accessors and replies
 * exactly once, through http_reply_json(), http_reply_empty() or the problem_*
 * helpers (problem.h); the server loop (server.c) owns the lifecycle. */
#ifndef SHOP_HTTP_H
#define SHOP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <json-c/json.h>

#include "token.h"

#define HTTP_MAX_BODY (64 * 1024)
#define HTTP_REQUEST_ID_MAX 128

/* Who is asking, as established by the route table walk (route.c). */
typedef struct http_auth {
    user_role role;       /* USER_ANON when no token was presented */
    int64_t user_id;      /* 0 when anonymous */
    bool service;         /* request carries a valid internal service token */
} http_auth;

typedef struct http_req {
    void *fcgi;                 /* FCGX_Request *, opaque to handlers; NULL in unit tests */
    char **env;                 /* CGI parameters ("HTTP_IF_MATCH=..."), NULL-terminated */
    const char *method;         /* "GET", "POST", ... */
    char *path;                 /* decoded path, no query string */
    const char *query;          /* raw query string, "" when absent */
    char request_id[HTTP_REQUEST_ID_MAX + 1];
    char *body;                 /* NUL-terminated, NULL when none was read */
    size_t body_len;
    json_object *json;          /* parsed body for routes that take one */
    int64_t id;                 /* the {id} path parameter, 0 when none */
    size_t route_index;         /* matched row of the route table (metrics) */
    http_auth auth;
    struct timespec started;
    int status;                 /* status sent, 0 until a reply is written */
    char *headers;              /* extra response headers, "Name: value\r\n"... */
    size_t headers_len;
    char *sent;                 /* without a FastCGI stream (unit tests): the body sent */
} http_req;

/* The value of request header `name` (case-insensitive, e.g. "If-Match"), or NULL. */
const char *http_header(const http_req *req, const char *name);

/* Copies the URL-decoded value of query parameter `name` into buf (size n).
 * Returns 1 when present, 0 when absent, -1 when malformed or too long,
 * HTTP_QUERY_REPEATED when given more than once (?limit=5&limit=500: which
 * one the client meant is anyone's guess). */
enum { HTTP_QUERY_REPEATED = -2 };
int http_query(const http_req *req, const char *name, char *buf, size_t n);

/* http_query for a handler that checks every parameter and answers one 422:
 * a parameter given more than once also adds {"field": name, "message":
 * "given more than once"} to errs (json.h); the caller reports only what
 * else is wrong (-1, or a value it does not take). */
int http_query_once(const http_req *req, const char *name, char *buf, size_t n, json_object *errs);

/* Reads query parameter `name` as a decimal integer (digits only, at most 18)
 * in [min, max] into *out.  Returns JSON_ABSENT, JSON_OK, or JSON_BAD after
 * adding {"field": name, "message"} to errs (json.h), so a handler can check
 * every parameter and answer one 422. */
int http_query_int(const http_req *req, const char *name, int64_t min, int64_t max,
                   int64_t *out, json_object *errs);

/* Adds a response header; printf-style value.  Call before replying. */
void http_add_header(http_req *req, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sends `status` with a JSON body and takes ownership of `body` (may be NULL
 * for an empty body).  Returns status so handlers can `return http_reply_json(...)`. */
int http_reply_json(http_req *req, int status, json_object *body);

/* Sends `status` with no body (204, 304).  Returns status. */
int http_reply_empty(http_req *req, int status);

/* Sends a body with an explicit content type (JWKS, metrics).  Returns status. */
int http_reply_raw(http_req *req, int status, const char *content_type,
                   const char *body, size_t len);

/* The reason phrase of a status ("Not Found"): the status line's and a
 * problem's title. */
const char *http_reason(int status);

/* Opaque keyset cursors for lists: base64url (no padding) of prefix + the
 * decimal id of the last row shown + "." + 8 hex digits of BLAKE2b over the
 * two.  Decoding accepts exactly one spelling per value (the one encode
 * makes) with its check, so a cursor edited by hand (another id, a character
 * dropped) is refused; ids are positive and at most 18 digits.  buf needs
 * >= 64 bytes. */
void http_cursor_encode(const char *prefix, int64_t id, char *buf, size_t n);
bool http_cursor_decode(const char *prefix, const char *cursor, int64_t *id);

/* The prefix of a list's cursors: the list's name and a short hash of its
 * filters (in any spelling the caller keeps stable), so a cursor is only
 * taken back by the list and filters that gave it out. */
#define HTTP_CURSOR_PREFIX 16
void http_cursor_prefix(const char *list, const char *filters, char out[HTTP_CURSOR_PREFIX]);

/* Sends 200 {"items": items, "next_cursor": ...} and takes ownership of
 * items (a JSON array).  next_cursor is the cursor (prefix, last_id) when
 * `more` rows follow and the page is not empty, else null. */
int http_reply_page(http_req *req, json_object *items, bool more, const char *prefix,
                    int64_t last_id);

/* Percent-decodes a path (no '+' rule) into dst; -1 on bad escapes/NUL/overflow. */
int http_decode_path(const char *src, size_t n, char *dst, size_t cap);

/* True when the request id is 1-128 chars of [A-Za-z0-9._-]. */
bool http_request_id_valid(const char *id);

/* Milliseconds since the request started. */
double http_elapsed_ms(const http_req *req);

/* Formats a UNIX time as RFC 3339 UTC ("2026-11-24T19:30:00Z") into buf (>= 21 bytes). */
void http_format_time(time_t t, char *buf, size_t n);

#endif
