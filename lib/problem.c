/* problem.c: RFC 9457 problem+json responses, the one way a handler fails.
 * Each problem is logged (warn for 4xx worth noting, error for 5xx) with the
 * request id; a 5xx never carries internal detail to the client. */
#include <stdarg.h>
#include <stdio.h>

#include "db.h"
#include "log.h"
#include "problem.h"

int problem_send_extra(http_req *req, int status, const char *code, const char *detail,
                       json_object *extra)
{
    json_object *o = json_object_new_object();
    if (!o) {
        json_object_put(extra);
        return http_reply_json(req, status, NULL);
    }
    json_object_object_add(o, "type", json_object_new_string("about:blank"));
    json_object_object_add(o, "title", json_object_new_string(http_reason(status)));
    json_object_object_add(o, "status", json_object_new_int(status));
    json_object_object_add(o, "code", json_object_new_string(code));
    if (detail && *detail)
        json_object_object_add(o, "detail", json_object_new_string(detail));
    json_object_object_add(o, "request_id", json_object_new_string(req->request_id));
    if (extra) {
        /* Extension members only: the standard ones above stay as they are
         * (a handler's "status": "unavailable" must not replace 503). */
        json_object_object_foreach(extra, k, v) {
            if (!json_object_object_get_ex(o, k, NULL))
                json_object_object_add(o, k, json_object_get(v));
        }
        json_object_put(extra);
    }
    if (status == 401)
        http_add_header(req, "WWW-Authenticate", "Bearer realm=\"shop\"");
    if (status >= 500)
        log_error("problem %d %s: %s", status, code, detail ? detail : "");
    else
        log_info("problem %d %s: %s", status, code, detail ? detail : "");
    return http_reply_json(req, status, o);
}

int problem_send(http_req *req, int status, const char *code, const char *detail, ...)
{
    char buf[512];
    const char *d = NULL;
    if (detail) {
        va_list ap;
        va_start(ap, detail);
        vsnprintf(buf, sizeof buf, detail, ap);
        va_end(ap);
        d = buf;
    }
    return problem_send_extra(req, status, code, d, NULL);
}

int problem_invalid(http_req *req, json_object *errors)
{
    json_object *extra = json_object_new_object();
    if (extra)
        json_object_object_add(extra, "errors", errors ? errors : json_object_new_array());
    else
        json_object_put(errors);
    return problem_send_extra(req, 422, "validation_failed", "The request is invalid: see errors.", extra);
}

int problem_unavailable(http_req *req, const char *detail)
{
    http_add_header(req, "Retry-After", "2");
    return problem_send(req, 503, "unavailable", "%s", detail ? detail : "Service temporarily unavailable.");
}

int problem_internal(http_req *req, const char *log_detail)
{
    log_error("internal error: %s", log_detail ? log_detail : "?");
    return problem_send_extra(req, 500, "internal", "An internal error occurred.", NULL);
}

int problem_db(http_req *req, int db_rc)
{
    if (db_rc == DB_UNAVAILABLE || db_retryable())
        return problem_unavailable(req, "The database is temporarily unavailable.");
    return problem_internal(req, "database error");
}
