/* problem.h: the one way to fail.  Every error response is an RFC 9457
 * application/problem+json body with status, title, code and request_id, and
 * is logged with the request id. */
#ifndef SHOP_PROBLEM_H
#define SHOP_PROBLEM_H

#include "http.h"

/* Sends a problem.  `code` is one of the contract's codes ("not_found", ...);
 * detail is printf-style and may be NULL.  Returns status. */
int problem_send(http_req *req, int status, const char *code, const char *detail, ...)
    __attribute__((format(printf, 4, 5)));

/* Sends a problem with extra members merged in (e.g. "items" for
 * insufficient_stock).  Takes ownership of `extra` (a JSON object, may be NULL). */
int problem_send_extra(http_req *req, int status, const char *code,
                       const char *detail, json_object *extra);

/* 422 validation_failed with `errors` (a JSON array built by json.h helpers);
 * takes ownership of errors. */
int problem_invalid(http_req *req, json_object *errors);

/* 503 unavailable with Retry-After: for DB_UNAVAILABLE and dependencies down. */
int problem_unavailable(http_req *req, const char *detail);

/* 500 internal; the detail is logged but never sent. */
int problem_internal(http_req *req, const char *log_detail);

/* Maps a db.h result (DB_UNAVAILABLE, DB_ERROR) to 503 or 500. */
int problem_db(http_req *req, int db_rc);

#endif
