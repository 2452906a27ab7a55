/* route.c: the route table walk.  This is the only place that decides 404,
 * 405 + Allow, 401, 403 and the body errors (413, 415, 400, 422 not an
 * object), so every service answers them identically.  Handlers run only
 * for a matched route, an authorized caller and, when the route takes a body,
 * a parsed JSON object in req->json. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

#include "config.h"
#include "json.h"
#include "log.h"
#include "problem.h"
#include "revoke.h"
#include "route.h"
#include "token.h"

bool route_match(const char *pattern, const char *path, int64_t *id)
{
    while (*pattern) {
        if (strncmp(pattern, "{id}", 4) == 0) {
            /* A positive decimal integer without leading zeros, fitting int64. */
            if (*path < '1' || *path > '9')
                return false;
            int64_t v = 0;
            int digits = 0;
            while (isdigit((unsigned char)*path)) {
                if (++digits > 18)
                    return false;
                v = v * 10 + (*path++ - '0');
            }
            *id = v;
            pattern += 4;
            continue;
        }
        if (*pattern++ != *path++)
            return false;
    }
    return *path == '\0';
}

/* Checks the Authorization header against what the route needs.  Returns 0
 * when the caller may proceed, or the status of the problem already sent. */
static int route_authenticate(const route *r, http_req *req)
{
    if (r->access == ROUTE_SERVICE) {
        const char *want = config_get("SERVICE_TOKEN", NULL);
        const char *got = http_header(req, "X-Service-Token");
        size_t wl = want ? strlen(want) : 0;
        if (!want || wl < 16 || !got || strlen(got) != wl || sodium_memcmp(want, got, wl) != 0) {
            log_warn("internal route without a valid service token");
            return problem_send(req, 404, "not_found", "No such resource.");
        }
        req->auth.service = true;
        return 0;
    }

    if (r->access == ROUTE_ANYONE)
        return 0;
    const char *h = http_header(req, "Authorization");
    if (h && *h) {
        token_claims c;
        if (strncasecmp(h, "Bearer ", 7) != 0)
            return problem_send(req, 401, "unauthorized", "Use an Authorization: Bearer token.");
        const char *tok = h + 7;
        while (*tok == ' ')
            tok++;
        if (token_verify(tok, time(NULL), &c) != 0)
            return problem_send(req, 401, "unauthorized", "The access token is invalid or expired.");
        /* A role or password change voids the user's tokens issued before
         * it, a reused refresh token its login's (revoke.h); the client
         * signs in again or refreshes. */
        if (revoke_is_revoked(c.user_id, c.sid, c.iat_ms)) {
            log_info("token of user %lld issued at %lld ms is revoked", (long long)c.user_id,
                     (long long)c.iat_ms);
            return problem_send(req, 401, "unauthorized",
                                "This access token was revoked (its user's role or password changed, "
                                "or its sign-in ended: a logout or a reused refresh token): "
                                "refresh it or sign in again.");
        }
        req->auth.user_id = c.user_id;
        req->auth.role = c.role;
    }
    user_role need = r->access == ROUTE_USER ? USER_CUSTOMER
                   : r->access == ROUTE_SELLER ? USER_SELLER
                   : r->access == ROUTE_ADMIN ? USER_ADMIN
                   : USER_ANON;
    if (need != USER_ANON && req->auth.role == USER_ANON)
        return problem_send(req, 401, "unauthorized", "Sign in first: this needs a Bearer token.");
    if (req->auth.role < need)
        return problem_send(req, 403, "forbidden", "Your role may not do this.");
    return 0;
}

static bool is_ows(char c)          /* OWS, RFC 9110 5.6.3 */
{
    return c == ' ' || c == '\t';
}

/* True when Content-Type is JSON (or merge-patch JSON for PATCH), with at
 * most a charset=utf-8 parameter. */
