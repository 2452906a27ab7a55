/* route.h: a service's route table and its walk.  The walk is the only place
 * that answers 404 (no pattern matches), 405 with Allow (pattern matches, not
 * the method), 401 (route needs a user and the token is missing or bad), 403
 * (wrong role), and reads the JSON body for routes that take one (413, 415,
 * 400 malformed_json, 422 when the body is not an object). */
#ifndef SHOP_ROUTE_H
#define SHOP_ROUTE_H

#include "http.h"

typedef enum {
    ROUTE_PUBLIC,   /* anyone; a presented token is still verified (bad: 401) */
    ROUTE_ANYONE,   /* anyone; the Authorization header is not looked at (the
                     * credentials are in the body: register, login, refresh,
                     * logout, which an expired token must not block) */
    ROUTE_USER,     /* any signed-in user */
    ROUTE_SELLER,   /* seller or admin */
    ROUTE_ADMIN,    /* admin */
    ROUTE_SERVICE,  /* internal: needs the service token (X-Service-Token) */
} route_access;

typedef int (*route_handler)(http_req *req);

typedef struct route {
    const char *method;      /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *pattern;     /* "/products/{id}/stock": {id} is a positive integer */
    route_access access;
    bool body;               /* the handler takes a JSON object body */
    route_handler handler;
} route;

/* Matches req against the table, authenticates, reads the body and calls the
 * handler.  Returns the status sent. */
int route_dispatch(const route *table, size_t n, http_req *req);

/* Matches one pattern against a path; sets *id for {id}.  Exposed for tests. */
bool route_match(const char *pattern, const char *path, int64_t *id);

#endif