static bool route_json_type(const char *ct, const char *method)
{
    if (!ct)
        return false;
    size_t n = strcspn(ct, ";");
    while (n && is_ows(ct[n - 1]))
        n--;
    bool ok = (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
              (strcmp(method, "PATCH") == 0 && n == 28 &&
               strncasecmp(ct, "application/merge-patch+json", 28) == 0);
    if (!ok)
        return false;
    /* parameters = *( OWS ";" OWS [ parameter ] ): empty ones are allowed */
    const char *p = ct + strcspn(ct, ";");
    while (*p == ';' || is_ows(*p))
        p++;
    if (!*p)
        return true;
    if (strncasecmp(p, "charset=", 8) != 0)
        return false;
    p += 8;
    bool quoted = *p == '"';
    p += quoted;
    if (strncasecmp(p, "utf-8", 5) != 0)
        return false;
    p += 5;
    if (quoted && *p++ != '"')
        return false;
    while (*p == ';' || is_ows(*p))
        p++;
    return *p == '\0';
}

static int route_refuse_type(http_req *req)
{
    return problem_send(req, 415, "unsupported_media_type", "Send Content-Type: application/json.");
}

/* Reads and parses the JSON body into req->json.  Returns 0 or the status of
 * the problem sent. */
static int route_read_json(http_req *req)
{
    const char *cl = http_header(req, "Content-Length");
    if (cl && strtoll(cl, NULL, 10) > HTTP_MAX_BODY)
        return problem_send(req, 413, "payload_too_large", "Bodies are limited to %d bytes.", HTTP_MAX_BODY);
    if (req->body_len > HTTP_MAX_BODY)
        return problem_send(req, 413, "payload_too_large", "Bodies are limited to %d bytes.", HTTP_MAX_BODY);
    if (req->body_len == 0)
        return problem_send(req, 400, "malformed_json", "A JSON body is required.");
    if (!route_json_type(http_header(req, "Content-Type"), req->method))
        return route_refuse_type(req);
    /* A compressed body would be read as (malformed) JSON: no content
     * coding is taken, and the answer says so (RFC 9110 15.5.16). */
    const char *ce = http_header(req, "Content-Encoding");
    if (ce && strcasecmp(ce, "identity") != 0) {
        http_add_header(req, "Accept-Encoding", "identity");
        return problem_send(req, 415, "unsupported_media_type",
                            "Send the body without a Content-Encoding.");
    }
    json_refusal why;
    req->json = json_parse_strict(req->body, req->body_len, &why);
    if (!req->json && (why.kind == JSON_NUL_NAME || why.kind == JSON_DUP_NAME)) {
        json_object *errs = json_object_new_array();
        json_add_error(errs, why.name, why.kind == JSON_NUL_NAME
                       ? "unknown field (a member name cannot hold U+0000)"
                       : "given more than once in one object");
        return problem_invalid(req, errs);
    }
    if (!req->json && why.kind == JSON_TOO_DEEP)
        return problem_send(req, 400, "malformed_json",
                            "The body nests arrays and objects more than %d levels deep.",
                            JSON_MAX_DEPTH);
    if (!req->json && !json_is_null(req->body, req->body_len))
        return problem_send(req, 400, "malformed_json", "The body is not well-formed JSON.");
    if (!json_object_is_type(req->json, json_type_object)) {
        json_object *errs = json_object_new_array();
        json_add_error(errs, "", "the body must be a JSON object");
        return problem_invalid(req, errs);
    }
    return 0;
}

int route_dispatch(const route *table, size_t n, http_req *req)
{
    const route *hit = NULL;
    char allow[64] = "";
    bool head = strcmp(req->method, "HEAD") == 0;

    req->route_index = n;

    for (size_t i = 0; i < n; i++) {
        int64_t id = 0;
        if (!route_match(table[i].pattern, req->path, &id))
            continue;
        if (!strstr(allow, table[i].method)) {
            /* A GET route answers HEAD too (RFC 9110 9.3.2), so Allow says so. */
            bool get = strcmp(table[i].method, "GET") == 0;
            size_t l = strlen(allow);
            snprintf(allow + l, sizeof allow - l, "%s%s%s", l ? ", " : "", table[i].method,
                     get ? ", HEAD" : "");
        }
        if (!hit && (strcmp(table[i].method, req->method) == 0 ||
                     (head && strcmp(table[i].method, "GET") == 0))) {
            hit = &table[i];
            req->id = id;
            req->route_index = i;
        }
    }
    if (!allow[0])
        return problem_send(req, 404, "not_found", "No such resource.");
    if (!hit) {
        http_add_header(req, "Allow", "%s", allow);
        return problem_send(req, 405, "method_not_allowed", "Allowed: %s.", allow);
    }
    int rc = route_authenticate(hit, req);
    if (rc)
        return rc;
    if (hit->body && (rc = route_read_json(req)) != 0)
        return rc;
    /* A route that takes no body takes an empty object (a client that
     * always sends one: a cancel with "{}"), checked as any body is:
     * malformed 400, a member 422. */
    if (!hit->body && req->body_len > 0) {
        static const char *const none[] = {NULL};
        if ((rc = route_read_json(req)) != 0)
            return rc;
        json_object *errs = json_object_new_array();
        if (json_check_fields(req->json, none, errs) > 0)
            return problem_invalid(req, errs);
        json_object_put(errs);
    }
    return hit->handler(req);
}
